/**
 * Passive health outcomes of one worker between two flushes, run-length coded: equal results in a
 * row for the same upstream are one run, so a burst of successes is one entry, and the primary's
 * outlier detector still sees every outcome in the order this worker saw them. Pure (no timers).
 */
import type { ResultRun } from './protocol.js';

type Result = ResultRun['result'];

export class ResultRuns {
  private runs: Array<{ service: string; upstream: string; result: Result; n: number }> = [];

  /** Adds one outcome; true when it started a new run. */
  record(service: string, upstream: string, result: Result): boolean {
    const last = this.runs[this.runs.length - 1];
    if (last !== undefined && last.service === service && last.upstream === upstream && sameResult(last.result, result)) {
      last.n++;
      return false;
    }
    this.runs.push({ service, upstream, result, n: 1 });
    return true;
  }

  get size(): number {
    return this.runs.length;
  }

  /** The runs so far, in order; empties the batch. */
  drain(): ResultRun[] {
    const out = this.runs;
    this.runs = [];
    return out;
  }
}

/** Results are small plain objects ({ kind, status? , cause? }): equal when every field is. */
export function sameResult(a: Result, b: Result): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
