/**
 * Ring hash (Karger et al. 1997; ketama; Envoy RING_HASH): each upstream owns virtual nodes on a
 * 2^32 ring, a key goes to the first virtual node at or after its hash, clockwise.
 *
 * Placement: with (hi, lo) = XXH64(UTF-8(u.id)) (src/balance/hash.ts), virtual node j of upstream u
 * sits at fmix32(hi ^ fmix32(lo + j × 0x9E3779B9 mod 2^32)), fmix32 being murmur3's finaliser (a
 * bijection with full avalanche). One 64-bit hash per upstream plus two cheap mixes per point, instead
 * of one XXH64 per point, made a 2 M-point rebuild ~8× faster. It depends on the stable upstream id only — not its address, not its place
 * in a list — so every peer that knows the same membership builds the same ring, and a ring survives
 * restarts and re-ordering (the problem HAProxy documents for `hash-key`, and gRPC A76 fixes with an
 * explicit endpoint hash key).
 *
 * Counts: round(vnodesPerWeight × weight) virtual nodes per upstream, a FIXED number per unit of
 * weight. Envoy instead scales counts from `minimum_ring_size` and the host count, so adding a host
 * shrinks every other host's count and moves keys between hosts that did not change (envoy#22558,
 * istio#41814). With fixed counts, adding an upstream only adds its own points: every moved key moves
 * to the newcomer; removing one moves only its keys. (Setting `minRingSize` or exceeding `maxRingSize`
 * brings Envoy's trade-off back; both are off/large by default.)
 *
 * Default of 1000 virtual nodes per unit weight: an upstream with k points has a share whose relative
 * standard deviation is ≈ 1/√k (a sum of k exponential arcs). Measured over 100 random sets of 10
 * equal upstreams, the largest structural share deviation (mean / worst / sets above 10 %): 160
 * points (ketama) 13.2 % / 26.1 % / 83; 320: 10.3 % / 17.4 % / 58; 500: 8.1 % / 14.1 % / 19; 1000:
 * 5.7 % / 10.9 % / 1. So 1000 is the smallest round figure that keeps 10 equal upstreams within ±10 %
 * of the mean for nearly every membership — not every: placement is random, and about 1 set in 100
 * lands just above. Cost: 8 bytes per point; 1,000 upstreams of weight 1–3 → 2 M points, 16 MB,
 * ≈ 200 ms CPU to rebuild (bench/micro/balance-pick.ts), off the hot path; lookup is one binary search.
 *
 * Invariants: immutable after construction except the walker's scratch marks and the fallback
 * random state; ties between equal positions are broken by id order, so the ring is a pure function
 * of the membership set.
 */
import type { Balancer, BalancerOptions, PickContext, PickResult, UpstreamSnapshot } from './balancer.js';
import type { UpstreamId } from '../model/index.js';
import { createSeededRandom, type Random } from '../lib/rng.js';
import { SlotWalker } from './bounded-load.js';
import { validateCandidates, validateOptions } from './candidates.js';
import { BalanceInvalidError } from './errors.js';
import { hash32High, hash64Into } from './hash.js';

/** Virtual nodes per unit of weight (see header: ≈3.2 % relative spread per upstream). */
export const DEFAULT_VNODES_PER_WEIGHT = 1000;
/** Envoy's maximum_ring_size (8,388,608 points = 64 MB here); above it counts are scaled down. */
export const DEFAULT_MAX_RING_SIZE = 8_388_608;
/** Upper bound on upstreams per ring (owners are stored in a Uint32Array; this just keeps rebuilds sane). */
export const MAX_RING_UPSTREAMS = 1 << 20;
const RING_SPACE = 4294967296;
/** Seed of the deterministic fallback random source, used when the context brings none. */
const FALLBACK_SEED = 0x72696e67; // "ring"

/** A ring as arrays: positions ascending, and the owner (index into the id order) of each. */
export interface RingParts {
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
}

/** What a ring is derived from: its upstreams (id order), their point counts, and its arrays. */
export interface RingSource extends RingParts {
  readonly ids: readonly UpstreamId[];
  readonly counts: Uint32Array;
}

/** Shared memory, so a ring crosses to and from a builder thread without a copy. */
function sharedU32(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(n * 4));
}

export class RingHashBalancer implements Balancer {
  readonly name = 'ring-hash' as const;
  private readonly ids: readonly UpstreamId[];
  /** Virtual nodes of each upstream (index into ids): with the id, all its points depend on. */
  private readonly counts: Uint32Array;
  /** Ring positions, ascending, and the owner (index into ids) of each. */
  private readonly points: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly walker: SlotWalker;
  private readonly ownRandom: Random = createSeededRandom(FALLBACK_SEED);
  private shareCache: ReadonlyMap<UpstreamId, number> | undefined;

  /**
   * `previous`: a ring this one replaces. The points of an upstream depend only on its id and its
   * count, so an upstream of `previous` with the same count keeps its points, and only the points of
   * upstreams that joined or changed weight are generated and sorted, then merged in: O(ring) with a
   * small sort instead of generating and sorting every point. The result is the same ring a full build
   * makes (same positions, same tie order).
   */
  constructor(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}, previous?: RingHashBalancer | RingSource, ring?: RingParts) {
    validateOptions(opts);
    const cands = validateCandidates(snapshot);
    if (cands.length > MAX_RING_UPSTREAMS) throw new BalanceInvalidError(`ring-hash supports at most ${MAX_RING_UPSTREAMS} upstreams`);
    this.ids = cands.map((c) => c.id);
    const weights = Float64Array.from(cands, (c) => c.weight);
    let totalWeight = 0;
    for (const w of weights) totalWeight += w;

    let perWeight = opts.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT;
    if (opts.minRingSize !== undefined && totalWeight > 0) perWeight = Math.max(perWeight, opts.minRingSize / totalWeight);
    const maxRing = opts.maxRingSize ?? DEFAULT_MAX_RING_SIZE;
    const counts = cands.map((c) => Math.max(1, Math.round(perWeight * c.weight)));
    let size = counts.reduce((a, b) => a + b, 0);
    if (size > maxRing) {
      const scale = maxRing / size;
      for (let i = 0; i < counts.length; i++) counts[i] = Math.max(1, Math.floor(counts[i]! * scale));
      size = counts.reduce((a, b) => a + b, 0);
    }

    this.counts = Uint32Array.from(counts);
    // Points are generated in owner order (= id order) and sorted by position with a stable radix
    // sort, so equal positions keep id order: the ring is a pure function of the membership set.
    if (ring !== undefined) {
      // Built elsewhere from the same (snapshot, opts) (a builder thread, balance/parts.ts): only sizes are checked.
      if (ring.points.length !== size || ring.owners.length !== size) throw new BalanceInvalidError(`ring-hash: a prebuilt ring of ${ring.points.length} points for ${size}`);
      [this.points, this.owners] = [ring.points, ring.owners];
    } else {
      const prev = previous instanceof RingHashBalancer ? previous.source : previous;
      [this.points, this.owners] = (prev && RingHashBalancer.derived(prev, this.ids, this.counts, size)) || sortedPoints(this.ids, this.counts, size, undefined);
    }
    this.walker = new SlotWalker(this.ids, weights, totalWeight, opts.boundedLoad);
  }

  /**
   * The ring of (ids, counts) from `prev`: its points of upstreams kept with the same count (owners
   * renumbered: both id lists are in id order, so the renumbering keeps tie order) merged with the sorted
   * points of the others. Undefined when most of the ring is new (a full build is as cheap).
   */
  private static derived(prev: RingSource, ids: readonly UpstreamId[], counts: Uint32Array, size: number): [Uint32Array, Uint32Array] | undefined {
    const p = prev;
    const index = new Map<UpstreamId, number>();
    ids.forEach((id, i) => index.set(id, i));
    const remap = new Int32Array(p.ids.length).fill(-1);
    const kept = new Uint8Array(ids.length);
    let keptPoints = 0;
    for (let o = 0; o < p.ids.length; o++) {
      const n = index.get(p.ids[o]!);
      if (n === undefined || p.counts[o] !== counts[n]) continue;
      remap[o] = n;
      kept[n] = 1;
      keptPoints += counts[n]!;
    }
    if (keptPoints * 2 < size) return undefined;
    const [fp, fo] = sortedPoints(ids, counts, size - keptPoints, kept);
    const pos = sharedU32(size);
    const own = sharedU32(size);
    const pp = p.points, po = p.owners, m = pp.length, f = fp.length;
    let i = 0, j = 0, k = 0;
    for (;;) {
      while (i < m && remap[po[i]!] === -1) i++;
      if (i >= m) break;
      const owner = remap[po[i]!]!;
      while (j < f && (fp[j]! < pp[i]! || (fp[j] === pp[i] && fo[j]! < owner))) {
        pos[k] = fp[j]!;
        own[k++] = fo[j++]!;
      }
      pos[k] = pp[i++]!;
      own[k++] = owner;
    }
    while (j < f) {
      pos[k] = fp[j]!;
      own[k++] = fo[j++]!;
    }
    return [pos, own];
  }

  /** The ring's arrays (a builder thread posts them back; see `ring` in the constructor). */
  get ringParts(): RingParts {
    return { points: this.points, owners: this.owners };
  }

  /** What a ring replacing this one derives from (sent to a builder thread; the arrays are shared memory). */
  get source(): RingSource {
    return { ids: this.ids, counts: this.counts, points: this.points, owners: this.owners };
  }

  /** Number of points on the ring. */
  get size(): number {
    return this.points.length;
  }

  pick(ctx: PickContext): UpstreamId | undefined {
    return this.pickDetailed(ctx).id;
  }

  pickDetailed(ctx: PickContext): PickResult {
    if (this.points.length === 0) return { id: undefined };
    let pos: number;
    let fallback = false;
    if (ctx.hashKey === undefined) {
      // No key: start from a random point, which picks in proportion to weight and still honours
      // exclusions and bounded loads through the same walk.
      fallback = true;
      pos = Math.floor((ctx.random ?? this.ownRandom)() * RING_SPACE);
    } else {
      pos = hash32High(ctx.hashKey);
    }
    return this.walker.walk(this.owners, this.lowerBound(pos), ctx, fallback);
  }

  /** Index of the first point ≥ pos, wrapping to 0 past the end. */
  private lowerBound(pos: number): number {
    const pts = this.points;
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]! < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo === pts.length ? 0 : lo;
  }

  /** Share of the ring each upstream owns (its arcs: a key in (previous point, p] goes to p's owner). */
  shares(): ReadonlyMap<UpstreamId, number> {
    if (this.shareCache) return this.shareCache;
    const acc = new Float64Array(this.ids.length);
    const pts = this.points;
    const n = pts.length;
    for (let i = 0; i < n; i++) {
      const prev = i === 0 ? pts[n - 1]! - RING_SPACE : pts[i - 1]!;
      acc[this.owners[i]!]! += (pts[i]! - prev) / RING_SPACE;
    }
    const m = new Map<UpstreamId, number>();
    this.ids.forEach((id, i) => m.set(id, acc[i]!));
    this.shareCache = m;
    return m;
  }

  /** Owner of the first point at or after `pos` (golden tests probe edges with this). */
  ownerAtForTest(pos: number): UpstreamId | undefined {
    return this.points.length === 0 ? undefined : this.ids[this.owners[this.lowerBound(pos)]!];
  }

  /** The ring as [position, owner] pairs (golden tests). */
  pointsForTest(): Array<[number, UpstreamId]> {
    return Array.from(this.points, (p, i) => [p, this.ids[this.owners[i]!]!] as [number, UpstreamId]);
  }
}

/** The points of the upstreams not `skip`ped, sorted by (position, owner). */
function sortedPoints(ids: readonly UpstreamId[], counts: Uint32Array, size: number, skip: Uint8Array | undefined): [Uint32Array, Uint32Array] {
  const pos = sharedU32(size);
  const own = sharedU32(size);
  const h = new Uint32Array(2);
  let k = 0;
  for (let u = 0; u < ids.length; u++) {
    if (skip !== undefined && skip[u] === 1) continue;
    hash64Into(ids[u]!, h);
    const hi = h[0]!, lo = h[1]!;
    for (let j = 0; j < counts[u]!; j++) {
      pos[k] = vnodePosition(hi, lo, j);
      own[k++] = u;
    }
  }
  return radixSortByPosition(pos, own);
}

/** murmur3 fmix32: a bijection on 32 bits with full avalanche (Appleby, MurmurHash3.cpp). */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Position of virtual node j of the upstream whose id hashes to (hi, lo); see the header. */
export function vnodePosition(hi: number, lo: number, j: number): number {
  return fmix32(hi ^ fmix32((lo + Math.imul(j, 0x9e3779b9)) | 0));
}

/** Stable LSD radix sort (two 16-bit passes) of positions, carrying owners along. */
function radixSortByPosition(pos: Uint32Array, own: Uint32Array): [Uint32Array, Uint32Array] {
  const n = pos.length;
  let srcP = pos, srcO = own;
  let dstP = sharedU32(n), dstO = sharedU32(n);
  const count = new Uint32Array(65537);
  for (let shift = 0; shift < 32; shift += 16) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[((srcP[i]! >>> shift) & 0xffff) + 1]!++;
    for (let b = 0; b < 65536; b++) count[b + 1]! += count[b]!;
    for (let i = 0; i < n; i++) {
      const d = count[(srcP[i]! >>> shift) & 0xffff]!++;
      dstP[d] = srcP[i]!;
      dstO[d] = srcO[i]!;
    }
    [srcP, dstP] = [dstP, srcP];
    [srcO, dstO] = [dstO, srcO];
  }
  return [srcP, srcO];
}

export function createRingHashBalancer(snapshot: UpstreamSnapshot, opts: BalancerOptions = {}, previous?: RingHashBalancer | RingSource, ring?: RingParts): RingHashBalancer {
  return new RingHashBalancer(snapshot, opts, previous, ring);
}
