/**
 * Passive health: consecutive-failure outlier detection for one service (Envoy's
 * `outlier_detection`, consecutive_5xx + consecutive_local_origin_failure in split mode).
 *
 * Pure: no clock, no timers, no randomness. The caller passes `nowMs` and turns the returned
 * `Ejection` / `Restoration` records into events; it calls `expire(nowMs)` at `nextExpiryMs()`.
 *
 * Rules (docs/health.md has the reasoning):
 * - A 5xx response bumps the 5xx streak and, since a response arrived, resets the local-origin streak.
 *   A local-origin failure (connect failure, reset, timeout) bumps only the local-origin streak.
 *   A success resets both. A streak reaching its threshold ejects the host.
 * - Ejection lasts `baseEjectionTimeMs × timesEjected`, capped at `max(maxEjectionTimeMs, base)`
 *   (Envoy outlier_detection.proto: max_ejection_time defaults to 300 s "or base, if larger").
 * - Decay: `timesEjected` drops by one for each full `baseEjectionTimeMs` the host spends not
 *   ejected, computed lazily from the last restoration time, so a host that behaves forgets its
 *   back-off at the rate it built it up. (Envoy decrements once per detection `interval`; we have no
 *   sweep interval, so the base ejection time is the natural unit.)
 * - Invariant: ejected hosts ≤ max(1, floor(maxEjectionPercent × hosts / 100)) — Envoy's bound,
 *   which always lets one host go so that a 2- or 3-host service can still shed a broken member.
 *   `setHosts` restores the soonest-expiring extras if a shrinking set would break the bound.
 * - `record` on success allocates nothing and is O(1) (one Map lookup).
 */
import type { ServiceName, UpstreamId } from '../model/index.js';

export type LocalOriginCause = 'connect-failure' | 'reset' | 'timeout';

/** What the proxy saw on one call to an upstream. */
export type CallResult =
  | { readonly kind: 'success' }
  | { readonly kind: '5xx'; readonly status: number }
  | { readonly kind: 'local-origin'; readonly cause: LocalOriginCause };

/** Shared so the proxy records successes without allocating. */
export const CALL_SUCCESS: CallResult = Object.freeze({ kind: 'success' });

export interface OutlierConfig {
  /** Consecutive 5xx responses that eject a host. Envoy default 5. */
  readonly consecutive5xx: number;
  /** Consecutive local-origin failures that eject a host. Envoy consecutive_local_origin_failure default 5. */
  readonly consecutiveLocalOriginFailures: number;
  /** Ejection time per time ejected. Envoy default 30 s. */
  readonly baseEjectionTimeMs: number;
  /** Cap on one ejection. Envoy default 300 s (or base, if larger). */
  readonly maxEjectionTimeMs: number;
  /** Max share of the service's hosts ejected at once, in percent; at least one host may always go. */
  readonly maxEjectionPercent: number;
}

/** Envoy's defaults (outlier_detection.proto), except where the config overrides. */
export const DEFAULT_OUTLIER_CONFIG: OutlierConfig = Object.freeze({
  consecutive5xx: 5,
  consecutiveLocalOriginFailures: 5,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
});

export interface Ejection {
  readonly service: ServiceName;
  readonly upstream: UpstreamId;
  readonly atMs: number;
  readonly untilMs: number;
  readonly timesEjected: number;
  readonly reason: 'consecutive-5xx' | 'consecutive-local-origin-failure';
}

export interface Restoration {
  readonly service: ServiceName;
  readonly upstream: UpstreamId;
  readonly atMs: number;
  readonly reason: 'expired' | 'active-check-passed' | 'ejection-limit' | 'detection-disabled';
}

export interface OutlierHostView {
  readonly ejected: boolean;
  readonly ejectedUntilMs: number | undefined;
  readonly timesEjected: number;
  readonly consecutive5xx: number;
  readonly consecutiveLocalOrigin: number;
}

interface HostState {
  consecutive5xx: number;
  consecutiveLocal: number;
  /** Value as of `decayFromMs` (decay since then is applied lazily). */
  timesEjected: number;
  /** When the decay clock started: last restoration (or last ejection decision). */
  decayFromMs: number;
  /** Set while ejected. */
  ejectedUntilMs: number | undefined;
}

export class OutlierDetector {
  private cfg: OutlierConfig;
  private readonly hosts = new Map<UpstreamId, HostState>();
  private ejectedCount = 0;
  /** Ejections refused by the max-ejection bound (Envoy's ejections_overflow). */
  overflowCount = 0;
  /** Ejections enforced since creation (Envoy's ejections_enforced_total). */
  ejectionCount = 0;

  constructor(
    readonly service: ServiceName,
    cfg: Partial<OutlierConfig> = {},
  ) {
    this.cfg = resolveOutlierConfig(cfg);
  }

  get config(): OutlierConfig {
    return this.cfg;
  }

  /** Changes thresholds; current ejections keep their end time. */
  setConfig(cfg: Partial<OutlierConfig>): void {
    this.cfg = resolveOutlierConfig(cfg);
  }

  /**
   * Sets the host list, keeping state for ids already known; forgets the others. Returns the
   * restorations needed to keep the ejection bound after the set shrank (soonest to expire first).
   */
  setHosts(ids: readonly UpstreamId[], nowMs: number): Restoration[] {
    const keep = new Set(ids);
    for (const [id, h] of this.hosts) {
      if (!keep.has(id)) {
        if (h.ejectedUntilMs !== undefined) this.ejectedCount--;
        this.hosts.delete(id);
      }
    }
    for (const id of ids) {
      if (!this.hosts.has(id)) {
        this.hosts.set(id, { consecutive5xx: 0, consecutiveLocal: 0, timesEjected: 0, decayFromMs: nowMs, ejectedUntilMs: undefined });
      }
    }
    const out: Restoration[] = [];
    const limit = this.ejectionLimit();
    if (this.ejectedCount > limit) {
      const ejected = [...this.hosts].filter(([, h]) => h.ejectedUntilMs !== undefined);
      ejected.sort((a, b) => a[1].ejectedUntilMs! - b[1].ejectedUntilMs! || (a[0] < b[0] ? -1 : 1));
      for (const [id, h] of ejected) {
        if (this.ejectedCount <= limit) break;
        this.restore(id, h, nowMs);
        out.push({ service: this.service, upstream: id, atMs: nowMs, reason: 'ejection-limit' });
      }
    }
    return out;
  }

  /** Largest number of hosts that may be ejected at once: max(1, floor(pct × n / 100)); 0 with no hosts. */
  ejectionLimit(): number {
    const n = this.hosts.size;
    if (n === 0) return 0;
    return Math.max(1, Math.floor((this.cfg.maxEjectionPercent * n) / 100));
  }

  get ejectedHosts(): number {
    return this.ejectedCount;
  }

  get hostCount(): number {
    return this.hosts.size;
  }

  /**
   * Records one call result. Returns the ejection it caused, if any. Unknown hosts are ignored
   * (a response that raced with the host's removal).
   */
  record(id: UpstreamId, result: CallResult, nowMs: number): Ejection | undefined {
    const h = this.hosts.get(id);
    if (h === undefined) return undefined;
    switch (result.kind) {
      case 'success':
        h.consecutive5xx = 0;
        h.consecutiveLocal = 0;
        return undefined;
      case '5xx':
        h.consecutiveLocal = 0;
        h.consecutive5xx++;
        if (h.consecutive5xx >= this.cfg.consecutive5xx) return this.tryEject(id, h, nowMs, 'consecutive-5xx');
        return undefined;
      case 'local-origin':
        h.consecutiveLocal++;
        if (h.consecutiveLocal >= this.cfg.consecutiveLocalOriginFailures) {
          return this.tryEject(id, h, nowMs, 'consecutive-local-origin-failure');
        }
        return undefined;
    }
  }

  /** Restores every host whose ejection ended at or before `nowMs`. */
  expire(nowMs: number): Restoration[] {
    if (this.ejectedCount === 0) return [];
    const out: Restoration[] = [];
    for (const [id, h] of this.hosts) {
      if (h.ejectedUntilMs !== undefined && h.ejectedUntilMs <= nowMs) {
        this.restore(id, h, nowMs);
        out.push({ service: this.service, upstream: id, atMs: nowMs, reason: 'expired' });
      }
    }
    return out;
  }

  /** Earliest ejection end, for the caller's single timer; undefined when nothing is ejected. */
  nextExpiryMs(): number | undefined {
    if (this.ejectedCount === 0) return undefined;
    let min: number | undefined;
    for (const h of this.hosts.values()) {
      if (h.ejectedUntilMs !== undefined && (min === undefined || h.ejectedUntilMs < min)) min = h.ejectedUntilMs;
    }
    return min;
  }

  /**
   * An active check saw the host recover (unhealthy → healthy): lift its ejection early, like Envoy's
   * successful_active_health_check_uneject_host. Not called on every passing probe, or a healthy
   * /healthz would cancel every 5xx ejection within one interval.
   */
  uneject(id: UpstreamId, nowMs: number): Restoration | undefined {
    const h = this.hosts.get(id);
    if (h === undefined || h.ejectedUntilMs === undefined) return undefined;
    this.restore(id, h, nowMs);
    return { service: this.service, upstream: id, atMs: nowMs, reason: 'active-check-passed' };
  }

  isEjected(id: UpstreamId): boolean {
    return this.hosts.get(id)?.ejectedUntilMs !== undefined;
  }

  host(id: UpstreamId, nowMs: number): OutlierHostView | undefined {
    const h = this.hosts.get(id);
    if (h === undefined) return undefined;
    return {
      ejected: h.ejectedUntilMs !== undefined,
      ejectedUntilMs: h.ejectedUntilMs,
      timesEjected: this.effectiveTimesEjected(h, nowMs),
      consecutive5xx: h.consecutive5xx,
      consecutiveLocalOrigin: h.consecutiveLocal,
    };
  }

  private effectiveTimesEjected(h: HostState, nowMs: number): number {
    if (h.ejectedUntilMs !== undefined || h.timesEjected === 0) return h.timesEjected;
    const steps = Math.floor(Math.max(0, nowMs - h.decayFromMs) / this.cfg.baseEjectionTimeMs);
    return Math.max(0, h.timesEjected - steps);
  }

  private tryEject(id: UpstreamId, h: HostState, nowMs: number, reason: Ejection['reason']): Ejection | undefined {
    if (h.ejectedUntilMs !== undefined) return undefined; // already out; a late response changes nothing
    // Envoy: eject when (ejected + 1) / n ≤ pct, or when nothing is ejected yet. Integer form.
    if (this.ejectedCount >= this.ejectionLimit()) {
      this.overflowCount++;
      return undefined;
    }
    const times = this.effectiveTimesEjected(h, nowMs) + 1;
    const cap = Math.max(this.cfg.maxEjectionTimeMs, this.cfg.baseEjectionTimeMs);
    const untilMs = nowMs + Math.min(this.cfg.baseEjectionTimeMs * times, cap);
    h.timesEjected = times;
    h.ejectedUntilMs = untilMs;
    h.consecutive5xx = 0;
    h.consecutiveLocal = 0;
    this.ejectedCount++;
    this.ejectionCount++;
    return { service: this.service, upstream: id, atMs: nowMs, untilMs, timesEjected: times, reason };
  }

  private restore(_id: UpstreamId, h: HostState, nowMs: number): void {
    h.ejectedUntilMs = undefined;
    h.decayFromMs = nowMs;
    h.consecutive5xx = 0;
    h.consecutiveLocal = 0;
    this.ejectedCount--;
  }
}

/** Fills defaults and checks ranges; a broken config is a programming error (the schema validated it). */
export function resolveOutlierConfig(cfg: Partial<OutlierConfig>): OutlierConfig {
  const out: OutlierConfig = {
    consecutive5xx: cfg.consecutive5xx ?? DEFAULT_OUTLIER_CONFIG.consecutive5xx,
    consecutiveLocalOriginFailures: cfg.consecutiveLocalOriginFailures ?? DEFAULT_OUTLIER_CONFIG.consecutiveLocalOriginFailures,
    baseEjectionTimeMs: cfg.baseEjectionTimeMs ?? DEFAULT_OUTLIER_CONFIG.baseEjectionTimeMs,
    maxEjectionTimeMs: cfg.maxEjectionTimeMs ?? DEFAULT_OUTLIER_CONFIG.maxEjectionTimeMs,
    maxEjectionPercent: cfg.maxEjectionPercent ?? DEFAULT_OUTLIER_CONFIG.maxEjectionPercent,
  };
  if (!(out.consecutive5xx >= 1) || !(out.consecutiveLocalOriginFailures >= 1)) {
    throw new RangeError('outlier thresholds must be ≥ 1');
  }
  if (!(out.baseEjectionTimeMs > 0) || !(out.maxEjectionTimeMs > 0)) throw new RangeError('ejection times must be > 0');
  if (!(out.maxEjectionPercent >= 0 && out.maxEjectionPercent <= 100)) throw new RangeError('maxEjectionPercent must be in [0, 100]');
  return out;
}
