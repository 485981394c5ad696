/**
 * Durations and sizes. Durations: `250ms`, `2s`, `5m`, `1h` (DESIGN.md §2), also a bare integer of
 * milliseconds. Sizes: `512`, `64KiB`, `10MiB`, `1GiB` (also kb/mb/gb as powers of 1024 — a proxy
 * limit is a buffer size, never a marketing megabyte).
 *
 * Every duration has bounds. The upper one is what a Node timer can hold: setTimeout clamps anything
 * above 2^31−1 ms (24.8 days) to 1 ms, so "interval: 30d" would become a busy loop. The lower one is 1 ms
 * wherever 0 would mean a timer that fires at once forever (health check interval, ejection time) or a
 * Redis TTL of 0; fields where 0 has a meaning ("disabled") say so with { min: 0 }.
 */
import { fail, ok, shown, type Checked } from './result.js';

export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DurationBounds {
  /** Smallest accepted value in ms (default 0). */
  readonly min?: number;
  /** Largest accepted value in ms (default MAX_TIMER_MS). */
  readonly max?: number;
}

const DURATION = /^(\d{1,15}(?:\.\d{1,9})?)(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds (an integer within `bounds`), or why not. */
export function checkDuration(input: unknown, bounds: DurationBounds = {}): Checked<number> {
  let ms: number;
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) return fail(`expected a non-negative duration, got ${shown(input)}`);
    ms = input;
  } else if (typeof input === 'string') {
    const m = DURATION.exec(input.trim());
    if (!m) return fail(`invalid duration ${shown(input)}: expected a number followed by ms, s, m or h (e.g. 250ms, 2s, 5m, 1h)`);
    ms = Math.round(Number(m[1]) * DURATION_UNIT_MS[m[2]!]!);
  } else {
    return fail('expected a duration such as 250ms, 2s, 5m or 1h');
  }
  const min = bounds.min ?? 0;
  const max = bounds.max ?? MAX_TIMER_MS;
  if (ms < min) return fail(`duration ${shown(input)} is below the minimum of ${formatMs(min)}`);
  if (ms > max) return fail(`duration ${shown(input)} is above the maximum of ${formatMs(max)}`);
  return ok(ms);
}

function formatMs(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE = /^(\d{1,15}(?:\.\d{1,9})?)\s*(b|kib|kb|k|mib|mb|m|gib|gb|g)?$/i;
const SIZE_UNIT: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** Bytes (a safe integer), or why not. */
export function checkSize(input: unknown): Checked<number> {
  let bytes: number;
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) return fail(`expected a non-negative size in bytes, got ${shown(input)}`);
    bytes = input;
  } else if (typeof input === 'string') {
    const m = SIZE.exec(input.trim());
    if (!m) return fail(`invalid size ${shown(input)}: expected bytes or a number with KiB, MiB or GiB`);
    bytes = Math.floor(Number(m[1]) * SIZE_UNIT[(m[2] ?? 'b').toLowerCase()]!);
  } else {
    return fail('expected a size such as 16KiB or 10MiB');
  }
  if (!Number.isSafeInteger(bytes)) return fail(`size ${shown(input)} is too large`);
  return ok(bytes);
}
