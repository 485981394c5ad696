/**
 * `random`: weighted random choice (Envoy RANDOM, Caddy's default `random`, HAProxy `random(1)`):
 * P(u) = w(u) / Σ w over the non-excluded candidates. Stateless apart from the fallback random source.
 *
 * Invariants: the prefix table is built once; a pick is one draw and one binary search, except on
 * retries with exclusions or while some candidate ramps up (slow start), which rebuild weights for that
 * pick (O(n)). Randomness comes from ctx.random; without it, from a fixed-seed generator owned by the
 * balancer, so a fresh balancer fed the same contexts gives the same answers.
 */
import type { Balancer, BalancerOptions, PickCandidate, PickContext, PickResult, UpstreamSnapshot } from './balancer.js';
import type { UpstreamId } from '../model/index.js';
import { createSeededRandom, type Random } from '../lib/rng.js';
import { SlowStart, validateCandidates, validateOptions } from './candidates.js';
import { prefixSums, samplePrefix } from './weighted.js';

const FALLBACK_SEED = 0x72616e64; // "rand"

export class RandomBalancer implements Balancer {
  readonly name = 'random' as const;
  private readonly cands: readonly PickCandidate[];
  private readonly prefix: Float64Array;
  private readonly slowStart: SlowStart;
  private readonly scratch: Float64Array;
  private readonly ownRandom: Random = createSeededRandom(FALLBACK_SEED);

  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}) {
    validateOptions(opts);
    this.cands = validateCandidates(snapshot);
    this.prefix = prefixSums(this.cands.map((c) => c.weight));
    this.slowStart = new SlowStart(this.cands, opts);
    this.scratch = new Float64Array(this.cands.length);
  }

  pick(ctx: PickContext): UpstreamId | undefined {
    return this.pickDetailed(ctx).id;
  }

  pickDetailed(ctx: PickContext): PickResult {
    const u = (ctx.random ?? this.ownRandom)();
    const exclude = ctx.exclude !== undefined && ctx.exclude.size > 0 ? ctx.exclude : undefined;
    let prefix = this.prefix;
    if (exclude !== undefined || this.slowStart.isRamping(ctx.nowMs)) {
      const w = this.scratch;
      let acc = 0;
      this.cands.forEach((c, i) => {
        acc += exclude?.has(c.id) ? 0 : this.slowStart.weight(c, ctx.nowMs);
        w[i] = acc;
      });
      prefix = w;
    }
    const i = samplePrefix(prefix, u);
    return { id: i < 0 ? undefined : this.cands[i]!.id };
  }
}

export function createRandomBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): RandomBalancer {
  return new RandomBalancer(snapshot, opts);
}
