/**
 * Public surface of src/health: the HealthMonitor facade the app and the proxy use, plus the parts
 * the proxy owns per service (ConcurrencyLimits, RetryBudget).
 *
 * HealthMonitor, per service:
 * - runs the active checker (active-checker.ts) on `active` and `draining` upstreams — `disabled`
 *   ones are not probed (operator maintenance; HAProxy stops checks in `maint` too) and come back as
 *   `unknown` when re-enabled;
 * - feeds passive results to the outlier detector (outlier-detector.ts) and arms ONE timer per
 *   service for the earliest ejection end;
 * - merges both with operator state into a cached Eligibility (host-health.ts) whose version goes
 *   up, and whose onChange listeners fire, only when the result changes;
 * - emits on the EventBus: `health:changed` on active transitions, `outlier:ejected` /
 *   `outlier:restored`, `panic:changed` on panic transitions.
 *
 * Invariants: `recordResult(service, id, CALL_SUCCESS)` and `eligibility()` are O(1) and allocate
 * nothing (pass the shared CALL_SUCCESS rather than a fresh `{ kind: 'success' }`); state of
 * unchanged upstreams survives `setService`; after `close()` no timer is pending and no probe is in
 * flight.
 */
import type { EventBus } from '../observability/events.js';
import type { HealthStatus, ServiceName, UpstreamId, UpstreamSpec } from '../model/index.js';
import { ActiveChecker, type HealthCheckConfig, type HealthTransition, type LastCheck, type Probe } from './active-checker.js';
import { DEFAULT_PANIC_THRESHOLD_PERCENT, ServiceEligibility, type Eligibility, type HostSignals } from './host-health.js';
import { OutlierDetector, type CallResult, type Ejection, type OutlierConfig, type Restoration } from './outlier-detector.js';
import { realScheduler, type Scheduler, type TimerHandle } from './scheduler.js';

export { ActiveChecker, INTERVAL_JITTER, DEFAULT_EXPECTED_STATUSES, statusMatches } from './active-checker.js';
export type { Probe, HealthCheckConfig, StatusMatcher, LastCheck, HealthTransition, CheckTarget } from './active-checker.js';
export { OutlierDetector, CALL_SUCCESS, DEFAULT_OUTLIER_CONFIG } from './outlier-detector.js';
export type { CallResult, LocalOriginCause, OutlierConfig, Ejection, Restoration } from './outlier-detector.js';
export { computeEligibility, DEFAULT_PANIC_THRESHOLD_PERCENT } from './host-health.js';
export type { Eligibility } from './host-health.js';
export { ConcurrencyLimits, DEFAULT_CONCURRENCY_LIMITS } from './concurrency-limits.js';
export type { BreakerReason, ConcurrencyLimitSettings } from './concurrency-limits.js';
export { RetryBudget, DEFAULT_RETRY_BUDGET } from './retry-budget.js';
export type { RetryBudgetConfig } from './retry-budget.js';
export { realScheduler } from './scheduler.js';
export type { Scheduler, TimerHandle } from './scheduler.js';

export interface OutlierDetectionSettings {
  readonly consecutive5xx: number;
  readonly consecutiveLocalOriginFailures?: number | undefined;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs?: number | undefined;
  readonly maxEjectionPercent: number;
}

export interface ServiceHealthConfig {
  readonly upstreams: readonly UpstreamSpec[];
  /** Omitted: no active checks; every upstream stays `unknown` (eligible). */
  readonly healthCheck?: HealthCheckConfig | undefined;
  /** Omitted: no passive ejection. */
  readonly outlierDetection?: OutlierDetectionSettings | undefined;
  /** Default 50 (Envoy); 0 disables panic mode. */
  readonly panicThresholdPercent?: number | undefined;
}

export interface UpstreamHealthView {
  readonly health: HealthStatus;
  readonly ejected: boolean;
  readonly ejectedUntilMs?: number | undefined;
  readonly timesEjected: number;
  readonly lastCheck?: LastCheck | undefined;
  readonly consecutiveCheckFailures: number;
  readonly consecutiveCheckSuccesses: number;
  /** Active checks completed, by result; 0 without `healthCheck:`. */
  readonly checksPassed: number;
  readonly checksFailed: number;
  /** When the active-check health took its current value (undefined without `healthCheck:`). */
  readonly healthSinceMs?: number | undefined;
  /** Usable for existing pins under the service's current eligibility. */
  readonly usable: boolean;
}

export interface HealthMonitorOptions {
  readonly bus: EventBus;
  readonly probe: Probe;
  readonly nowMs?: () => number;
  readonly random?: () => number;
  /** Timer seam for tests; default: unref'd Node timers. */
  readonly scheduler?: Scheduler;
}

interface ServiceEntry {
  readonly name: ServiceName;
  specs: readonly UpstreamSpec[];
  /** The ids of `specs`: upstreamHealth is asked once per upstream (status, metrics), so O(1) here keeps that O(n), not O(n²). */
  specIds: ReadonlySet<UpstreamId>;
  panicThresholdPercent: number;
  checker: ActiveChecker | undefined;
  detector: OutlierDetector | undefined;
  readonly eligibility: ServiceEligibility;
  readonly signals: HostSignals;
  expiryTimer: TimerHandle | undefined;
  expiryAtMs: number | undefined;
  lastPanic: boolean;
}

const EMPTY_ELIGIBILITY: Eligibility = Object.freeze({
  pickable: Object.freeze([]) as readonly UpstreamSpec[],
  usable: () => false,
  panic: false,
  version: 0,
  healthy: 0,
  total: 0,
  eligibleSinceMs: () => undefined,
});

export class HealthMonitor {
  private readonly bus: EventBus;
  private readonly probe: Probe;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly scheduler: Scheduler;
  private readonly services = new Map<ServiceName, ServiceEntry>();
  private readonly listeners = new Set<(service: ServiceName) => void>();
  private closed = false;

  constructor(opts: HealthMonitorOptions) {
    this.bus = opts.bus;
    this.probe = opts.probe;
    this.now = opts.nowMs ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.scheduler = opts.scheduler ?? realScheduler;
  }

  /** Creates or updates a service; keeps health and ejection state of unchanged upstreams. */
  setService(service: ServiceName, cfg: ServiceHealthConfig): void {
    if (this.closed) return; // a reload racing with shutdown: nothing left to configure
    let s = this.services.get(service);
    if (s === undefined) {
      const entry: ServiceEntry = {
        name: service, specs: [], specIds: new Set(), panicThresholdPercent: DEFAULT_PANIC_THRESHOLD_PERCENT,
        checker: undefined, detector: undefined, eligibility: new ServiceEligibility(),
        signals: {
          health: (id) => entry.checker?.health(id) ?? 'unknown',
          ejected: (id) => entry.detector?.isEjected(id) ?? false,
        },
        expiryTimer: undefined, expiryAtMs: undefined, lastPanic: false,
      };
      s = entry;
      this.services.set(service, s);
    }
    const panic = cfg.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT;
    if (!(panic >= 0 && panic <= 100)) throw new RangeError('panicThresholdPercent must be in [0, 100]');
    s.specs = [...cfg.upstreams];
    s.specIds = new Set(s.specs.map((u) => u.id));
    s.panicThresholdPercent = panic;
    const served = s.specs.filter((u) => u.state !== 'disabled');
    const nowMs = this.now();

    if (cfg.healthCheck !== undefined) {
      const targets = served.map((u) => ({ id: u.id, url: u.url }));
      if (s.checker === undefined) {
        const entry = s;
        s.checker = new ActiveChecker(service, cfg.healthCheck, {
          probe: this.probe,
          scheduler: this.scheduler,
          nowMs: this.now,
          random: this.random,
          onTransition: (t) => this.onTransition(entry, t),
        });
      }
      s.checker.update(targets, cfg.healthCheck);
    } else if (s.checker !== undefined) {
      s.checker.stop();
      s.checker = undefined;
    }

    if (cfg.outlierDetection !== undefined) {
      const o = cfg.outlierDetection;
      const oc: Partial<OutlierConfig> = {
        consecutive5xx: o.consecutive5xx,
        consecutiveLocalOriginFailures: o.consecutiveLocalOriginFailures,
        baseEjectionTimeMs: o.baseEjectionTimeMs,
        maxEjectionTimeMs: o.maxEjectionTimeMs,
        maxEjectionPercent: o.maxEjectionPercent,
      };
      if (s.detector === undefined) s.detector = new OutlierDetector(service, oc);
      else s.detector.setConfig(oc);
      for (const r of s.detector.setHosts(served.map((u) => u.id), nowMs)) this.emitRestored(r);
    } else if (s.detector !== undefined) {
      // Outlier detection switched off: whoever it had ejected is back.
      const d = s.detector;
      s.detector = undefined;
      for (const u of served) {
        if (d.isEjected(u.id)) this.emitRestored({ service, upstream: u.id, atMs: nowMs, reason: 'detection-disabled' });
      }
    }
    this.armExpiry(s);
    this.recompute(s);
  }

  removeService(service: ServiceName): void {
    const s = this.services.get(service);
    if (s === undefined) return;
    s.checker?.stop();
    if (s.expiryTimer !== undefined) this.scheduler.clearTimeout(s.expiryTimer);
    this.services.delete(service);
    this.notify(service);
  }

  /** Passive result from the proxy, one per upstream response or failure. */
  recordResult(service: ServiceName, upstream: UpstreamId, result: CallResult): void {
    const d = this.services.get(service)?.detector;
    if (d === undefined) return;
    if (result.kind === 'success') {
      d.record(upstream, result, 0); // success reads no time
      return;
    }
    const ej = d.record(upstream, result, this.now());
    if (ej !== undefined) {
      const s = this.services.get(service)!;
      this.emitEjected(ej);
      this.armExpiry(s);
      this.recompute(s);
    }
  }

  eligibility(service: ServiceName): Eligibility {
    return this.services.get(service)?.eligibility.value ?? EMPTY_ELIGIBILITY;
  }

  upstreamHealth(service: ServiceName, upstream: UpstreamId): UpstreamHealthView | undefined {
    const s = this.services.get(service);
    if (s === undefined || !s.specIds.has(upstream)) return undefined;
    const active = s.checker?.view(upstream);
    const outlier = s.detector?.host(upstream, this.now());
    return {
      health: active?.health ?? 'unknown',
      ejected: outlier?.ejected ?? false,
      ejectedUntilMs: outlier?.ejectedUntilMs,
      timesEjected: outlier?.timesEjected ?? 0,
      lastCheck: active?.lastCheck,
      consecutiveCheckFailures: active?.consecutiveFailures ?? 0,
      consecutiveCheckSuccesses: active?.consecutiveSuccesses ?? 0,
      checksPassed: active?.checksPassed ?? 0,
      checksFailed: active?.checksFailed ?? 0,
      healthSinceMs: active?.sinceMs,
      usable: s.eligibility.value.usable(upstream),
    };
  }

  serviceNames(): ServiceName[] {
    return [...this.services.keys()];
  }

  /** Called with the service name whenever its eligibility changed (or it was removed). */
  onChange(cb: (service: ServiceName) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  /** Stops every checker and timer. Idempotent. */
  close(): void {
    this.closed = true;
    for (const s of this.services.values()) {
      s.checker?.stop();
      if (s.expiryTimer !== undefined) this.scheduler.clearTimeout(s.expiryTimer);
      s.expiryTimer = undefined;
    }
    this.services.clear();
    this.listeners.clear();
  }

  private onTransition(s: ServiceEntry, t: HealthTransition): void {
    if (this.services.get(s.name) !== s) return;
    this.bus.emit('health:changed', { service: t.service, upstream: t.upstream, from: t.from, to: t.to, reason: t.reason });
    if (t.from === 'unhealthy' && t.to === 'healthy' && s.detector !== undefined) {
      const r = s.detector.uneject(t.upstream, t.atMs);
      if (r !== undefined) {
        this.emitRestored(r);
        this.armExpiry(s);
      }
    }
    this.recompute(s);
  }

  private recompute(s: ServiceEntry): void {
    const { changed } = s.eligibility.recompute(s.specs, s.signals, s.panicThresholdPercent, this.now());
    if (!changed) return;
    const e = s.eligibility.value;
    if (e.panic !== s.lastPanic) {
      s.lastPanic = e.panic;
      this.bus.emit('panic:changed', { service: s.name, panic: e.panic, healthy: e.healthy, total: e.total });
    }
    this.notify(s.name);
  }

  private notify(service: ServiceName): void {
    for (const l of this.listeners) {
      try {
        l(service);
      } catch {
        // A broken listener must not stop health tracking or the other listeners.
      }
    }
  }

  /** One timer per service, at the earliest ejection end. */
  private armExpiry(s: ServiceEntry): void {
    const next = s.detector?.nextExpiryMs();
    if (next === s.expiryAtMs && (next === undefined || s.expiryTimer !== undefined)) return;
    if (s.expiryTimer !== undefined) this.scheduler.clearTimeout(s.expiryTimer);
    s.expiryTimer = undefined;
    s.expiryAtMs = next;
    if (next === undefined) return;
    s.expiryTimer = this.scheduler.setTimeout(() => {
      s.expiryTimer = undefined;
      s.expiryAtMs = undefined;
      if (this.services.get(s.name) !== s || s.detector === undefined) return;
      for (const r of s.detector.expire(this.now())) this.emitRestored(r);
      this.armExpiry(s);
      this.recompute(s);
    }, Math.max(0, next - this.now()));
  }

  private emitEjected(e: Ejection): void {
    this.bus.emit('outlier:ejected', { service: e.service, upstream: e.upstream, untilMs: e.untilMs, timesEjected: e.timesEjected, reason: e.reason });
  }

  private emitRestored(r: Restoration): void {
    this.bus.emit('outlier:restored', { service: r.service, upstream: r.upstream, reason: r.reason });
  }
}
