/**
 * The balancer interface every load-balancing policy implements (Envoy's chooseHost, Hono's Router<T>).
 *
 * Invariants:
 * - A Balancer is built once per membership/health change from an immutable snapshot and then only
 *   read; the proxy swaps the reference atomically, so no pick sees a half-built structure.
 * - `pick` is pure with respect to its inputs: randomness and time come in through the context.
 * - `undefined` means "no eligible upstream"; the proxy answers 503.
 */
import type { UpstreamId } from '../model/index.js';

/**
 * Every balancer name, in the order the docs list them: the one list (the config schema's enum and the
 * registry's factories are typed by it, so a name without a factory does not compile).
 */
export const BALANCER_NAMES = ['ring-hash', 'maglev', 'least-request', 'round-robin', 'random'] as const;
export type BalancerName = (typeof BALANCER_NAMES)[number];

/** One eligible member of the set a balancer picks from. */
export interface PickCandidate {
  readonly id: UpstreamId;
  /** > 0; relative share of traffic. */
  readonly weight: number;
  /**
   * When this upstream became eligible (joined, or recovered), in ms on the caller's clock; used by
   * slow start. Undefined: eligible since before the balancer existed (no slow start).
   */
  readonly eligibleSinceMs?: number;
}

/** Immutable input to a balancer factory. Order does not matter: structures are keyed by id. */
export interface UpstreamSnapshot {
  readonly candidates: readonly PickCandidate[];
}

/** Live per-upstream stats owned by the proxy; a balancer only reads them. */
export interface UpstreamLoad {
  /** Requests currently in flight to this upstream from this peer. */
  readonly inFlight: number;
  /** Peak-EWMA of response latency in ms (0 when nothing measured yet). */
  readonly latencyEwmaMs: number;
}

export interface PickContext {
  /** The request's hash key (already extracted per `hashOn`); absent → non-hash fallback pick. */
  readonly hashKey?: string | undefined;
  /** 0 for the first try, 1.. for retries. */
  readonly attempt?: number;
  /** Upstreams already tried for this request; never picked again. */
  readonly exclude?: ReadonlySet<UpstreamId> | undefined;
  /** Read-only live view of per-upstream stats. Missing → treat every upstream as idle. */
  readonly load?: ((id: UpstreamId) => UpstreamLoad | undefined) | undefined;
  /** Current time (ms) on the same clock as `eligibleSinceMs`. */
  readonly nowMs?: number;
  /** Random source in [0, 1). Missing → the balancer's deterministic fallback. */
  readonly random?: (() => number) | undefined;
  /**
   * Sum of `inFlight` over the snapshot's upstreams, when the proxy keeps it; bounded loads need it
   * and otherwise sum `load` over every candidate (O(n) per pick).
   */
  readonly totalInFlight?: number | undefined;
}

/** Why a pick came out as it did; counted by the proxy (e.g. hash key missing → fallback). */
export interface PickResult {
  readonly id: UpstreamId | undefined;
  /** True when a hash balancer had no key and fell back to a non-hash pick. */
  readonly fallback?: boolean;
  /** True when bounded loads moved the request past its key's home upstream (it was at its bound). */
  readonly overflowed?: boolean;
}

export interface Balancer {
  readonly name: BalancerName;
  pick(ctx: PickContext): UpstreamId | undefined;
  /**
   * `pick` plus why (fallback, overflow). Every built-in balancer has it; the conformance suite and the
   * bounded-load tests read it. The proxy does not (it counts a missing hash key itself).
   */
  pickDetailed?(ctx: PickContext): PickResult;
  /** Share of the key space each upstream owns (hash balancers); others return undefined. */
  shares?(): ReadonlyMap<UpstreamId, number> | undefined;
}

export interface BalancerOptions {
  /** Consistent hashing with bounded loads factor c (≥ 1); undefined = unbounded. */
  readonly boundedLoad?: number | undefined;
  /** ring-hash: minimum ring size (virtual nodes in total). */
  readonly minRingSize?: number | undefined;
  /** maglev: prime table size. */
  readonly tableSize?: number | undefined;
  /** least-request: Envoy's active_request_bias. */
  readonly activeRequestBias?: number | undefined;
  /** least-request: use peak-EWMA latency in the score. */
  readonly peakEwma?: boolean | undefined;
  /** Slow start window for newly eligible upstreams (ms); 0/undefined = off. */
  readonly slowStartMs?: number | undefined;
  /** Slow start: Envoy's aggression (default 1 = linear ramp). */
  readonly slowStartAggression?: number | undefined;
  /** Slow start: Envoy's min_weight_percent (default 10). */
  readonly slowStartMinWeightPercent?: number | undefined;
  /** ring-hash: virtual nodes per unit of weight (fixed, so membership changes move ~1/n of keys). */
  readonly vnodesPerWeight?: number | undefined;
  /** ring-hash: cap on virtual nodes in total; above it every count is scaled down. */
  readonly maxRingSize?: number | undefined;
  /** least-request with peakEwma: latency assumed for an upstream with nothing measured yet (ms). */
  readonly defaultRttMs?: number | undefined;
}

export type BalancerFactory = (snapshot: UpstreamSnapshot, opts: BalancerOptions) => Balancer;
