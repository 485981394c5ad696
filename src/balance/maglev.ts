/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
 * NSDI 2016, §3.4; Envoy MAGLEV): a lookup table of prime size M where each upstream fills slots in
 * the order of its own permutation; a key goes to table[hash(key) mod M].
 *
 * - Permutation of upstream u (§3.4, Pseudocode 1): offset = h0(u) mod M, skip = h1(u) mod (M − 1) + 1,
 *   slot(j) = (offset + j × skip) mod M, with h0 / h1 = XXH64 of the stable id with seeds 0 / 1. As
 *   M is prime, every skip generates a full permutation.
 * - Weights: Envoy's weighted population (maglev_lb.cc): in round t an upstream takes its next
 *   preferred free slot only if t × w ≥ (slots taken so far) × max w, so slot counts follow weights.
 *   Upstreams take turns in id order, which with the id-derived permutations makes the table a pure
 *   function of the membership set: every peer builds the same table.
 * - M defaults to 65537, Envoy's default `table_size` and the paper's evaluation size; §3.4 asks for
 *   M ≫ n (M > 100 × n keeps the imbalance ≤ 1 %). §5.3 reports the trade-off measured here too:
 *   near-perfect balance, and disruption slightly above the minimal 1/n on a membership change
 *   ("Maglev hashing ... gives up minimal disruption for balance").
 * - Exclusions and bounded loads (bounded-load.ts) walk the table onward from the key's slot; table
 *   order is pseudo-random, so overflow spreads instead of piling on one neighbour.
 *
 * Invariant: the table is immutable after construction.
 */
import type { Balancer, BalancerOptions, PickContext, PickResult, UpstreamSnapshot } from './balancer.js';
import type { UpstreamId } from '../model/index.js';
import { createSeededRandom, type Random } from '../lib/rng.js';
import { SlotWalker } from './bounded-load.js';
import { validateCandidates, validateOptions } from './candidates.js';
import { BalanceInvalidError } from './errors.js';
import { hash64Into } from './hash.js';

/** Envoy's default `table_size`, prime (Maglev §3.4 uses 65537 in its evaluation, §5.3). */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/**
 * Largest table accepted: 2^26 keeps (x mod M) × (2^32 mod M) below 2^53 in the 64-bit modulo below;
 * Istio caps at 5,000,011 (istio/api#3175), well inside.
 */
export const MAX_MAGLEV_TABLE_SIZE = 67_108_864;
const TWO32 = 4294967296;
const EMPTY = 0xffffffff;
const FALLBACK_SEED = 0x6d61676c; // "magl"

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** (hi × 2^32 + lo) mod m for m ≤ MAX_MAGLEV_TABLE_SIZE, exact in doubles. */
function mod64(hi: number, lo: number, m: number): number {
  return ((hi % m) * (TWO32 % m) + (lo % m)) % m;
}

export class MaglevBalancer implements Balancer {
  readonly name = 'maglev' as const;
  private readonly ids: readonly UpstreamId[];
  private readonly table: Uint32Array;
  private readonly walker: SlotWalker;
  private readonly ownRandom: Random = createSeededRandom(FALLBACK_SEED);
  private readonly h = new Uint32Array(2);
  private shareCache: ReadonlyMap<UpstreamId, number> | undefined;

  /**
   * `table`: the lookup table a build of the same (snapshot, opts) made elsewhere (a builder thread,
   * balance/parts.ts): taken as it is after a size check, so only the O(upstreams) part runs here.
   */
  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}, table?: Uint32Array) {
    validateOptions(opts);
    const m = opts.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
    if (!isPrime(m) || m > MAX_MAGLEV_TABLE_SIZE) {
      throw new BalanceInvalidError(`maglev tableSize must be a prime ≤ ${MAX_MAGLEV_TABLE_SIZE}, got ${String(m)}`);
    }
    const cands = validateCandidates(snapshot);
    if (cands.length > m) throw new BalanceInvalidError(`maglev tableSize ${m} is smaller than the ${cands.length} upstreams`);
    this.ids = cands.map((c) => c.id);
    const n = cands.length;
    const weights = Float64Array.from(cands, (c) => c.weight);
    let totalWeight = 0;
    let maxWeight = 0;
    for (const w of weights) {
      totalWeight += w;
      if (w > maxWeight) maxWeight = w;
    }
    this.walker = new SlotWalker(this.ids, weights, totalWeight, opts.boundedLoad);
    if (n === 0) {
      this.table = new Uint32Array(0);
      return;
    }
    if (table !== undefined) {
      if (table.length !== m) throw new BalanceInvalidError(`maglev: a prebuilt table of ${table.length} slots for tableSize ${m}`);
      this.table = table;
      return;
    }

    const next = new Float64Array(n); // current slot of each permutation
    const skip = new Float64Array(n);
    const taken = new Float64Array(n); // Envoy's target_weight_: picks so far × max weight
    const h = this.h;
    for (let u = 0; u < n; u++) {
      hash64Into(this.ids[u]!, h, 0);
      next[u] = mod64(h[0]!, h[1]!, m);
      hash64Into(this.ids[u]!, h, 1);
      skip[u] = mod64(h[0]!, h[1]!, m - 1) + 1;
    }
    // Shared memory: a builder thread hands the table back without a copy (balance/parts.ts).
    const out = new Uint32Array(new SharedArrayBuffer(m * 4)).fill(EMPTY);
    let filled = 0;
    for (let round = 1; filled < m; round++) {
      for (let u = 0; u < n && filled < m; u++) {
        if (round * weights[u]! < taken[u]!) continue;
        taken[u]! += maxWeight;
        let c = next[u]!;
        while (out[c] !== EMPTY) c = (c + skip[u]!) % m;
        out[c] = u;
        next[u] = (c + skip[u]!) % m;
        filled++;
      }
    }
    this.table = out;
  }

  /** The lookup table (a builder thread posts it back; see `table` in the constructor). */
  get tablePart(): Uint32Array {
    return this.table;
  }

  get tableSize(): number {
    return this.table.length;
  }

  pick(ctx: PickContext): UpstreamId | undefined {
    return this.pickDetailed(ctx).id;
  }

  pickDetailed(ctx: PickContext): PickResult {
    const m = this.table.length;
    if (m === 0) return { id: undefined };
    if (ctx.hashKey === undefined) {
      // No key: a random slot picks in proportion to weight; the walk still honours exclusions/bounds.
      return this.walker.walk(this.table, Math.floor((ctx.random ?? this.ownRandom)() * m), ctx, true);
    }
    hash64Into(ctx.hashKey, this.h);
    return this.walker.walk(this.table, mod64(this.h[0]!, this.h[1]!, m), ctx, false);
  }

  /** Share of table slots each upstream owns. */
  shares(): ReadonlyMap<UpstreamId, number> {
    if (this.shareCache) return this.shareCache;
    const counts = new Float64Array(this.ids.length);
    for (const o of this.table) counts[o]!++;
    const map = new Map<UpstreamId, number>();
    this.ids.forEach((id, i) => map.set(id, counts[i]! / this.table.length));
    this.shareCache = map;
    return map;
  }

  /** The table as upstream ids, slot by slot (golden tests). */
  tableForTest(): UpstreamId[] {
    return Array.from(this.table, (o) => this.ids[o]!);
  }
}

export function createMaglevBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): MaglevBalancer {
  return new MaglevBalancer(snapshot, opts);
}
