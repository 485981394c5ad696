/**
 * Weighted sampling over a candidate list: prefix sums and a binary search (O(log n) per draw), used
 * by `random`, by least-request's two choices (the second drawn without the first: samplePrefixExcept)
 * and by the hash balancers' no-key fallback.
 *
 * Invariant: an index with weight 0 is never returned (an excluded candidate gets weight 0), and a
 * draw from a table whose total is 0 returns -1.
 */

/** Inclusive prefix sums of `weights`. */
export function prefixSums(weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]!;
    out[i] = acc;
  }
  return out;
}

/** Index i with prefix[i-1] ≤ u × total < prefix[i], for u in [0, 1); -1 when the total is 0. */
export function samplePrefix(prefix: Float64Array, u: number): number {
  const n = prefix.length;
  if (n === 0) return -1;
  const total = prefix[n - 1]!;
  if (!(total > 0)) return -1;
  let lo = firstAbove(prefix, u * total);
  // Guard float edge cases (u × total rounding up to total, zero-weight tail): step back to a
  // slot that really has weight.
  while (lo > 0 && prefix[lo]! === prefix[lo - 1]!) lo--;
  if (lo === 0 && prefix[0]! === 0) return -1;
  return lo;
}

/** A draw in proportion to weight among indices other than `a`; -1 when no other has weight. */
export function samplePrefixExcept(prefix: Float64Array, a: number, u: number): number {
  const n = prefix.length;
  const total = prefix[n - 1]!;
  const start = a === 0 ? 0 : prefix[a - 1]!;
  const wa = prefix[a]! - start;
  const rest = total - wa;
  if (!(rest > 0)) return -1;
  // Draw over the total without `a`'s span, then skip that span.
  let target = u * rest;
  if (target >= start) target += wa;
  const lo = firstAbove(prefix, target);
  // Float edges: never return `a` or a zero-weight slot; step to the nearest other weighted slot.
  const weightOf = (i: number): number => prefix[i]! - (i === 0 ? 0 : prefix[i - 1]!);
  if (lo !== a && weightOf(lo) > 0) return lo;
  for (let i = lo - 1; i >= 0; i--) if (i !== a && weightOf(i) > 0) return i;
  for (let i = lo + 1; i < n; i++) if (i !== a && weightOf(i) > 0) return i;
  return -1;
}

/** The first index whose prefix sum exceeds `target` (the last index when none does). */
function firstAbove(prefix: Float64Array, target: number): number {
  let lo = 0;
  let hi = prefix.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (prefix[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
