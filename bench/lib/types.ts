// Shared types of the benchmark harness (bench/run.ts). A macro bench is a module
// bench/macro/<name>.ts exporting `run(ctx)`; a micro bench is bench/micro/<name>.ts exporting
// `run()`. run.ts discovers both folders, so adding a bench means adding one file — no list to edit.
// Invariant: every child process a bench starts goes through `ctx.procs`, which kills it on exit
// and on SIGINT/SIGTERM, so no bench leaves a process behind.
import type { ProcessGroup } from './procs.js';

/** Settings shared by every macro bench in one `npm run bench` run. */
export interface BenchContext {
  /** Measured seconds per load run (BENCH_DURATION, default 5). */
  readonly durationSec: number;
  /** Warm-up seconds before each measured run; discarded (BENCH_WARMUP, default 1). */
  readonly warmupSec: number;
  /** Measured repetitions per case, interleaved across targets; the median is reported (BENCH_ROUNDS, default 1). */
  readonly rounds: number;
  /** Concurrent keep-alive connections of the load generator (BENCH_CONNECTIONS, default 64). */
  readonly connections: number;
  /** Absolute path of the compiled meshgate CLI (dist/src/main.js, or MESHGATE_MAIN). */
  readonly meshgateMain: string;
  /** Scratch directory for configs and logs of this run; removed on exit. */
  readonly tmpDir: string;
  /** True when a named item (a target, a case) passes the --only / BENCH_ONLY filter. */
  selected(name: string): boolean;
  /** Progress line on stderr (stdout carries only the tables). */
  log(line: string): void;
  /** Owner of every child process of this run. */
  readonly procs: ProcessGroup;
}

/** One row of a macro result, as written to bench/results/latest.json. */
export type ResultRow = Record<string, string | number | null>;

/** What a macro bench returns: a Markdown table ready to paste into the README. */
export interface MacroResult {
  title: string;
  /** Markdown table (and optional note lines under it). */
  table: string;
  rows?: ResultRow[];
}

export type MacroBench = (ctx: BenchContext) => Promise<MacroResult>;

/** One figure of a micro bench (bench/micro/<name>.ts: `export async function run(): Promise<MicroRow[]>`). */
export interface MicroRow {
  name: string;
  value: number;
  unit: string;
}

export type MicroBench = () => Promise<MicroRow[]>;

/** What the load generator child (bench/lib/load.ts) prints as its last stdout line. */
export interface LoadResult {
  /** Completed requests per second over the measured window (closed loop; see load.ts). */
  rps: number;
  requests: number;
  /** Every completed request of the run, warm-up and drain included (for CPU time per request). */
  totalRequests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Transport errors (reset, refused, timeout). */
  errors: number;
  /** Completed responses with a status outside 200–299. */
  non2xx: number;
  /** Response body bytes received per second over the measured window. */
  bytesPerSec: number;
  /** When asked (`countHeader`), how many responses carried each value of that header. */
  headerCounts?: Record<string, number>;
  /** First few distinct error messages, for diagnosis. */
  errorSamples: string[];
}
