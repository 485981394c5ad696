/**
 * How an attempt of either request path (HTTP in forward.ts, Upgrade in upgrade-exchange.ts) gets its
 * upstream: the balancer's pick (or the sticky pin), then a slot of the upstream's and the service's
 * circuit breakers. One definition, so the two paths cannot drift apart in what they count or answer.
 */
import type { Metrics } from '../observability/metrics.js';
import type { ServiceSnapshot } from './routing-snapshot.js';
import type { ServiceState } from './service-state.js';
import type { UpstreamRuntime } from './upstream-runtime.js';

export interface PickArgs {
  readonly svc: ServiceSnapshot;
  readonly state: ServiceState;
  readonly metrics: Metrics;
  readonly random: () => number;
  readonly attempt: number;
  readonly tried: ReadonlySet<string> | undefined;
  /** From the service's `hashOn`; undefined when the request does not carry it (counted as a fallback). */
  readonly hashKey: string | undefined;
}

/** The balancer's pick for one attempt (also what sticky uses for new and moved pins). */
export function pickUpstream(a: PickArgs): string | undefined {
  const svc = a.svc;
  if (svc.hashOn !== undefined && a.hashKey === undefined) a.metrics.hashFallbacks.labels(svc.name).inc();
  return svc.balancer.pick({ hashKey: a.hashKey, attempt: a.attempt, exclude: a.tried, load: svc.load, totalInFlight: a.state.inFlight, nowMs: Date.now(), random: a.random });
}

/** An answer meshgate writes itself: status, `x-meshgate-reason`, short text. */
export interface LocalAnswer {
  readonly status: number;
  readonly reason: string;
  readonly text: string;
}

export type Admission =
  | { readonly ok: true; readonly upstream: UpstreamRuntime }
  | ({ readonly ok: false } & LocalAnswer);

const EXHAUSTED: LocalAnswer = { status: 502, reason: 'upstreams-exhausted', text: 'no upstream answered' };

/**
 * Takes the breaker slots for upstream `id` (undefined: nothing eligible). On success the caller owns
 * one upstream slot and one pending slot and must release both; on refusal it owns nothing.
 * `lastFailure`: why the previous attempt failed, when it did (connect failure, TLS, reset, timeout):
 * a retry that finds no upstream left answers with it, so a lone upstream's cause is not hidden
 * behind `upstreams-exhausted`.
 */
export function admitAttempt(svc: ServiceSnapshot, state: ServiceState, metrics: Metrics, id: string | undefined, attempt: number, lastFailure?: LocalAnswer): Admission {
  const rt = id === undefined ? undefined : svc.upstreams.get(id);
  if (rt === undefined) {
    return attempt > 0
      ? { ok: false, ...(lastFailure ?? EXHAUSTED) }
      : { ok: false, status: 503, reason: 'no-healthy-upstream', text: 'no healthy upstream' };
  }
  const refused = state.limits.tryAcquire(rt.spec.id);
  if (refused !== undefined) {
    metrics.breakerRejections.labels(svc.name, refused).inc();
    return { ok: false, status: 503, reason: 'circuit-open', text: `upstream ${rt.spec.id} at max in-flight` };
  }
  const pendingRefused = state.limits.tryAcquirePending();
  if (pendingRefused !== undefined) {
    state.limits.release(rt.spec.id);
    metrics.breakerRejections.labels(svc.name, pendingRefused).inc();
    return { ok: false, status: 503, reason: 'circuit-open', text: `service ${svc.name} at max pending` };
  }
  return { ok: true, upstream: rt };
}

/** What the next attempt of either path is decided from: the request's own routing state. */
export interface AttemptRoute {
  readonly svc: ServiceSnapshot;
  readonly state: ServiceState;
  readonly attempt: number;
  /** The sticky pin: the first attempt goes there, a retry to the balancer's pick. */
  readonly pinnedUpstream: string | undefined;
  /** See admitAttempt. */
  readonly lastFailure: LocalAnswer | undefined;
  pick(): string | undefined;
}

/**
 * The next attempt's upstream, admitted (admitAttempt) and counted in flight for the service and the
 * upstream (what least-request and bounded loads read). On success the caller owns both breaker slots
 * and both counts: releaseUpstream gives back all but the pending slot, which goes when the answer
 * head arrives or the attempt fails first.
 */
export function admitNext(r: AttemptRoute, metrics: Metrics): Admission {
  const id = r.pinnedUpstream !== undefined && r.attempt === 0 ? r.pinnedUpstream : r.pick();
  const admitted = admitAttempt(r.svc, r.state, metrics, id, r.attempt, r.lastFailure);
  if (admitted.ok) {
    r.state.inFlight++;
    admitted.upstream.inFlight++;
  }
  return admitted;
}

/** Gives back the upstream slot and the in-flight counts admitNext took for `rt`. */
export function releaseUpstream(state: ServiceState, rt: UpstreamRuntime): void {
  state.inFlight--;
  rt.inFlight--;
  state.limits.release(rt.spec.id);
}

/**
 * A slot of the service's retry budget for the next attempt (Envoy's retry budget), counted as
 * `started` or `budget-exhausted`. The caller holds the slot until that attempt ends.
 */
export function takeRetrySlot(state: ServiceState, metrics: Metrics, service: string): boolean {
  if (!state.budget.tryStartRetry()) {
    metrics.retries.labels(service, 'budget-exhausted').inc();
    return false;
  }
  metrics.retries.labels(service, 'started').inc();
  return true;
}
