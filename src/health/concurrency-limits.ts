/**
 * Concurrency limits — what Envoy calls circuit breaking (circuit_breaker.proto thresholds), and what
 * the config calls `circuitBreaker` after it: not a tripping state machine but hard limits that fail
 * fast instead of queueing without bound. Named for what it is, so it is not mistaken for the sticky
 * store's breaker (sticky/resolver.ts), which does trip open and probe again.
 * - per upstream: at most `maxInFlightPerUpstream` requests in flight from this peer;
 * - per service: at most `maxPending` requests waiting for an upstream connection.
 *
 * `tryAcquire*` returns `undefined` when the slot was taken, or the reason it was refused; the
 * caller answers 503 and counts it. Every successful acquire must be paired with one release;
 * releasing more than was acquired is a bug and throws.
 *
 * "Open" here is reporting only: a limit is open from its first refusal until usage drops below the
 * limit again; `onOpen` fires on that transition (not on every refusal) so the event bus is not
 * flooded under overload.
 *
 * Hot path: acquire/release are O(1) Map operations on numbers and allocate nothing.
 */
import type { ServiceName, UpstreamId } from '../model/index.js';

export type BreakerReason = 'max-in-flight' | 'max-pending';

export interface ConcurrencyLimitSettings {
  readonly maxInFlightPerUpstream: number;
  readonly maxPending: number;
}

/** Envoy's defaults: max_requests 1024, max_pending_requests 1024 (circuit_breaker.proto). */
export const DEFAULT_CONCURRENCY_LIMITS: ConcurrencyLimitSettings = Object.freeze({ maxInFlightPerUpstream: 1024, maxPending: 1024 });

export class ConcurrencyLimits {
  private limits: ConcurrencyLimitSettings;
  private readonly inFlightBy = new Map<UpstreamId, number>();
  private readonly openUpstreams = new Set<UpstreamId>();
  private pendingCount = 0;
  private pendingOpen = false;
  /** Refusals since creation, for metrics. */
  rejectedInFlight = 0;
  rejectedPending = 0;

  constructor(
    readonly service: ServiceName,
    limits: Partial<ConcurrencyLimitSettings> = {},
    private readonly onOpen?: (kind: BreakerReason, upstream: UpstreamId | undefined) => void,
  ) {
    this.limits = resolveLimits(limits);
  }

  setLimits(limits: Partial<ConcurrencyLimitSettings>): void {
    this.limits = resolveLimits(limits);
    for (const [upstream, n] of this.inFlightBy) if (n === 0) this.inFlightBy.delete(upstream);
  }

  get config(): ConcurrencyLimitSettings {
    return this.limits;
  }

  tryAcquire(upstream: UpstreamId): BreakerReason | undefined {
    const n = this.inFlightBy.get(upstream) ?? 0;
    if (n >= this.limits.maxInFlightPerUpstream) {
      this.rejectedInFlight++;
      if (!this.openUpstreams.has(upstream)) {
        this.openUpstreams.add(upstream);
        this.onOpen?.('max-in-flight', upstream);
      }
      return 'max-in-flight';
    }
    this.inFlightBy.set(upstream, n + 1);
    return undefined;
  }

  release(upstream: UpstreamId): void {
    const n = this.inFlightBy.get(upstream);
    if (n === undefined || n <= 0) throw new Error(`concurrency limits: release without acquire for ${this.service}/${upstream}`);
    // An idle upstream keeps its entry at 0 (setLimits, on reload, drops those): deleting and adding
    // the key again on every idle/busy swing had V8 rebuild the Map's table, garbage that lived long
    // enough to be promoted (lib/live-slots.ts has the measurement of the same effect).
    this.inFlightBy.set(upstream, n - 1);
    if (n - 1 < this.limits.maxInFlightPerUpstream) this.openUpstreams.delete(upstream);
  }

  tryAcquirePending(): BreakerReason | undefined {
    if (this.pendingCount >= this.limits.maxPending) {
      this.rejectedPending++;
      if (!this.pendingOpen) {
        this.pendingOpen = true;
        this.onOpen?.('max-pending', undefined);
      }
      return 'max-pending';
    }
    this.pendingCount++;
    return undefined;
  }

  releasePending(): void {
    if (this.pendingCount <= 0) throw new Error(`concurrency limits: releasePending without acquire for ${this.service}`);
    this.pendingCount--;
    if (this.pendingCount < this.limits.maxPending) this.pendingOpen = false;
  }

  inFlight(upstream: UpstreamId): number {
    return this.inFlightBy.get(upstream) ?? 0;
  }

  get pending(): number {
    return this.pendingCount;
  }

  isOpen(upstream?: UpstreamId): boolean {
    return upstream === undefined ? this.pendingOpen : this.openUpstreams.has(upstream);
  }
}

function resolveLimits(l: Partial<ConcurrencyLimitSettings>): ConcurrencyLimitSettings {
  const out = {
    maxInFlightPerUpstream: l.maxInFlightPerUpstream ?? DEFAULT_CONCURRENCY_LIMITS.maxInFlightPerUpstream,
    maxPending: l.maxPending ?? DEFAULT_CONCURRENCY_LIMITS.maxPending,
  };
  if (!(out.maxInFlightPerUpstream >= 1) || !(out.maxPending >= 0)) throw new RangeError('concurrency limits out of range');
  return out;
}
