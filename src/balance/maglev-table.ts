/**
 * The two parts of a Maglev lookup table (maglev.ts has the algorithm and its sources): each upstream's
 * permutation of the M slots, and the fill that walks them.
 *
 * Why they are apart: a permutation depends on the upstream's id and M only, so the update after one
 * upstream joins, leaves or changes weight takes every other upstream's from the table it replaces.
 * The fill cannot be reused the same way: it is one sequential greedy process in which each turn takes
 * the first slot still free along that upstream's permutation, so which slots are free at any turn
 * depends on every turn before it, and the turn order itself (rounds paced by weight ÷ max weight, ids
 * in order) changes from round 1 on when one upstream does. A change therefore reaches slots anywhere in
 * the table through chains of displaced turns. Finding them without a run of the fill would need its
 * whole history kept with each table (which turn probed which slot: 0.44–0.77 M probes for 65,537
 * slots, megabytes per table) to save the ~3 ms a fill costs; so, to keep the table identical to a
 * full build (every peer must build the same one), the fill runs whole.
 *
 * Invariant: fillTable's result is a pure function of (ids, weights, M): reused permutations are equal
 * to freshly hashed ones, so an update and a full build give the same table.
 */
import type { UpstreamId } from '../model/index.js';
import { compareIds } from './candidates.js';
import { hash64Into } from './hash.js';

const TWO32 = 4294967296;

/**
 * Where each upstream (in id order) starts in the table and how far it steps (§3.4): offset = h0 mod M,
 * skip = h1 mod (M − 1) + 1, h0 / h1 = XXH64 of the id with seeds 0 / 1. In shared memory, so they go to
 * and from a builder thread with the table (balance/table-build.ts) without a copy.
 */
export interface MaglevPermutations {
  readonly size: number;
  readonly ids: readonly UpstreamId[];
  readonly offset: Int32Array;
  readonly skip: Int32Array;
}

/** (hi × 2^32 + lo) mod m for m ≤ MAX_MAGLEV_TABLE_SIZE (2^26), exact in doubles. */
export function mod64(hi: number, lo: number, m: number): number {
  return ((hi % m) * (TWO32 % m) + (lo % m)) % m;
}

function sharedI32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}

/**
 * The permutations of `ids` (sorted by compareIds) in a table of `m` slots; those of ids that
 * `previous` has for the same m are copied from it (a merge of the two sorted id lists), the rest hashed.
 */
export function permutationsOf(ids: readonly UpstreamId[], m: number, previous?: MaglevPermutations): MaglevPermutations {
  const n = ids.length;
  const offset = sharedI32(n);
  const skip = sharedI32(n);
  const prev = previous !== undefined && previous.size === m ? previous : undefined;
  const h = new Uint32Array(2);
  let p = 0;
  for (let u = 0; u < n; u++) {
    const id = ids[u]!;
    if (prev !== undefined) {
      while (p < prev.ids.length && compareIds(prev.ids[p]!, id) < 0) p++;
      if (p < prev.ids.length && prev.ids[p] === id) {
        offset[u] = prev.offset[p]!;
        skip[u] = prev.skip[p]!;
        continue;
      }
    }
    hash64Into(id, h, 0);
    offset[u] = mod64(h[0]!, h[1]!, m);
    hash64Into(id, h, 1);
    skip[u] = mod64(h[0]!, h[1]!, m - 1) + 1;
  }
  return { size: m, ids, offset, skip };
}

/**
 * The lookup table (owner index per slot) by Envoy's weighted population (maglev_lb.cc): in round t
 * upstream u takes its next free preferred slot only if t × w(u) ≥ (its slots so far) × max w, upstreams
 * taking turns in id order. Integer arithmetic on an Int32Array view (one compare-and-subtract instead
 * of a floating-point modulo per probe: c + skip < 2M); the table is returned as a Uint32Array of the
 * same shared memory.
 */
export function fillTable(perms: MaglevPermutations, weights: Float64Array, maxWeight: number): Uint32Array {
  const m = perms.size;
  const n = perms.ids.length;
  const buffer = new SharedArrayBuffer(m * 4);
  const out = new Int32Array(buffer).fill(-1);
  const next = Int32Array.from(perms.offset); // where each permutation goes on
  const skip = perms.skip;
  const taken = new Float64Array(n); // Envoy's target_weight_: picks so far × max weight
  let filled = 0;
  for (let round = 1; filled < m; round++) {
    for (let u = 0; u < n && filled < m; u++) {
      if (round * weights[u]! < taken[u]!) continue;
      taken[u]! += maxWeight;
      const s = skip[u]!;
      let c = next[u]!;
      while (out[c] !== -1) {
        c += s;
        if (c >= m) c -= m;
      }
      out[c] = u;
      c += s;
      next[u] = c >= m ? c - m : c;
      filled++;
    }
  }
  return new Uint32Array(buffer);
}
