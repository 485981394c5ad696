// The one load generator of the harness, run as its own process:
//   node load.js '{"origin":"http://127.0.0.1:P","path":"/64","connections":64,"durationSec":5,"warmupSec":1}'
// Prints a LoadResult (types.ts) as one JSON line on stdout when done.
//
// Model: closed loop, like autocannon/wrk without a rate — `connections` keep-alive connections
// (one undici Pool, pipelining 1), each with exactly one request in flight, the next sent as soon as
// the previous response body has been read to the end. Latency = request dispatch → last body byte.
// A closed loop under-reports tail latency when the target stalls (coordinated omission, Gil Tene):
// p99 here compares targets under the same load, it is not a user-facing SLO figure.
//
// Invariants: warm-up completions are discarded; a request counts toward the measured window when it
// *completes* inside it, so rps = completions / window with no edge bias; the raw dispatch handler
// API is used (no Readable per response) to keep the generator's own cost low on a 2-core machine.
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { Histogram } from './histogram.js';
import { exitWhenParentGone } from './procs.js';
import type { LoadResult } from './types.js';

export interface LoadArgs {
  origin: string;
  path: string;
  connections: number;
  durationSec: number;
  warmupSec: number;
  /** Send this header on every request with a value drawn from `headerValues` distinct ids. */
  headerName?: string;
  headerValues?: number;
  /** Count responses by the value of this response header (e.g. x-backend-id). */
  countHeader?: string;
}

/** Requests still in flight when the window closes get this long to finish before we exit. */
const DRAIN_MS = 5_000;
/** Keep idle connections open longer than the window; the backend's own timeout is 65 s. */
const CLIENT_KEEP_ALIVE_MS = 60_000;
const MAX_ERROR_SAMPLES = 5;

function main(args: LoadArgs): void {
  const pool = new Pool(args.origin, {
    connections: args.connections,
    pipelining: 1,
    keepAliveTimeout: CLIENT_KEEP_ALIVE_MS,
    keepAliveMaxTimeout: CLIENT_KEEP_ALIVE_MS,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const hist = new Histogram();
  const counts = new Map<string, number>();
  const errorSamples = new Set<string>();
  const countHeader = args.countHeader?.toLowerCase();
  const ids = args.headerName ? Array.from({ length: args.headerValues ?? 10_000 }, (_, i) => `user-${i}`) : [];
  // Park–Miller LCG: a deterministic spread of ids, identical from run to run and target to target.
  let seed = 12345;
  const nextId = (): string => {
    seed = (seed * 48271) % 2147483647;
    return ids[seed % ids.length]!;
  };

  const t0 = performance.now();
  const measureStart = t0 + args.warmupSec * 1000;
  const measureEnd = measureStart + args.durationSec * 1000;
  let stopping = false;
  let inFlight = 0;
  let completed = 0;
  let totalCompleted = 0;
  let errors = 0;
  let non2xx = 0;
  let bytes = 0;

  const fire = (): void => {
    if (stopping) return;
    inFlight++;
    const start = performance.now();
    let status = 0;
    let got = 0;
    let tag: string | undefined;
    const opts: Dispatcher.DispatchOptions = { path: args.path, method: 'GET' };
    if (args.headerName) opts.headers = { [args.headerName]: nextId() };
    const done = (err?: Error): void => {
      inFlight--;
      if (!err) totalCompleted++;
      const end = performance.now();
      if (end >= measureStart && end <= measureEnd) {
        if (err) {
          errors++;
          if (errorSamples.size < MAX_ERROR_SAMPLES) errorSamples.add(`${(err as { code?: string }).code ?? ''} ${err.message}`.trim());
        } else {
          completed++;
          bytes += got;
          hist.record((end - start) * 1000);
          if (status < 200 || status > 299) non2xx++;
          if (tag !== undefined) counts.set(tag, (counts.get(tag) ?? 0) + 1);
        }
      }
      if (end > measureEnd) stopping = true;
      // After an error, yield first: a refused connection must not become a synchronous spin.
      if (err) setImmediate(fire);
      else fire();
    };
    pool.dispatch(opts, {
      onConnect: () => {},
      onHeaders: (statusCode, headers) => {
        status = statusCode;
        if (countHeader && headers) {
          for (let i = 0; i + 1 < headers.length; i += 2) {
            if (String(headers[i]).toLowerCase() === countHeader) tag = String(headers[i + 1]);
          }
        }
        return true;
      },
      onData: (chunk) => {
        got += chunk.length;
        return true;
      },
      onComplete: () => done(),
      onError: (err) => done(err),
    });
  };

  for (let i = 0; i < args.connections; i++) fire();

  const finish = (): void => {
    const result: LoadResult = {
      rps: completed / args.durationSec,
      requests: completed,
      totalRequests: totalCompleted,
      p50Ms: hist.percentile(50) / 1000,
      p90Ms: hist.percentile(90) / 1000,
      p99Ms: hist.percentile(99) / 1000,
      maxMs: hist.max / 1000,
      meanMs: hist.mean / 1000,
      errors,
      non2xx,
      bytesPerSec: bytes / args.durationSec,
      errorSamples: [...errorSamples],
    };
    if (countHeader) result.headerCounts = Object.fromEntries([...counts].sort());
    process.stdout.write(`${JSON.stringify(result)}\n`);
    // Do not wait for pool.close(): a stuck in-flight request must not hold the result back.
    void pool.destroy().finally(() => process.exit(0));
  };

  // Closing the window by timer too: if every connection is stuck, completions never flip `stopping`.
  setTimeout(() => {
    stopping = true;
    const drainDeadline = performance.now() + DRAIN_MS;
    const wait = (): void => {
      if (inFlight === 0 || performance.now() > drainDeadline) finish();
      else setTimeout(wait, 10);
    };
    wait();
  }, measureEnd - t0 + 1);
}

exitWhenParentGone();
main(JSON.parse(process.argv[2] ?? '{}') as LoadArgs);
