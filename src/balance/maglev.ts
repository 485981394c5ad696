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
 * - An update (one upstream joins, leaves or changes weight) takes the other upstreams' permutations
 *   from the balancer it replaces and runs the fill whole: the fill cannot be patched and still give
 *   the table a full build gives (maglev-table.ts says why).
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
import { fillTable, mod64, permutationsOf, type MaglevPermutations } from './maglev-table.js';

/** Envoy's default `table_size`, prime (Maglev §3.4 uses 65537 in its evaluation, §5.3). */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/**
 * Largest table accepted: 2^26 keeps (x mod M) × (2^32 mod M) below 2^53 in the 64-bit modulo below;
 * Istio caps at 5,000,011 (istio/api#3175), well inside.
 */
export const MAX_MAGLEV_TABLE_SIZE = 67_108_864;
const FALLBACK_SEED = 0x6d61676c; // "magl"

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** A finished table and the permutations it was filled from (what a builder thread posts back). */
export interface MaglevParts {
  readonly table: Uint32Array;
  readonly permutations: MaglevPermutations;
}

export class MaglevBalancer implements Balancer {
  readonly name = 'maglev' as const;
  private readonly ids: readonly UpstreamId[];
  private readonly table: Uint32Array;
  private readonly perms: MaglevPermutations;
  private readonly walker: SlotWalker;
  private readonly ownRandom: Random = createSeededRandom(FALLBACK_SEED);
  private readonly h = new Uint32Array(2);
  private shareCache: ReadonlyMap<UpstreamId, number> | undefined;

  /**
   * `previous`: the balancer (or its permutations) this one replaces: the permutations of upstreams
   * both have are taken from it, only the fill runs (maglev-table.ts says why the fill cannot be
   * reused). `parts`: the table and permutations a build of the same (snapshot, opts) made elsewhere
   * (a builder thread, balance/table-build.ts): taken as they are after a size check, so only the
   * O(upstreams) part runs here.
   */
  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}, previous?: MaglevBalancer | MaglevPermutations, parts?: MaglevParts) {
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
      this.perms = permutationsOf(this.ids, m);
      return;
    }
    if (parts !== undefined) {
      if (parts.table.length !== m || parts.permutations.ids.length !== n) {
        throw new BalanceInvalidError(`maglev: prebuilt parts of ${parts.table.length} slots and ${parts.permutations.ids.length} upstreams for tableSize ${m} and ${n} upstreams`);
      }
      this.table = parts.table;
      this.perms = parts.permutations;
      return;
    }
    const before = previous instanceof MaglevBalancer ? previous.perms : previous;
    this.perms = permutationsOf(this.ids, m, before);
    this.table = fillTable(this.perms, weights, maxWeight);
  }

  /** The table and permutations (a builder thread posts them back; see `parts` in the constructor). */
  get parts(): MaglevParts {
    return { table: this.table, permutations: this.perms };
  }

  /** What a balancer replacing this one takes from it (sent to a builder thread; shared memory). */
  get permutations(): MaglevPermutations {
    return this.perms;
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

export function createMaglevBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}, previous?: MaglevBalancer | MaglevPermutations): MaglevBalancer {
  return new MaglevBalancer(snapshot, opts, previous);
}
