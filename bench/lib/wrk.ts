// wrk (Debian package) as a load generator beside our own (load.ts), for cases our undici-based
// generator cannot model: `Connection: close`, a new TCP connection per request. wrk prints its
// summary through a Lua `done()` hook as one JSON line, so no text scraping.
// Model: closed loop like load.ts; with `Connection: close` each wrk connection reconnects after every
// response, so every request pays accept + connection setup in the target.
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchContext, LoadResult } from './types.js';

const DONE_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f,"bytes":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, summary.bytes))
end
`;

interface WrkJson {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  bytes: number;
}

export function haveWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // `wrk --version` exits 1 after printing its version; only a missing binary is ENOENT.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * One wrk run against `url`: `seconds` long, `connections` connections on `threads` threads (default
 * one), extra headers. `cpu`: pin wrk to this core (taskset). Returns load.ts's LoadResult shape
 * (totalRequests = requests).
 */
export async function runWrk(ctx: BenchContext, o: { url: string; connections: number; seconds: number; headers: string[]; cpu?: number; threads?: number }): Promise<LoadResult> {
  const script = join(ctx.tmpDir, 'wrk-done.lua');
  writeFileSync(script, DONE_LUA);
  const wrk = ['wrk', `-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', script, ...o.headers.flatMap((h) => ['-H', h]), o.url];
  const argv = o.cpu === undefined ? wrk : ['taskset', '-c', String(o.cpu), ...wrk];
  const h = ctx.procs.spawnProgram(`wrk ${o.url}`, argv);
  const r = await h.result<WrkJson>();
  const sec = r.durationUs / 1e6;
  const errors = r.connect + r.read + r.write + r.timeout;
  return {
    rps: r.requests / sec,
    requests: r.requests,
    totalRequests: r.requests,
    p50Ms: r.p50 / 1000,
    p90Ms: r.p90 / 1000,
    p99Ms: r.p99 / 1000,
    maxMs: r.max / 1000,
    meanMs: r.mean / 1000,
    errors,
    non2xx: r.status,
    bytesPerSec: r.bytes / sec,
    errorSamples: errors ? [`connect ${r.connect}, read ${r.read}, write ${r.write}, timeout ${r.timeout}`] : [],
  };
}

/** Short by default so `npm run bench` stays a few minutes; BENCH_WRK_DURATION=10 for steadier figures. */
const DEFAULT_SECONDS = 3;
const DEFAULT_ROUNDS = 3;

function positiveEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

/** The wrk benches' run length and interleaved rounds (BENCH_WRK_DURATION, BENCH_WRK_ROUNDS). */
export function wrkRunSettings(): { seconds: number; rounds: number } {
  return { seconds: positiveEnv('BENCH_WRK_DURATION', DEFAULT_SECONDS), rounds: Math.round(positiveEnv('BENCH_WRK_ROUNDS', DEFAULT_ROUNDS)) };
}
