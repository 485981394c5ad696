// h2load (Debian package nghttp2-client) as the HTTP/2 load generator of the TLS bench, and as its
// HTTP/1.1-over-TLS twin (`--h1`), so both protocols are measured by one client. Latency percentiles
// come from its per-request log (`--log-file`: start µs, status, duration µs per request).
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, LoadResult } from './types.js';

export function haveH2load(): boolean {
  try {
    execFileSync('h2load', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * One run: `clients` connections × `streams` concurrent streams each, `seconds` long after `warmupSec`.
 * `h1`: HTTP/1.1 over TLS instead of h2. `cpu`: pin h2load to that core.
 */
export async function runH2load(ctx: BenchContext, o: { url: string; clients: number; streams: number; seconds: number; warmupSec: number; h1?: boolean; cpu?: number }): Promise<LoadResult> {
  const log = join(ctx.tmpDir, `h2load-${process.hrtime.bigint()}.log`);
  const argv = ['h2load', '-t1', `-c${o.clients}`, `-m${o.streams}`, `-D${o.seconds}`, ...(o.warmupSec > 0 ? [`--warm-up-time=${o.warmupSec}`] : []), '--log-file', log, ...(o.h1 ? ['--h1'] : []), o.url];
  const cmd = o.cpu === undefined ? argv : ['taskset', '-c', String(o.cpu), ...argv];
  const out = await new Promise<string>((resolve, reject) => {
    execFile(cmd[0]!, cmd.slice(1), { timeout: (o.seconds + o.warmupSec + 30) * 1000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout)));
  });
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const ok2xx = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0);
  const bytes = Number(/traffic: [\d.]+\w* \((\d+)\) total/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(rps) || !req) throw new Error(`h2load output not understood:\n${out.slice(0, 800)}`);
  const durations = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split('\t')[2]) / 1000).sort((a, b) => a - b);
  rmSync(log, { force: true });
  const done = Number(req[3]);
  const failed = Number(req[5]) + Number(req[6]) + Number(req[7]);
  return {
    rps,
    requests: done,
    totalRequests: Number(req[1]),
    p50Ms: percentile(durations, 0.5),
    p90Ms: percentile(durations, 0.9),
    p99Ms: percentile(durations, 0.99),
    maxMs: durations[durations.length - 1] ?? 0,
    meanMs: durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : 0,
    errors: failed,
    non2xx: Math.max(0, done - ok2xx - failed),
    bytesPerSec: bytes / o.seconds,
    errorSamples: failed ? [`${failed} failed/errored/timed out`] : [],
  };
}
