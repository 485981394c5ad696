/**
 * The monotonic clock the sticky module measures TTLs, cache ages, budgets and lease validity with
 * (performance.now: never steps with NTP or an operator's `date`, unlike Date.now; research §1.5).
 */
import type { Clock } from '../lib/clock.js';

export const monotonicClock: Clock = { nowMs: () => performance.now() };
