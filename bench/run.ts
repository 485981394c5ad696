// `npm run bench` — the single benchmark command (DESIGN.md §1, style.md "Development habits").
//
// What it runs, in this order, in one process tree:
//   1. macro benches: every module bench/macro/<name>.ts, `proxies-wrk` (wrk against NGINX backends,
//      NGINX/HAProxy reference rows; needs scripts/install-bench-deps.sh), `proxies-workers` (the same,
//      unpinned, wrk -t2, node.workers 1 and 2 against NGINX 2 workers and HAProxy 2 threads),
//      `proxies`, `proxies-close`, `ring-vs-rr`, then the rest alphabetically. Contract (bench/lib/types.ts):
//        export async function run(ctx: BenchContext): Promise<MacroResult>
//        // MacroResult = { title: string; table: string /* Markdown */; rows?: ResultRow[] }
//      ctx gives the shared settings (durationSec, warmupSec, connections, meshgateMain, tmpDir),
//      a `selected(name)` filter for the bench's own items (targets, cases), `log()` for progress on
//      stderr, and `procs`, through which every child process must be started (bench/lib/launch.ts
//      has startBackend, startMeshgate, startHttpProxy, startUndiciMin, runLoad). Adding a macro
//      bench (reload latency, raft commit latency, sticky…) = adding one file; nothing to register.
//   2. micro benches: every module bench/micro/<name>.ts, alphabetically. Contract:
//        export async function run(): Promise<Array<{ name: string; value: number; unit: string }>>
//      Each runs in its own process (bench/lib/micro-runner.ts). A missing export, a throw or a
//      timeout becomes an error row; the other benches still run.
//
// Output: Markdown on stdout (pastes into the README), progress on stderr, and every figure in
// bench/results/latest.json (not committed).
//
// Options (flag or environment):
//   --only a,b      BENCH_ONLY         benches to run: `macro`, `micro`, or bench names (proxies, ring-vs-rr, <micro name>)
//   --targets a,b   BENCH_TARGETS      items inside macro benches: direct, nginx, haproxy, undici-min, http-proxy, meshgate, meshgate+log, round-robin, ring-hash;
//                                      proxies-workers: nginx-1w, nginx-2w, haproxy-2t, undici-min, meshgate-w1, meshgate-w2 (SCHED_NONE), meshgate-w2-rr
//   --duration s    BENCH_DURATION     measured seconds per load run (default 5)
//                   BENCH_WARMUP       warm-up seconds, discarded (default 1)
//                   BENCH_CONNECTIONS  load generator connections (default 64)
//                   BENCH_ROUNDS       repetitions per case, interleaved across targets; median reported (default 1)
//                   BENCH_WRK_DURATION proxies-wrk, proxies-workers: measured seconds per wrk run (default 3)
//                   BENCH_WRK_ROUNDS   proxies-wrk, proxies-workers: interleaved rounds per workload, median reported (default 3)
//                   BENCH_WRK_WORKLOADS proxies-wrk: keep-alive, close, 1m; proxies-workers: keep-alive, close (default all)
//                   BENCH_BASELINE_MAIN another build's dist/src/main.js: proxies-wrk and proxies-close add its meshgate rows (A/B in one run)
//                   MESHGATE_MAIN      meshgate entry point (default dist/src/main.js next to this file)
//                   BENCH_RESULTS      JSON output path (default bench/results/latest.json)
//
// Invariant: no process outlives the run — children are stopped after each bench, SIGKILLed on
// 'exit', and stopped on SIGINT/SIGTERM; our child scripts also exit when their stdin pipe closes.
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ProcessGroup } from './lib/procs.js';
import { markdownTable } from './lib/table.js';
import type { BenchContext, MacroBench, MacroResult, MicroRow } from './lib/types.js';

/** Benches that open the report, in this order (the README table first); others follow by name. */
const MACRO_FIRST = ['proxies-wrk', 'proxies-workers', 'proxies', 'proxies-close', 'ring-vs-rr'];
/** A micro bench that runs longer than this is cut off and reported as an error row. */
const MICRO_TIMEOUT_MS = 120_000;
/** Load average above this share of the CPU count at start means the machine was not idle. */
const BUSY_LOAD_SHARE = 0.25;

const here = dirname(fileURLToPath(import.meta.url));

function option(flag: string, env: string): string | undefined {
  const i = process.argv.indexOf(flag);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`${flag}=`));
  if (eq) return eq.slice(flag.length + 1);
  return process.env[env] || undefined;
}

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveNumber(v: string | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

/** Compiled modules of a bench folder: `<name>.js` (source maps and subfolders are skipped). */
function modulesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

async function main(): Promise<number> {
  const only = list(option('--only', 'BENCH_ONLY'));
  const targets = list(option('--targets', 'BENCH_TARGETS'));
  const procs = new ProcessGroup();
  const tmpDir = mkdtempSync(join(tmpdir(), 'meshgate-bench-'));
  const cleanupSync = (): void => {
    procs.killAllSync();
    if (!process.env.BENCH_KEEP_TMP) rmSync(tmpDir, { recursive: true, force: true });
  };
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping child processes\n`);
      void procs.stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }

  const ctx: BenchContext = {
    durationSec: positiveNumber(option('--duration', 'BENCH_DURATION'), 5, 'BENCH_DURATION'),
    warmupSec: process.env.BENCH_WARMUP === '0' ? 0 : positiveNumber(process.env.BENCH_WARMUP, 1, 'BENCH_WARMUP'),
    rounds: Math.round(positiveNumber(process.env.BENCH_ROUNDS, 1, 'BENCH_ROUNDS')),
    connections: Math.round(positiveNumber(process.env.BENCH_CONNECTIONS, 64, 'BENCH_CONNECTIONS')),
    meshgateMain: process.env.MESHGATE_MAIN ?? fileURLToPath(new URL('../src/main.js', import.meta.url)),
    tmpDir,
    selected: (name) => targets.length === 0 || targets.includes(name),
    log: (line) => process.stderr.write(`[bench] ${line}\n`),
    procs,
  };
  const wants = (kind: 'macro' | 'micro', name: string): boolean =>
    only.length === 0 || only.includes(kind) || only.includes(name) || only.includes(`${kind}/${name}`);

  const cpuList = cpus();
  const header = `## meshgate benchmarks\n\nNode ${process.version}, ${cpuList.length} × ${cpuList[0]?.model ?? 'unknown CPU'}, ${process.platform}/${process.arch}, ${new Date().toISOString()}. ` +
    `Load: one closed-loop undici generator process, ${ctx.connections} keep-alive connections, ${ctx.warmupSec} s warm-up then ${ctx.durationSec} s measured; ` +
    'backend, target and load generator each in their own process on this machine. The wrk benches (proxies-wrk, proxies-close) give their own set-up in their titles.';
  process.stdout.write(`${header}\n\n`);
  const loadBefore = loadavg()[0]!;
  process.stdout.write(`Load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min).\n\n`);
  // Other work on the machine skews req/s far more than it skews CPU µs/req; say so in the report.
  if (loadBefore > cpuList.length * BUSY_LOAD_SHARE) {
    process.stdout.write(`> warning: 1-minute load average was ${loadBefore.toFixed(2)} on ${cpuList.length} CPUs when the run started; other processes share this machine, so req/s and latency are pessimistic.\n\n`);
  }

  let failed = false;
  const macroOut: Array<{ name: string } & Partial<MacroResult> & { error?: string }> = [];
  const macroDir = join(here, 'macro');
  const macroNames = modulesIn(macroDir);
  const ordered = [...MACRO_FIRST.filter((n) => macroNames.includes(n)), ...macroNames.filter((n) => !MACRO_FIRST.includes(n))];
  for (const name of ordered) {
    if (!wants('macro', name)) continue;
    ctx.log(`macro ${name}`);
    try {
      const mod = (await import(pathToFileURL(join(macroDir, `${name}.js`)).href)) as { run?: MacroBench };
      if (typeof mod.run !== 'function') throw new Error(`bench/macro/${name} exports no run(ctx)`);
      const res = await mod.run(ctx);
      process.stdout.write(`### ${res.title}\n\n${res.table}\n\n`);
      macroOut.push({ name, ...res });
    } catch (err) {
      failed = true;
      const msg = (err as Error).stack ?? String(err);
      process.stdout.write(`### ${name}\n\nerror: ${(err as Error).message}\n\n`);
      macroOut.push({ name, error: msg });
    } finally {
      // Whatever a bench left running (it should have stopped its own) goes before the next one.
      await procs.stopAll();
    }
  }

  const microOut: Array<MicroRow & { bench: string; error?: string }> = [];
  const microDir = join(here, 'micro');
  const microNames = modulesIn(microDir).filter((n) => wants('micro', n));
  for (const name of microNames) {
    ctx.log(`micro ${name}`);
    const h = procs.spawnNode(`micro ${name}`, join(here, 'lib', 'micro-runner.js'), { file: join(microDir, `${name}.js`) });
    try {
      const out = await withTimeout(h.result<{ rows?: Array<{ name: string; value: number | null; unit: string }>; error?: string }>(), MICRO_TIMEOUT_MS, `micro ${name}`);
      if (out.error !== undefined) throw new Error(out.error);
      for (const r of out.rows ?? []) microOut.push({ bench: name, name: r.name, value: r.value ?? Number.NaN, unit: r.unit });
    } catch (err) {
      microOut.push({ bench: name, name: '(error)', value: Number.NaN, unit: '', error: (err as Error).message });
    } finally {
      await h.stop();
    }
  }
  if (microOut.length > 0) {
    const cells = microOut.map((r) =>
      r.error !== undefined ? [r.bench, r.name, '—', `error: ${r.error.split('\n')[0]!.slice(0, 120)}`] : [r.bench, r.name, formatValue(r.value), r.unit],
    );
    process.stdout.write(`### Micro benchmarks\n\n${markdownTable(['bench', 'name', 'value', 'unit'], cells)}\n\n`);
  } else if (only.length === 0 || only.includes('micro')) {
    process.stdout.write('### Micro benchmarks\n\n(none found in bench/micro)\n\n');
  }

  const resultsPath = process.env.BENCH_RESULTS ?? fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url));
  try {
    mkdirSync(dirname(resultsPath), { recursive: true });
    writeFileSync(
      resultsPath,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          platform: `${process.platform}/${process.arch}`,
          cpus: cpuList.length,
          cpuModel: cpuList[0]?.model ?? null,
          loadAverage1m: { atStart: loadBefore, atEnd: loadavg()[0] },
          settings: { durationSec: ctx.durationSec, warmupSec: ctx.warmupSec, connections: ctx.connections, rounds: ctx.rounds, only, targets },
          macro: macroOut,
          micro: microOut.map((r) => ({ ...r, value: Number.isFinite(r.value) ? r.value : null })),
        },
        null,
        2,
      )}\n`,
    );
    ctx.log(`results written to ${resultsPath}`);
  } catch (err) {
    ctx.log(`could not write ${resultsPath}: ${(err as Error).message}`);
  }
  await procs.stopAll();
  return failed ? 1 : 0;
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(4)).toString();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
