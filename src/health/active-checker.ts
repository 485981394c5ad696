/**
 * Active health checking for one service: an HTTP GET of `path` on each upstream, on this peer's own
 * schedule (never per request), through an injected `Probe` (the undici one lives in src/proxy/).
 *
 * State machine per upstream (HAProxy rise/fall, Envoy healthy/unhealthy_threshold):
 *
 *            first check passes                     healthyThreshold passes in a row
 *   unknown ───────────────────▶ healthy ◀──────────────────────────────────────── unhealthy
 *      │                            └───────────────────────────────────────────────▶ ▲
 *      │                                   unhealthyThreshold failures in a row        │
 *      └────────────────────────────── first check fails ──────────────────────────────┘
 *
 * - `unknown` (before the first check) counts as eligible in host-health.ts, so traffic flows at
 *   start-up and when an upstream joins. The first probe decides alone, in both directions: this is
 *   HAProxy's default `init-state up` ("immediately available … a health check that can turn it to
 *   the DOWN state immediately if it fails") and Envoy's "one success at startup marks healthy".
 *   The first probe of a new upstream runs within 10% of the interval, so the window is short.
 * - Timing: each probe is scheduled when the previous one finished (probes of one upstream never
 *   overlap), after `intervalMs × (1 ± 10%)` uniform jitter. Why 10%: several peers × several
 *   upstreams started together would otherwise probe in lock-step forever; 10% spreads them over a
 *   fifth of an interval within a few rounds while keeping the detection bound near nominal —
 *   a down upstream leaves rotation within `unhealthyThreshold × (1.1 × interval + timeout)`.
 *   (Envoy: interval_jitter_percent; HAProxy: spread-checks, 0–50%.)
 * - A probe that has not settled after `timeoutMs` is aborted and counts as a failure, whatever the
 *   probe function does with the signal.
 * - Expected statuses default to 200–299. Probes do not follow redirects, and a 3xx from a health
 *   path is usually a redirect to a login page, i.e. a misconfiguration — so unlike HAProxy/NGINX
 *   (2xx–3xx) it fails. Envoy's default is 200 only; 2xx is the friendlier middle.
 * - `update(targets, cfg)` keeps the state of upstreams whose id and url are unchanged; a changed url
 *   is a different backend and starts over from `unknown`. Removed upstreams lose their timer and
 *   their in-flight probe is aborted; a result that arrives after removal/stop is dropped (generation).
 * - `stop()` clears every timer and aborts every in-flight probe. Timers come from the Scheduler
 *   (unref'd in production).
 */
import type { HealthStatus, ServiceName, UpstreamId } from '../model/index.js';
import type { Scheduler, TimerHandle } from './scheduler.js';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';

/** Rejects on connect error or timeout; resolves with the status of whatever answered. `tls`: the
 *  service's upstreamTls, for https URLs (passed through, never read here). */
export type Probe = (url: string, path: string, timeoutMs: number, signal: AbortSignal, tls?: UpstreamTlsMaterial) => Promise<{ status: number }>;

/** One status code, or an inclusive range `[from, to]`. */
export type StatusMatcher = number | readonly [number, number];

export interface HealthCheckConfig {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Default: 200–299. */
  readonly expectedStatuses?: readonly StatusMatcher[] | undefined;
  /** The service's upstreamTls: probes of https upstreams dial like the data path does. */
  readonly tls?: UpstreamTlsMaterial | undefined;
}

/** ±10% of the interval; see the header for why. */
export const INTERVAL_JITTER = 0.1;
export const DEFAULT_EXPECTED_STATUSES: readonly StatusMatcher[] = Object.freeze([[200, 299] as const]);

export interface LastCheck {
  readonly atMs: number;
  readonly ok: boolean;
  readonly status?: number | undefined;
  readonly error?: string | undefined;
  readonly durationMs: number;
}

export interface HealthTransition {
  readonly service: ServiceName;
  readonly upstream: UpstreamId;
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly reason: string;
  readonly atMs: number;
}

export interface CheckTarget {
  readonly id: UpstreamId;
  readonly url: string;
}

export interface ActiveCheckerDeps {
  readonly probe: Probe;
  readonly scheduler: Scheduler;
  readonly nowMs: () => number;
  readonly random: () => number;
  readonly onTransition: (t: HealthTransition) => void;
}

export interface ActiveHostView {
  readonly health: HealthStatus;
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
  readonly lastCheck: LastCheck | undefined;
  /** Checks completed so far, by result (meshgate_health_checks_total). */
  readonly checksPassed: number;
  readonly checksFailed: number;
  /** When `health` took its current value (the dashboard's time in state). */
  readonly sinceMs: number;
}

interface HostState {
  url: string;
  health: HealthStatus;
  successes: number;
  failures: number;
  lastCheck: LastCheck | undefined;
  checksPassed: number;
  checksFailed: number;
  sinceMs: number;
  timer: TimerHandle | undefined;
  inflight: AbortController | undefined;
  /** Timeout guard of the in-flight probe. */
  guard: TimerHandle | undefined;
  /** Bumped on removal/url change/stop so stale probe results are dropped. */
  generation: number;
}

class ProbeTimeoutError extends Error {
  constructor(ms: number) {
    super(`timeout after ${ms} ms`);
  }
}

export class ActiveChecker {
  private cfg: HealthCheckConfig;
  private readonly hosts = new Map<UpstreamId, HostState>();
  private stopped = false;
  /** Probes started since creation (for metrics). */
  probesStarted = 0;

  constructor(
    readonly service: ServiceName,
    cfg: HealthCheckConfig,
    private readonly deps: ActiveCheckerDeps,
  ) {
    validateHealthCheckConfig(cfg);
    this.cfg = cfg;
  }

  get config(): HealthCheckConfig {
    return this.cfg;
  }

  /** Sets the probed upstreams (and optionally a new config); keeps state of unchanged ones. */
  update(targets: readonly CheckTarget[], cfg: HealthCheckConfig = this.cfg): void {
    if (this.stopped) return;
    validateHealthCheckConfig(cfg);
    const cfgChanged = !sameConfig(cfg, this.cfg);
    this.cfg = cfg;
    const wanted = new Map<UpstreamId, string>();
    for (const t of targets) wanted.set(t.id, t.url);
    for (const [id, h] of this.hosts) {
      const url = wanted.get(id);
      if (url === undefined || url !== h.url) {
        this.cancel(h);
        this.hosts.delete(id);
      }
    }
    for (const [id, url] of wanted) {
      const h = this.hosts.get(id);
      if (h === undefined) {
        const fresh: HostState = {
          url, health: 'unknown', successes: 0, failures: 0, lastCheck: undefined, checksPassed: 0, checksFailed: 0, sinceMs: this.deps.nowMs(),
          timer: undefined, inflight: undefined, guard: undefined, generation: 0,
        };
        this.hosts.set(id, fresh);
        this.schedule(id, fresh, this.firstDelayMs());
      } else if (cfgChanged && h.timer !== undefined) {
        // A new interval takes effect now rather than after the old (maybe long) one.
        this.deps.scheduler.clearTimeout(h.timer);
        h.timer = undefined;
        this.schedule(id, h, this.firstDelayMs());
      }
    }
  }

  health(id: UpstreamId): HealthStatus | undefined {
    return this.hosts.get(id)?.health;
  }

  view(id: UpstreamId): ActiveHostView | undefined {
    const h = this.hosts.get(id);
    if (h === undefined) return undefined;
    return { health: h.health, consecutiveSuccesses: h.successes, consecutiveFailures: h.failures, lastCheck: h.lastCheck, checksPassed: h.checksPassed, checksFailed: h.checksFailed, sinceMs: h.sinceMs };
  }

  /** Ids currently probed, for tests and status. */
  ids(): UpstreamId[] {
    return [...this.hosts.keys()];
  }

  /** Clears every timer and aborts every in-flight probe; the checker is unusable afterwards. */
  stop(): void {
    this.stopped = true;
    for (const h of this.hosts.values()) this.cancel(h);
    this.hosts.clear();
  }

  /** Pending timers + in-flight probes; 0 after stop(). For tests. */
  pendingForTest(): number {
    let n = 0;
    for (const h of this.hosts.values()) {
      n += (h.timer !== undefined ? 1 : 0) + (h.inflight !== undefined ? 1 : 0) + (h.guard !== undefined ? 1 : 0);
    }
    return n;
  }

  private cancel(h: HostState): void {
    h.generation++;
    if (h.timer !== undefined) this.deps.scheduler.clearTimeout(h.timer);
    h.timer = undefined;
    if (h.guard !== undefined) this.deps.scheduler.clearTimeout(h.guard);
    h.guard = undefined;
    if (h.inflight !== undefined) h.inflight.abort(new Error('health check cancelled'));
    h.inflight = undefined;
  }

  private firstDelayMs(): number {
    return this.deps.random() * this.cfg.intervalMs * INTERVAL_JITTER;
  }

  /** interval × (1 ± INTERVAL_JITTER), uniform. */
  nextDelayMs(): number {
    return this.cfg.intervalMs * (1 + (this.deps.random() * 2 - 1) * INTERVAL_JITTER);
  }

  private schedule(id: UpstreamId, h: HostState, delayMs: number): void {
    const gen = h.generation;
    h.timer = this.deps.scheduler.setTimeout(() => {
      if (h.generation !== gen || this.stopped) return;
      h.timer = undefined;
      this.runProbe(id, h);
    }, delayMs);
  }

  private runProbe(id: UpstreamId, h: HostState): void {
    const cfg = this.cfg;
    const gen = h.generation;
    const ac = new AbortController();
    h.inflight = ac;
    this.probesStarted++;
    const started = this.deps.nowMs();
    const guard = this.deps.scheduler.setTimeout(() => ac.abort(new ProbeTimeoutError(cfg.timeoutMs)), cfg.timeoutMs);
    h.guard = guard;
    let probed: Promise<{ status: number }>;
    try {
      probed = this.deps.probe(h.url, cfg.path, cfg.timeoutMs, ac.signal, cfg.tls);
    } catch (err) {
      probed = Promise.reject(err);
    }
    const aborted = new Promise<never>((_, reject) => {
      ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
    });
    Promise.race([probed, aborted]).then(
      (res) => this.finish(id, h, gen, guard, started, res.status, undefined),
      (err: unknown) => this.finish(id, h, gen, guard, started, undefined, describeError(err)),
    );
    probed.catch(() => undefined); // settled after an abort: nobody else listens
  }

  private finish(id: UpstreamId, h: HostState, gen: number, guard: TimerHandle, started: number,
    status: number | undefined, error: string | undefined): void {
    this.deps.scheduler.clearTimeout(guard);
    if (h.generation !== gen || this.stopped) return; // removed, url changed, or stopped meanwhile
    h.inflight = undefined;
    h.guard = undefined;
    const atMs = this.deps.nowMs();
    const ok = status !== undefined && statusMatches(status, this.cfg.expectedStatuses ?? DEFAULT_EXPECTED_STATUSES);
    h.lastCheck = { atMs, ok, status, error, durationMs: Math.max(0, atMs - started) };
    if (ok) h.checksPassed++;
    else h.checksFailed++;
    const reason = error !== undefined ? error : `status ${status}`;
    this.apply(id, h, ok, reason, atMs);
    this.schedule(id, h, this.nextDelayMs());
  }

  private apply(id: UpstreamId, h: HostState, ok: boolean, reason: string, atMs: number): void {
    const from = h.health;
    let to: HealthStatus = from;
    if (ok) {
      h.successes++;
      h.failures = 0;
      if (from === 'unknown' || (from === 'unhealthy' && h.successes >= this.cfg.healthyThreshold)) to = 'healthy';
    } else {
      h.failures++;
      h.successes = 0;
      if (from === 'unknown' || (from === 'healthy' && h.failures >= this.cfg.unhealthyThreshold)) to = 'unhealthy';
    }
    if (to === from) return;
    h.health = to;
    h.sinceMs = atMs;
    const detail = from === 'unknown'
      ? 'first check'
      : ok ? `${h.successes} checks passed` : `${h.failures} checks failed`;
    this.deps.onTransition({ service: this.service, upstream: id, from, to, reason: `${detail}, last: ${reason}`, atMs });
  }
}

export function statusMatches(status: number, expected: readonly StatusMatcher[]): boolean {
  for (const m of expected) {
    if (typeof m === 'number' ? status === m : status >= m[0] && status <= m[1]) return true;
  }
  return false;
}

export function validateHealthCheckConfig(cfg: HealthCheckConfig): void {
  if (!cfg.path.startsWith('/')) throw new RangeError(`health check path must start with '/': ${cfg.path}`);
  if (!(cfg.intervalMs > 0) || !(cfg.timeoutMs > 0)) throw new RangeError('health check interval and timeout must be > 0');
  if (!(cfg.healthyThreshold >= 1) || !(cfg.unhealthyThreshold >= 1)) throw new RangeError('health check thresholds must be ≥ 1');
}

function sameConfig(a: HealthCheckConfig, b: HealthCheckConfig): boolean {
  return a.path === b.path && a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs
    && a.healthyThreshold === b.healthyThreshold && a.unhealthyThreshold === b.unhealthyThreshold
    && JSON.stringify(a.expectedStatuses ?? null) === JSON.stringify(b.expectedStatuses ?? null);
}

function describeError(err: unknown): string {
  if (err instanceof ProbeTimeoutError) return err.message;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const c = typeof code === 'string' ? code : typeof cause?.code === 'string' ? cause.code : undefined;
    return c !== undefined ? `${c}: ${err.message}` : err.message;
  }
  return String(err);
}
