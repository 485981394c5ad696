/**
 * Weighted sampling over a candidate list: prefix sums and a binary search (O(log n) per draw), used
 * by `random`, by least-request's two choices and by the hash balancers' no-key fallback.
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
  const target = u * total;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (prefix[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  // Guard float edge cases (u × total rounding up to total, zero-weight tail): step back to a
  // slot that really has weight.
  while (lo > 0 && prefix[lo]! === prefix[lo - 1]!) lo--;
  if (lo === 0 && prefix[0]! === 0) return -1;
  return lo;
}
