/**
 * Circuit breaker in front of the pin store, so an outage costs the budget a handful of times, not
 * on every request (research/sticky-locks.md §6, §8.8).
 *
 *   closed --(failureThreshold consecutive outages)--> open --(coolDownMs)--> half-open
 *   half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open
 *
 * Invariants: pure (time comes from the injected clock; no timers); in half-open exactly one probe
 * is let through at a time; a probe that never reports (a caller bug) is given up after another
 * cool-down so the breaker cannot stick open. Data errors (garbage in Redis) are not outages and must
 * not be reported here.
 */
import type { Clock } from '../lib/clock.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. 5: research §7 (no single precedent; enough to ride out one lost packet). */
  readonly failureThreshold?: number;
  /** How long the breaker stays open before one probe (ms). 2000: research §7, about the ioredis reconnect cap. */
  readonly coolDownMs?: number;
  readonly clock: Clock;
  /** [0,1) source used to jitter the cool-down ±20 %, so peers do not probe in lockstep. */
  readonly random?: () => number;
  readonly onChange?: (state: BreakerState, reason: string) => void;
}

export const DEFAULT_BREAKER_FAILURES = 5;
export const DEFAULT_BREAKER_COOLDOWN_MS = 2000;

export class Breaker {
  private st: BreakerState = 'closed';
  private failures = 0;
  private openUntil = 0;
  private probeSince: number | undefined;
  private opens = 0;
  private readonly threshold: number;
  private readonly coolDownMs: number;

  constructor(private readonly opts: BreakerOptions) {
    this.threshold = Math.max(1, opts.failureThreshold ?? DEFAULT_BREAKER_FAILURES);
    this.coolDownMs = Math.max(1, opts.coolDownMs ?? DEFAULT_BREAKER_COOLDOWN_MS);
  }

  get state(): BreakerState {
    return this.st;
  }

  /** Times the breaker went from closed/half-open to open. */
  get openCount(): number {
    return this.opens;
  }

  /** May a store call be made now? In half-open, true means "you are the probe"; report the outcome. */
  allow(): boolean {
    const now = this.opts.clock.nowMs();
    if (this.st === 'closed') return true;
    if (this.st === 'open') {
      if (now < this.openUntil) return false;
      this.set('half-open', 'cool-down elapsed');
      this.probeSince = now;
      return true;
    }
    // half-open: one probe at a time; a probe silent for a whole cool-down is presumed lost.
    if (this.probeSince !== undefined && now - this.probeSince < this.coolDownMs) return false;
    this.probeSince = now;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.probeSince = undefined;
    if (this.st !== 'closed') this.set('closed', 'store answered');
  }

  failure(reason: string): void {
    this.failures++;
    if (this.st === 'half-open' || (this.st === 'closed' && this.failures >= this.threshold)) {
      this.trip(reason);
    }
  }

  private trip(reason: string): void {
    const jitter = this.opts.random ? 0.8 + 0.4 * this.opts.random() : 1;
    this.openUntil = this.opts.clock.nowMs() + this.coolDownMs * jitter;
    this.probeSince = undefined;
    this.opens++;
    this.set('open', reason);
  }

  private set(state: BreakerState, reason: string): void {
    if (this.st === state) return;
    this.st = state;
    this.opts.onChange?.(state, reason);
  }
}
