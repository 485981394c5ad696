/**
 * Peak-EWMA latency (Finagle / Linkerd `PeakEwma`), the latency signal least-request can use. The
 * proxy owns the per-upstream state and calls `updatePeakEwma` on every response; the balancer only
 * reads `UpstreamLoad.latencyEwmaMs`.
 *
 * - Peak-sensitive: a sample above the current value replaces it at once; below it, the value decays
 *   towards the sample with time constant `decayMs` (w = e^(−elapsed/decay)), so one slow response
 *   repels traffic immediately and recovery is gradual.
 * - Reads decay too: the proxy's `load(id).latencyEwmaMs` must be `peakEwmaAt(state, now)`, which decays
 *   the estimate towards 0 with the same time constant while no response arrives (tower's PeakEwma
 *   `decay`, which linkerd2-proxy uses). Without it an upstream that was slow once gets no traffic, so
 *   no new samples, and stays starved after it recovers.
 * - Failures must not look fast (linkerd2-proxy#4537, #4561: fast 503s attracted traffic to a broken
 *   endpoint). The proxy feeds a failure (connect error, reset, timeout, 5xx) as a sample of
 *   max(observed latency, FAILURE_PENALTY_MS), like Linkerd's load biaser penalty, so a failing
 *   upstream's score rises instead of falling.
 *
 * Pure: time comes in as arguments.
 */

/** Linkerd DEFAULT_EWMA decay: 10 s (linkerd2-proxy outbound/src/http/logical/profile.rs). */
export const DEFAULT_PEAK_EWMA_DECAY_MS = 10_000;
/** Latency assumed before anything is measured: Linkerd's default_rtt, 30 ms (same source). */
export const DEFAULT_RTT_MS = 30;
/** Sample recorded for a failed request: Linkerd's load-biaser penalty, 5 s (load-balancing reference). */
export const FAILURE_PENALTY_MS = 5_000;

export interface PeakEwmaState {
  /** Current estimate in ms (0 = nothing measured yet). */
  readonly ewmaMs: number;
  /** When it was last updated, on the caller's clock. */
  readonly atMs: number;
}

/** Next state after a response that took `sampleMs` (for a failure: max(latency, FAILURE_PENALTY_MS)). */
export function updatePeakEwma(prev: PeakEwmaState | undefined, sampleMs: number, nowMs: number, decayMs: number = DEFAULT_PEAK_EWMA_DECAY_MS): PeakEwmaState {
  if (prev === undefined || prev.ewmaMs === 0 || sampleMs > prev.ewmaMs) return { ewmaMs: sampleMs, atMs: nowMs };
  const elapsed = Math.max(0, nowMs - prev.atMs);
  const w = Math.exp(-elapsed / decayMs);
  return { ewmaMs: prev.ewmaMs * w + sampleMs * (1 - w), atMs: nowMs };
  // (Decay towards the sample, as Finagle/tower do on update; peakEwmaAt decays towards 0 on read.)
}

/** The estimate to show the balancer at `nowMs`: decayed towards 0 since the last update. */
export function peakEwmaAt(state: PeakEwmaState | undefined, nowMs: number, decayMs: number = DEFAULT_PEAK_EWMA_DECAY_MS): number {
  if (state === undefined) return 0;
  const elapsed = Math.max(0, nowMs - state.atMs);
  return state.ewmaMs * Math.exp(-elapsed / decayMs);
}

/** The sample to record for a failed request that took `latencyMs`. */
export function failureSampleMs(latencyMs: number): number {
  return Math.max(latencyMs, FAILURE_PENALTY_MS);
}
