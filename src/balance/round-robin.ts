/**
 * `round-robin`: smooth weighted round robin (nginx, ngx_http_upstream_round_robin.c
 * `ngx_http_upstream_get_peer`): every pick adds each candidate's weight to its running score, takes
 * the highest score and subtracts the total from it. Weights 5:1:1 give a a b a c a a rather than
 * a a a a a b c; with equal weights it is plain rotation.
 *
 * Invariants:
 * - Unlike the other balancers it keeps state (the running scores): the sequence depends on how many
 *   picks came before, as with nginx or Envoy's EDF scheduler. A new balancer starts a new sequence.
 * - Over any window of W = Σ weights picks with no exclusions and fixed weights, each candidate is
 *   picked exactly its weight times (integer weights) — the smoothness property nginx documents.
 * - Excluded candidates take no part in the round (nginx skips `tried` peers the same way), so a
 *   retry does not shift the others' turns.
 * - Slow start: effective weights (candidates.ts) replace configured ones while a candidate ramps.
 * - No randomness: same picks in, same answers out.
 * - Equal weights and no ramp: SWRR is plain rotation in id order, so it runs as a cursor (O(1) per
 *   pick instead of O(n); measured 117 k → several M picks/s at 1,000 upstreams). The rotation and the
 *   SWRR scores are separate states: while a slow start ramps, picks use SWRR, then return to the
 *   cursor where it stopped.
 */
import type { Balancer, BalancerOptions, PickCandidate, PickContext, PickResult, UpstreamSnapshot } from './balancer.js';
import type { UpstreamId } from '../model/index.js';
import { SlowStart, validateCandidates, validateOptions } from './candidates.js';

export class RoundRobinBalancer implements Balancer {
  readonly name = 'round-robin' as const;
  private readonly cands: readonly PickCandidate[];
  private readonly current: Float64Array;
  private readonly slowStart: SlowStart;
  private readonly equalWeights: boolean;
  private cursor = 0;

  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}) {
    validateOptions(opts);
    this.cands = validateCandidates(snapshot);
    this.current = new Float64Array(this.cands.length);
    this.slowStart = new SlowStart(this.cands, opts);
    this.equalWeights = this.cands.every((c) => c.weight === this.cands[0]!.weight);
  }

  pick(ctx: PickContext): UpstreamId | undefined {
    return this.pickDetailed(ctx).id;
  }

  pickDetailed(ctx: PickContext): PickResult {
    const cands = this.cands;
    const cur = this.current;
    const exclude = ctx.exclude !== undefined && ctx.exclude.size > 0 ? ctx.exclude : undefined;
    const ramping = this.slowStart.isRamping(ctx.nowMs);
    if (this.equalWeights && !ramping) return this.rotate(exclude);
    let total = 0;
    let best = -1;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i]!;
      if (exclude?.has(c.id)) continue;
      const w = ramping ? this.slowStart.weight(c, ctx.nowMs) : c.weight;
      cur[i]! += w;
      total += w;
      if (best < 0 || cur[i]! > cur[best]!) best = i;
    }
    if (best < 0) return { id: undefined };
    cur[best]! -= total;
    return { id: cands[best]!.id };
  }

  /** Next non-excluded candidate from the cursor; the cursor moves past the one picked. */
  private rotate(exclude: ReadonlySet<UpstreamId> | undefined): PickResult {
    const n = this.cands.length;
    for (let step = 0; step < n; step++) {
      const i = (this.cursor + step) % n;
      const id = this.cands[i]!.id;
      if (exclude?.has(id)) continue;
      this.cursor = (i + 1) % n;
      return { id };
    }
    return { id: undefined };
  }
}

export function createRoundRobinBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): RoundRobinBalancer {
  return new RoundRobinBalancer(snapshot, opts);
}
