// Macro bench "proxies-wrk": the proxies measured the way users measure them (issue 16) — wrk as the
// load generator, two NGINX backends (one process each), NGINX and HAProxy as reference proxies, the
// minimal undici proxy and http-proxy as the Node rows, meshgate with and without its access log.
// The proxy under test runs alone on one core (taskset), the backends and wrk on the other.
// Workloads: 64 B keep-alive (wrk -t1 -c50), 64 B with `Connection: close` (a new client connection
// per request; every proxy keeps its upstream connections pooled), and 1 MiB keep-alive.
// Figures per (target, workload): req/s, p50, p99 (wrk's), CPU µs per request (the target's
// utime+stime delta over the measured run ÷ requests), peak RSS (VmHWM, reset before each run where
// the kernel allows). Every workload runs BENCH_WRK_ROUNDS rounds, targets interleaved inside each
// round, and the run with the median req/s is reported; ratios against undici-min and NGINX come
// from the same run. BENCH_WRK_WORKLOADS=keep-alive,close,1m picks workloads. A target whose binary
// is missing (nginx, haproxy) is left out with a note.
// Invariant: every process (backends, targets, wrk) is started through ctx.procs and stopped here.
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { cpuTicks, readPeakRssMiB, resetPeakRss, startHttpProxy, startMeshgate, startUndiciMin, USER_HZ, checkServes, type Target } from '../lib/launch.js';
import { haproxyBinary, LARGE_BYTES, nginxBinary, startHaproxy, startNginxBackend, startNginxProxy } from '../lib/native-servers.js';
import { cpuPlan, pin } from '../lib/pin.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';
import { startTargets } from '../lib/start-targets.js';
import { haveWrk, runWrk, wrkRunSettings } from '../lib/wrk.js';

/** wrk -c50 on one thread, as issue 16's table was measured. */
const CONNECTIONS = 50;

interface Workload {
  /** Name for BENCH_WRK_WORKLOADS (a comma list; default all). */
  id: string;
  label: string;
  path: string;
  bytes: number;
  headers: string[];
}

const WORKLOADS: Workload[] = [
  { id: 'keep-alive', label: '64 B keep-alive', path: '/64', bytes: 64, headers: [] },
  { id: 'close', label: '64 B Connection: close', path: '/64', bytes: 64, headers: ['Connection: close'] },
  { id: '1m', label: '1 MiB keep-alive', path: '/1m', bytes: LARGE_BYTES, headers: [] },
];

type Measured = LoadResult & { cpuUsPerReq?: number; peakRssMiB?: number; rounds?: number[]; round?: number };

interface TargetSpec {
  name: string;
  /** Why this target cannot run here (a missing package), or undefined. */
  missing?: () => string | undefined;
  start: (ctx: BenchContext, upstreams: string[], cpu: number | undefined) => Promise<Target>;
}

const meshgate = (name: string, accessLog: boolean, main?: string): TargetSpec => ({
  name,
  start: (ctx, upstreams) =>
    startMeshgate(main ? { ...ctx, meshgateMain: main } : ctx, name, {
      accessLog,
      service: { balancer: 'round-robin', upstreams: upstreams.map((url, i) => ({ id: `b${i + 1}`, url })) },
    }),
});

const TARGETS: TargetSpec[] = [
  { name: 'nginx', missing: () => (nginxBinary() ? undefined : 'nginx not installed'), start: (ctx, u, cpu) => startNginxProxy(ctx, u, cpu) },
  { name: 'haproxy', missing: () => (haproxyBinary() ? undefined : 'haproxy not installed'), start: (ctx, u, cpu) => startHaproxy(ctx, u, cpu) },
  { name: 'undici-min', start: (ctx, u) => startUndiciMin(ctx, u) },
  { name: 'http-proxy', start: (ctx, u) => startHttpProxy(ctx, u) },
  meshgate('meshgate', false),
  meshgate('meshgate+log', true),
];
// BENCH_BASELINE_MAIN=<another build's dist/src/main.js>: the two meshgate rows again for that build,
// in the same run and interleaved, so a change's A/B has no run-to-run noise between its halves.
const baseline = process.env.BENCH_BASELINE_MAIN;
if (baseline) TARGETS.push(meshgate('meshgate-baseline', false, baseline), meshgate('meshgate-baseline+log', true, baseline));

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const { seconds, rounds } = wrkRunSettings();
  const title = `Proxies under wrk — two NGINX backends, wrk -t1 -c${CONNECTIONS}, ${seconds} s after ${ctx.warmupSec} s warm-up, median of ${rounds} interleaved rounds`;
  if (!haveWrk()) return { title, table: '(wrk not installed: scripts/install-bench-deps.sh)' };
  if (!nginxBinary()) return { title, table: '(nginx not installed, needed for the backends: scripts/install-bench-deps.sh)' };
  const chosen = TARGETS.filter((t) => ctx.selected(t.name));
  const wanted = (process.env.BENCH_WRK_WORKLOADS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const workloads = WORKLOADS.filter((w) => wanted.length === 0 || wanted.includes(w.id));
  if (workloads.length === 0) return { title, table: `(no workload selected; BENCH_WRK_WORKLOADS takes ${WORKLOADS.map((w) => w.id).join(', ')})` };
  if (chosen.length === 0) return { title, table: `(no target selected; targets: ${TARGETS.map((t) => t.name).join(', ')})` };

  const plan = cpuPlan();
  const notes: string[] = [];
  const failed = new Map<string, string>();
  const started = new Map<string, Target>();
  const samples = new Map<string, Measured[]>();
  const backends: Target[] = [];
  let peakResets = true;
  try {
    for (const id of ['b1', 'b2']) backends.push(await startNginxBackend(ctx, id, plan?.harness));
    const upstreams = backends.map((b) => b.origin);
    const boot = await startTargets(ctx, 'proxies-wrk', chosen, (t) => t.start(ctx, upstreams, plan?.target), async (_t, target) => {
      if (plan) pin(target.pid, plan.target);
      for (const w of workloads) await checkServes(target, w.path, w.bytes);
    });
    for (const [k, v] of boot.started) started.set(k, v);
    for (const [k, v] of boot.failed) failed.set(k, v);
    notes.push(...boot.notes);
    // Workloads in order, rounds inside: a process's peak RSS under 64 B is not inflated by the
    // buffers of an earlier 1 MiB run, and each round still interleaves every target.
    for (const w of workloads) {
      for (let round = 1; round <= rounds; round++) {
        for (const [name, target] of started) {
          ctx.log(`proxies-wrk: ${w.label} round ${round}/${rounds} ${name}`);
          try {
            const common = { url: `${target.origin}${w.path}`, connections: CONNECTIONS, headers: w.headers, cpu: plan?.harness };
            const pid = target.pid!;
            peakResets = resetPeakRss(pid) && peakResets;
            if (ctx.warmupSec > 0) await runWrk(ctx, { ...common, seconds: ctx.warmupSec });
            const before = cpuTicks(pid);
            const r: Measured = await runWrk(ctx, { ...common, seconds });
            const after = cpuTicks(pid);
            if (before !== undefined && after !== undefined && r.requests > 0) r.cpuUsPerReq = ((after - before) * (1e6 / USER_HZ)) / r.requests;
            r.peakRssMiB = readPeakRssMiB(pid);
            r.round = round;
            const key = `${name}\0${w.label}`;
            samples.set(key, [...(samples.get(key) ?? []), r]);
          } catch (err) {
            failed.set(name, (err as Error).message);
          }
        }
      }
    }
  } finally {
    await Promise.all([...started.values()].map((t) => t.stop()));
    await Promise.all(backends.map((b) => b.stop()));
  }

  const median = (name: string, w: Workload): Measured | undefined => {
    const runs = samples.get(`${name}\0${w.label}`);
    if (!runs || runs.length === 0) return undefined;
    const sorted = [...runs].sort((a, b) => a.rps - b.rps);
    const peaks = runs.map((r) => r.peakRssMiB).filter((v): v is number => v !== undefined);
    // Peak RSS: the highest of the rounds (a peak, not a typical value).
    return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, peakRssMiB: peaks.length ? Math.max(...peaks) : undefined, rounds: runs.map((r) => Math.round(r.rps)) };
  };

  /**
   * The median over rounds of (this target's req/s ÷ undici-min's in the same round). Rounds are
   * interleaved, so a VM that speeds up or slows down between rounds (this one moves by 30%) moves both
   * sides of each ratio together; the ratio of the two medians above does not cancel that.
   */
  const pairedRatio = (name: string, w: Workload): string => {
    const mine = samples.get(`${name}\0${w.label}`) ?? [];
    const ref = new Map((samples.get(`undici-min\0${w.label}`) ?? []).map((r) => [r.round, r.rps]));
    const ratios = mine.flatMap((r) => (ref.get(r.round) ? [r.rps / ref.get(r.round)!] : [])).sort((a, b) => a - b);
    if (ratios.length === 0) return '—';
    const mid = ratios[Math.floor((ratios.length - 1) / 2)]!;
    return `${mid.toFixed(2)}× (${ratios[0]!.toFixed(2)}–${ratios[ratios.length - 1]!.toFixed(2)})`;
  };

  const rows: ResultRow[] = [];
  const cells: Array<Array<string | number>> = [];
  for (const w of workloads) {
    const ref = median('undici-min', w)?.rps;
    const nginx = median('nginx', w)?.rps;
    for (const t of chosen) {
      if (t.missing?.()) continue;
      const r = median(t.name, w);
      if (!r) {
        const msg = failed.get(t.name)?.split('\n')[0]?.slice(0, 100) ?? 'not run';
        cells.push([t.name, w.label, `error: ${msg}`, '—', '—', '—', '—', '—', '—', '—', '—', '—']);
        rows.push({ target: t.name, workload: w.label, error: msg });
        continue;
      }
      cells.push([
        t.name,
        w.label,
        fmtRps(r.rps),
        w.bytes >= LARGE_BYTES ? fmtRps(r.bytesPerSec / 2 ** 20) : '—',
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0),
        r.peakRssMiB === undefined ? '—' : r.peakRssMiB.toFixed(1),
        r.errors + r.non2xx === 0 ? '0' : `${r.errors} / ${r.non2xx} non-2xx`,
        fmtRatio(r.rps, ref),
        pairedRatio(t.name, w),
        fmtRatio(r.rps, nginx),
      ]);
      rows.push({
        target: t.name,
        workload: w.label,
        rps: r.rps,
        mibPerSec: r.bytesPerSec / 2 ** 20,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        cpuUsPerReq: r.cpuUsPerReq ?? null,
        peakRssMiB: r.peakRssMiB ?? null,
        errors: r.errors,
        non2xx: r.non2xx,
        roundsRps: r.rounds?.join(' ') ?? null,
        pairedVsUndiciMin: pairedRatio(t.name, w),
      });
    }
  }
  const table = markdownTable(['target', 'workload', 'req/s', 'MiB/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'peak RSS MiB', 'errors', '÷ undici-min', 'paired ÷ undici-min (range)', '÷ nginx'], cells);
  notes.unshift(
    plan
      ? `Pinned (taskset): each proxy alone on CPU ${plan.target}; the two NGINX backends (one process each) and wrk on CPU ${plan.harness}. BENCH_PIN=0 runs unpinned.`
      : 'Unpinned (BENCH_PIN=0, or no taskset): backends, proxy and wrk share every core.',
    'CPU µs/req: the proxy process\'s utime+stime over the measured run ÷ requests. Peak RSS: VmHWM, the highest of the rounds' +
      (peakResets ? ', reset before each run (clear_refs), so it covers that workload only.' : ' over the process\'s life so far (clear_refs was refused).'),
    '÷ undici-min: the ratio of the two median rows. Paired: the median, over rounds, of this target\'s req/s ÷ undici-min\'s in the same round (and the range), which cancels the VM\'s drift between rounds.',
    'NGINX (master_process off, upstream keepalive 128) and HAProxy (nbthread 1, http-reuse always) run without access logs; meshgate+log writes its access log to a file.',
  );
  return { title, table: `${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}`, rows };
}
