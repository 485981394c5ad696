// Latency histogram for the load generator: log-linear buckets in the manner of HdrHistogram
// (Gil Tene), fixed memory whatever the request count, recording in O(1) on the hot path.
// Invariant: a recorded value v (integer microseconds, clamped to [0, 2^31)) is reported back by
// `percentile` with relative error below 1 / SUB_BUCKETS (< 0.8 %), exact below SUB_BUCKETS µs.

/** 2^7 linear sub-buckets per power of two: < 0.8 % relative error, 3,200 counters in all. */
const SUB_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Values are µs in a 31-bit integer (≈ 35 min); 25 doublings above the linear range cover that. */
const BUCKET_COUNT = SUB_BUCKETS + (31 - SUB_BITS) * SUB_BUCKETS;
const MAX_VALUE = 2 ** 31 - 1;

export class Histogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private sum = 0;
  private maxSeen = 0;

  /** Records one value in microseconds. */
  record(us: number): void {
    const v = Math.min(MAX_VALUE, Math.max(0, Math.round(us)));
    this.counts[indexOf(v)]! += 1;
    this.total += 1;
    this.sum += v;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.total;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  get max(): number {
    return this.maxSeen;
  }

  /** Value (µs) at percentile p in [0, 100]: the bucket that holds the ceil(p% · n)-th value. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(valueOf(i), this.maxSeen);
    }
    return this.maxSeen;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.maxSeen = 0;
  }
}

/** Bucket index: linear below SUB_BUCKETS; above, the top SUB_BITS+1 bits of v pick the bucket. */
function indexOf(v: number): number {
  if (v < SUB_BUCKETS) return v;
  const bitLength = 32 - Math.clz32(v);
  const shift = bitLength - SUB_BITS - 1; // v >> shift lies in [SUB_BUCKETS, 2·SUB_BUCKETS)
  return SUB_BUCKETS + shift * SUB_BUCKETS + ((v >>> shift) - SUB_BUCKETS);
}

/** Midpoint of bucket i (exact in the linear range). */
function valueOf(i: number): number {
  if (i < SUB_BUCKETS) return i;
  const shift = Math.floor((i - SUB_BUCKETS) / SUB_BUCKETS);
  const top = ((i - SUB_BUCKETS) % SUB_BUCKETS) + SUB_BUCKETS;
  const low = top << shift;
  return low + ((1 << shift) - 1) / 2;
}
