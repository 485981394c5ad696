/**
 * The lookup walk shared by the two hash balancers: from the key's home slot, walk the ring (or the
 * Maglev table) onward to the first upstream that is neither excluded nor at its load bound.
 *
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
 * Bounded Loads", SODA 2018 / arXiv:1608.01350, §2): with balance factor c ≥ 1, an upstream may take
 * the request being placed only while its load stays ≤ ceil(c × m) where m is the mean load counting
 * that request, m = (total + 1) / n. With weights we split the same budget by weight, as HAProxy does
 * (`chash_server_is_eligible`: slots split by weight): capacity(u) = ceil(c × (total + 1) × w(u) / W);
 * with equal weights this is exactly the paper's bound.
 *
 * Invariants:
 * - Σ capacity ≥ c × (total + 1) > total = Σ load, so some upstream is always under its bound: with
 *   no exclusions the walk always ends at one, and no upstream's load exceeds its capacity after the
 *   placement (the property test checks this under adversarial key skew).
 * - A key whose home is under its bound stays home (affinity); overflow only moves onward, in the
 *   same order on every peer, so peers with similar loads send a hot key's overflow to the same place.
 * - With exclusions only (or no load view) the walk still yields the next distinct upstream onward,
 *   which is where the key goes if its home leaves the ring (retries land where a removal would).
 * - If every non-excluded upstream is at its bound (possible only when exclusions hide capacity), the
 *   first eligible one onward is returned: a request is never refused for load alone.
 */
import type { PickContext, PickResult } from './balancer.js';

/** Capacity of one upstream under bounded loads: ceil(c × (total + 1) × w / W). */
export function boundedLoadCapacity(factor: number, totalInFlight: number, weight: number, totalWeight: number): number {
  return Math.ceil((factor * (totalInFlight + 1) * weight) / totalWeight);
}

export class SlotWalker {
  /** Visit marks per upstream index; `stamp` changes per walk so the array is never cleared. */
  private readonly marks: Uint32Array;
  private stamp = 0;

  constructor(
    private readonly ids: readonly string[],
    private readonly weights: Float64Array,
    private readonly totalWeight: number,
    /** Bounded-load factor c, or undefined when unbounded. */
    private readonly factor: number | undefined,
  ) {
    this.marks = new Uint32Array(ids.length);
  }

  /** Walk `slots` (upstream indices) from `start`. `fallback` is passed through to the result. */
  walk(slots: ArrayLike<number>, start: number, ctx: PickContext, fallback: boolean): PickResult {
    const ids = this.ids;
    const exclude = ctx.exclude;
    const hasExclude = exclude !== undefined && exclude.size > 0;
    const load = this.factor !== undefined ? ctx.load : undefined;
    if (load === undefined && !hasExclude) return { id: ids[slots[start]!], fallback };

    let total = 0;
    if (load !== undefined) {
      if (ctx.totalInFlight !== undefined) total = ctx.totalInFlight;
      else for (const id of ids) total += load(id)?.inFlight ?? 0;
    }
    if (++this.stamp === 0xffffffff) {
      this.marks.fill(0);
      this.stamp = 1;
    }
    const stamp = this.stamp;
    const n = ids.length;
    const len = slots.length;
    let firstEligible = -1;
    for (let step = 0, i = start, seen = 0; step < len && seen < n; step++) {
      const o = slots[i]!;
      i = i + 1 === len ? 0 : i + 1;
      if (this.marks[o] === stamp) continue;
      this.marks[o] = stamp;
      seen++;
      const id = ids[o]!;
      if (hasExclude && exclude.has(id)) continue;
      if (firstEligible < 0) firstEligible = o;
      if (load === undefined) return { id, fallback };
      const inFlight = load(id)?.inFlight ?? 0;
      if (inFlight < boundedLoadCapacity(this.factor!, total, this.weights[o]!, this.totalWeight)) {
        return o === firstEligible ? { id, fallback } : { id, fallback, overflowed: true };
      }
    }
    return { id: firstEligible < 0 ? undefined : ids[firstEligible], fallback };
  }
}
