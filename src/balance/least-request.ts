/**
 * `least-request`: power of two choices (Mitzenmacher 2001; Envoy LEAST_REQUEST with choice_count 2,
 * HAProxy `random(2)`, Linkerd's P2C): draw two distinct candidates, send to the less loaded one.
 * Two random choices instead of a full scan avoid the herd that "least loaded" causes when many
 * balancers (here: peers) see the same stale counts, at O(log n) per pick.
 *
 * Scoring, loads from ctx.load (in-flight requests from this peer; missing → idle):
 * - Equal weights: fewer in-flight wins (Envoy, equal-weight path).
 * - Different weights: the two are drawn in proportion to weight, and when their in-flight counts
 *   differ the higher Envoy effective weight w / (inFlight + 1)^bias wins (active_request_bias,
 *   default 1.0; envoy#11252). When the counts are equal the first draw is kept: it was already drawn
 *   in proportion to weight, so an idle service gets weight-proportional traffic, as Envoy's EDF path
 *   gives, instead of every pick going to the heaviest upstream. bias 0 = plain weighted random.
 * - peakEwma option (Linkerd): cost = latencyEwma × (inFlight + 1) / w, lower wins, with
 *   `defaultRttMs` (30 ms) for an upstream with nothing measured. The proxy must feed failures in as
 *   penalty latencies (peak-ewma.ts, FAILURE_PENALTY_MS) or a fast-failing upstream looks best.
 * - Slow start (candidates.ts) scales weights for sampling and scoring while an upstream ramps.
 * - Ties keep the first draw, so results depend only on the random source: same seed, same answers.
 */
import type { Balancer, BalancerOptions, PickCandidate, PickContext, PickResult, UpstreamSnapshot } from './balancer.js';
import type { UpstreamId } from '../model/index.js';
import { createSeededRandom, type Random } from '../lib/rng.js';
import { SlowStart, validateCandidates, validateOptions } from './candidates.js';
import { DEFAULT_RTT_MS } from './peak-ewma.js';
import { prefixSums, samplePrefix, samplePrefixExcept } from './weighted.js';

/** Envoy's default active_request_bias (least_request.proto). */
export const DEFAULT_ACTIVE_REQUEST_BIAS = 1.0;
const FALLBACK_SEED = 0x6c726571; // "lreq"

export class LeastRequestBalancer implements Balancer {
  readonly name = 'least-request' as const;
  private readonly cands: readonly PickCandidate[];
  private readonly prefix: Float64Array;
  private readonly scratch: Float64Array;
  private readonly equalWeights: boolean;
  private readonly slowStart: SlowStart;
  private readonly bias: number;
  private readonly peakEwma: boolean;
  private readonly defaultRttMs: number;
  private readonly ownRandom: Random = createSeededRandom(FALLBACK_SEED);

  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}) {
    validateOptions(opts);
    this.cands = validateCandidates(snapshot);
    this.prefix = prefixSums(this.cands.map((c) => c.weight));
    this.scratch = new Float64Array(this.cands.length);
    this.equalWeights = this.cands.every((c) => c.weight === this.cands[0]!.weight);
    this.slowStart = new SlowStart(this.cands, opts);
    this.bias = opts.activeRequestBias ?? DEFAULT_ACTIVE_REQUEST_BIAS;
    this.peakEwma = opts.peakEwma ?? false;
    this.defaultRttMs = opts.defaultRttMs ?? DEFAULT_RTT_MS;
  }

  pick(ctx: PickContext): UpstreamId | undefined {
    return this.pickDetailed(ctx).id;
  }

  pickDetailed(ctx: PickContext): PickResult {
    const cands = this.cands;
    const n = cands.length;
    const rnd = ctx.random ?? this.ownRandom;
    const exclude = ctx.exclude !== undefined && ctx.exclude.size > 0 ? ctx.exclude : undefined;
    const ramping = this.slowStart.isRamping(ctx.nowMs);
    let a: number;
    let b: number;
    if (exclude === undefined && !ramping && this.equalWeights) {
      if (n === 0) return { id: undefined };
      a = Math.floor(rnd() * n);
      if (n === 1) return { id: cands[0]!.id };
      b = Math.floor(rnd() * (n - 1));
      if (b >= a) b++;
    } else {
      let prefix = this.prefix;
      if (exclude !== undefined || ramping) {
        prefix = this.scratch;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const c = cands[i]!;
          acc += exclude?.has(c.id) ? 0 : this.slowStart.weight(c, ctx.nowMs);
          prefix[i] = acc;
        }
      }
      a = samplePrefix(prefix, rnd());
      if (a < 0) return { id: undefined };
      b = samplePrefixExcept(prefix, a, rnd());
      if (b < 0) return { id: cands[a]!.id };
    }
    return { id: cands[this.better(a, b, ctx, ramping)]!.id };
  }

  /** a unless b is clearly less loaded (see header); ties keep a. */
  private better(a: number, b: number, ctx: PickContext, ramping: boolean): number {
    const ca = this.cands[a]!, cb = this.cands[b]!;
    const la = ctx.load?.(ca.id), lb = ctx.load?.(cb.id);
    const ia = la?.inFlight ?? 0, ib = lb?.inFlight ?? 0;
    const wa = ramping ? this.slowStart.weight(ca, ctx.nowMs) : ca.weight;
    const wb = ramping ? this.slowStart.weight(cb, ctx.nowMs) : cb.weight;
    if (this.peakEwma) {
      const ea = la?.latencyEwmaMs || this.defaultRttMs;
      const eb = lb?.latencyEwmaMs || this.defaultRttMs;
      if (ia === ib && ea === eb) return a;
      return (eb * (ib + 1)) / wb < (ea * (ia + 1)) / wa ? b : a;
    }
    if (ia === ib) return a;
    if (wa === wb) return ib < ia ? b : a;
    if (this.bias === 0) return a;
    const sa = wa / Math.pow(ia + 1, this.bias);
    const sb = wb / Math.pow(ib + 1, this.bias);
    return sb > sa ? b : a;
  }
}

export function createLeastRequestBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): LeastRequestBalancer {
  return new LeastRequestBalancer(snapshot, opts);
}
