/**
 * Live per-upstream state owned by the data path: in-flight count, peak-EWMA latency, counters and
 * a small latency reservoir for the dashboard's p50/p99. Kept across reloads for an unchanged
 * (service, id, url), so a reload loses no stats and no in-flight accounting.
 *
 * Implements the balancer's read-only UpstreamLoad view.
 */
import type { Pool } from 'undici';
import type { UpstreamLoad } from '../balance/balancer.js';
import { failureSampleMs, peakEwmaAt, updatePeakEwma, type PeakEwmaState } from '../balance/index.js';
import type { UpstreamSpec } from '../model/index.js';
import type { UpstreamSeries } from '../observability/metrics.js';

/** 512 recent samples: enough for a stable p99 on the dashboard, 4 KiB per upstream. */
const RESERVOIR = 512;

export class UpstreamRuntime implements UpstreamLoad {
  inFlight = 0;
  private ewma: PeakEwmaState | undefined;
  requests = 0;
  failures = 0;
  /** When this upstream last became pickable (slow start); undefined at peer start. */
  eligibleSinceMs: number | undefined;
  private readonly samples = new Float64Array(RESERVOIR);
  private sampleCount = 0;

  constructor(
    public spec: UpstreamSpec,
    public pool: Pool,
    public poolKey: string,
    readonly series: UpstreamSeries,
    /** For an https upstream, the servername every dispatch names: one value per pool, so undici never
     *  closes a connection over a request's Host header (the pool's connector sets the real SNI). */
    readonly dispatchServername: string | undefined = undefined,
  ) {}

  /** Peak-EWMA as the balancer reads it: decayed to now, so a once-slow upstream is tried again. */
  get latencyEwmaMs(): number {
    return peakEwmaAt(this.ewma, performance.now());
  }

  /**
   * Records a response time. A failure (5xx, reset, timeout) is recorded as at least the failure
   * penalty, so a fast-failing upstream never looks fast to a latency-aware balancer. `nowMs`: the
   * caller's performance.now(), when it has one.
   */
  recordLatency(ms: number, failed = false, nowMs = performance.now()): void {
    this.ewma = updatePeakEwma(this.ewma, failed ? failureSampleMs(ms) : ms, nowMs);
    if (!failed) this.samples[this.sampleCount++ % RESERVOIR] = ms;
  }

  /** p50 and p99 of the recent samples (ms), computed on demand (status/dashboard), never per request. */
  latencyPercentiles(): { p50: number; p99: number } | undefined {
    const n = Math.min(this.sampleCount, RESERVOIR);
    if (n === 0) return undefined;
    const sorted = Array.from(this.samples.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p99: at(0.99) };
  }
}
