// Exact order statistics for small sample sets (tens to a few thousand timings: reloads, failovers,
// admin writes), where the load generator's log-linear Histogram would add bucket error for nothing.
// Invariant: percentiles use the nearest-rank method (the ceil(p% · n)-th smallest value), so every
// reported figure is a value that was actually measured; p99 of fewer than 100 samples is the max.

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank p50/p99, max and mean of `xs`; NaN everywhere for an empty set. */
export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
  return { n: s.length, p50: at(50), p99: at(99), max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** `--quick` on the command line or BENCH_QUICK=1: benches that take it run fewer, shorter cases. */
export function quickMode(): boolean {
  return process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
