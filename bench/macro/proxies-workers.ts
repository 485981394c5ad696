// Macro bench "proxies-workers": does `node.workers: 2` turn the second core into requests (issue 16,
// "Workers")? On a 2-core machine, NOTHING pinned — the two NGINX backends, wrk and the proxy share
// both cores, as issue 16 asks — wrk -t2 -c100 against: NGINX with one process and with a master and
// `worker_processes 2`, HAProxy `nbthread 2`, the minimal undici proxy (reference), meshgate
// `workers: 1` and `workers: 2` (access log off; SCHED_NONE, meshgate's default: the kernel hands
// accepts to whichever worker wakes), and `workers: 2` again with NODE_CLUSTER_SCHED_POLICY=rr
// (node:cluster's round-robin: the primary accepts and passes each connection on), so the policy is
// chosen by measurement (docs/workers.md). Workloads: 64 B keep-alive and 64 B `Connection: close` (BENCH_WRK_WORKLOADS).
// Figures per (target, workload): req/s, p50, p99, CPU µs per request summed over the target's WHOLE
// process tree (meshgate primary + workers, NGINX master + workers: treeCpuTicks), req per
// CPU-second (its inverse), the cores the target kept busy, how busy the machine was, and for a
// multi-process row its req/s and req-per-CPU-second against its one-process row ("efficiency ÷ 1",
// issue 16's ≥ 0.9x). BENCH_WRK_ROUNDS interleaved rounds of BENCH_WRK_DURATION s; the run with the
// median req/s is reported.
// Invariant: every process (backends, targets, wrk) is started through ctx.procs and stopped here.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { checkServes, cpuTicks, meshgateWorkers, startMeshgate, startUndiciMin, treeCpuTicks, USER_HZ, type Target, type WorkerStatus } from '../lib/launch.js';
import { sleep } from '../lib/samples.js';
import { haproxyBinary, nginxBinary, startHaproxy, startNginxBackend, startNginxProxy } from '../lib/native-servers.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';
import { startTargets } from '../lib/start-targets.js';
import { haveWrk, runWrk, wrkRunSettings } from '../lib/wrk.js';

/** wrk -t2 -c100: two load threads, so the generator is not the one-core bottleneck of -t1. */
const THREADS = 2;
const CONNECTIONS = 100;
const PATH = '/64';

const WORKLOADS = [
  { id: 'keep-alive', label: '64 B keep-alive', headers: [] as string[] },
  { id: 'close', label: '64 B Connection: close', headers: ['Connection: close'] },
];

type Measured = LoadResult & { cpuUsPerReq?: number; rootCpuUsPerReq?: number; processes?: number; workerSplit?: number[]; machineBusy?: number; rounds?: number[] };

interface TargetSpec {
  name: string;
  /** meshgate with `node.workers` > 1: the bench reads each worker's request count from /api/v1/status. */
  workers?: boolean;
  /** Its one-process row, against which its scaling is reported. */
  single?: string;
  missing?: () => string | undefined;
  start: (ctx: BenchContext, upstreams: string[]) => Promise<Target>;
}

const meshgate = (name: string, workers: number, policy?: 'rr' | 'none'): TargetSpec => ({
  name,
  single: workers > 1 ? 'meshgate-w1' : undefined,
  workers: workers > 1,
  start: (ctx, upstreams) =>
    startMeshgate(ctx, name, {
      accessLog: false,
      workers,
      // Set either way, so a NODE_CLUSTER_SCHED_POLICY in the bench's own environment changes no row.
      env: policy ? { ...process.env, NODE_CLUSTER_SCHED_POLICY: policy } : undefined,
      service: { balancer: 'round-robin', upstreams: upstreams.map((url, i) => ({ id: `b${i + 1}`, url })) },
    }),
});

const noNginx = (): string | undefined => (nginxBinary() ? undefined : 'nginx not installed');
const TARGETS: TargetSpec[] = [
  { name: 'nginx-1w', missing: noNginx, start: (ctx, u) => startNginxProxy(ctx, u, undefined) },
  { name: 'nginx-2w', single: 'nginx-1w', missing: noNginx, start: (ctx, u) => startNginxProxy(ctx, u, undefined, 2) },
  { name: 'haproxy-2t', missing: () => (haproxyBinary() ? undefined : 'haproxy not installed'), start: (ctx, u) => startHaproxy(ctx, u, undefined, 2) },
  { name: 'undici-min', start: (ctx, u) => startUndiciMin(ctx, u) },
  meshgate('meshgate-w1', 1),
  meshgate('meshgate-w2', 2, 'none'),
  meshgate('meshgate-w2-rr', 2, 'rr'),
];

/** Workers report their request counts with each 1 s heartbeat; after this the count covers the run. */
const HEARTBEAT_SETTLE_MS = 1_500;

/** Each worker's share of the requests between two status readings, in index order. */
function splitOf(before: WorkerStatus[], after: WorkerStatus[]): number[] | undefined {
  const deltas = after.map((w) => w.requests - (before.find((b) => b.index === w.index)?.requests ?? 0));
  const total = deltas.reduce((a, b) => a + b, 0);
  return total > 0 ? deltas.map((d) => d / total) : undefined;
}

/** Busy and total jiffies of the whole machine (the `cpu` line of /proc/stat), or undefined off Linux. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal (guest is inside user)
    return { busy: total - v[3]! - v[4]!, total }; // minus idle and iowait
  } catch {
    return undefined;
  }
}

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const { seconds, rounds } = wrkRunSettings();
  const title = `Workers — unpinned, two NGINX backends, wrk -t${THREADS} -c${CONNECTIONS}, ${seconds} s after ${ctx.warmupSec} s warm-up, median of ${rounds} interleaved rounds`;
  if (!haveWrk()) return { title, table: '(wrk not installed: scripts/install-bench-deps.sh)' };
  if (!nginxBinary()) return { title, table: '(nginx not installed, needed for the backends: scripts/install-bench-deps.sh)' };
  const chosen = TARGETS.filter((t) => ctx.selected(t.name));
  if (chosen.length === 0) return { title, table: `(no target selected; targets: ${TARGETS.map((t) => t.name).join(', ')})` };
  const wanted = (process.env.BENCH_WRK_WORKLOADS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const workloads = WORKLOADS.filter((w) => wanted.length === 0 || wanted.includes(w.id));
  if (workloads.length === 0) return { title, table: `(no workload selected; BENCH_WRK_WORKLOADS takes ${WORKLOADS.map((w) => w.id).join(', ')})` };

  const loadStart = loadavg();
  const specOf = (name: string): TargetSpec => TARGETS.find((x) => x.name === name)!;
  const notes: string[] = [];
  const failed = new Map<string, string>();
  const started = new Map<string, Target>();
  const samples = new Map<string, Measured[]>();
  const backends: Target[] = [];
  try {
    for (const id of ['b1', 'b2']) backends.push(await startNginxBackend(ctx, id, undefined));
    const upstreams = backends.map((b) => b.origin);
    const boot = await startTargets(ctx, 'proxies-workers', chosen, (t) => t.start(ctx, upstreams), (_t, target) => checkServes(target, PATH, 64));
    for (const [k, v] of boot.started) started.set(k, v);
    for (const [k, v] of boot.failed) failed.set(k, v);
    notes.push(...boot.notes);
    for (const w of workloads) {
      for (let round = 1; round <= rounds; round++) {
        for (const [name, target] of started) {
          ctx.log(`proxies-workers: ${w.label} round ${round}/${rounds} ${name}`);
          try {
            const common = { url: `${target.origin}${PATH}`, connections: CONNECTIONS, threads: THREADS, headers: w.headers };
            // meshgate with workers: how the connections' requests spread over them (warm-up included).
            const workersBefore = specOf(name).workers && target.admin ? await meshgateWorkers(target.admin) : undefined;
            if (ctx.warmupSec > 0) await runWrk(ctx, { ...common, seconds: ctx.warmupSec });
            const pid = target.pid!;
            const [before, rootBefore, machineBefore] = [treeCpuTicks(pid), cpuTicks(pid), machineTicks()];
            const r: Measured = await runWrk(ctx, { ...common, seconds });
            const [after, rootAfter, machineAfter] = [treeCpuTicks(pid), cpuTicks(pid), machineTicks()];
            const perReq = (ticks: number): number => (ticks * (1e6 / USER_HZ)) / r.requests;
            if (before && after && r.requests > 0) {
              r.cpuUsPerReq = perReq(after.ticks - before.ticks);
              r.processes = after.processes;
            }
            if (rootBefore !== undefined && rootAfter !== undefined && r.requests > 0) r.rootCpuUsPerReq = perReq(rootAfter - rootBefore);
            if (workersBefore && target.admin) {
              await sleep(HEARTBEAT_SETTLE_MS);
              r.workerSplit = splitOf(workersBefore, await meshgateWorkers(target.admin));
            }
            if (machineBefore && machineAfter && machineAfter.total > machineBefore.total) {
              r.machineBusy = (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total);
            }
            const key = `${name}\0${w.id}`;
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
  const loadEnd = loadavg();

  const median = (name: string, workload: string): Measured | undefined => {
    const runs = samples.get(`${name}\0${workload}`);
    if (!runs || runs.length === 0) return undefined;
    const sorted = [...runs].sort((a, b) => a.rps - b.rps);
    return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, rounds: runs.map((r) => Math.round(r.rps)) };
  };
  const perCpuSecond = (r: Measured | undefined): number | undefined => (r?.cpuUsPerReq ? 1e6 / r.cpuUsPerReq : undefined);

  const rows: ResultRow[] = [];
  const cells: Array<Array<string | number>> = [];
  for (const w of workloads) {
    for (const t of chosen) {
      if (t.missing?.()) continue;
      const r = median(t.name, w.id);
      if (!r) {
        const msg = failed.get(t.name)?.split('\n')[0]?.slice(0, 100) ?? 'not run';
        cells.push([t.name, w.label, `error: ${msg}`, '—', '—', '—', '—', '—', '—', '—', '—', '—', '—', '—']);
        rows.push({ target: t.name, workload: w.label, error: msg });
        continue;
      }
      const single = t.single ? median(t.single, w.id) : undefined;
      const reqPerCpuSec = perCpuSecond(r);
      const cores = r.cpuUsPerReq === undefined ? undefined : (r.rps * r.cpuUsPerReq) / 1e6;
      cells.push([
        t.name,
        w.label,
        fmtRps(r.rps),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0),
        r.processes === undefined || r.processes < 2 || r.rootCpuUsPerReq === undefined ? '—' : r.rootCpuUsPerReq.toFixed(0),
        reqPerCpuSec === undefined ? '—' : fmtRps(reqPerCpuSec),
        cores === undefined ? '—' : cores.toFixed(2),
        r.machineBusy === undefined ? '—' : `${(r.machineBusy * 100).toFixed(0)}%`,
        r.workerSplit ? r.workerSplit.map((x) => (x * 100).toFixed(0)).join(' / ') : '—',
        r.errors + r.non2xx === 0 ? '0' : `${r.errors} / ${r.non2xx} non-2xx`,
        single ? fmtRatio(r.rps, single.rps) : '—',
        single ? fmtRatio(reqPerCpuSec, perCpuSecond(single)) : '—',
      ]);
      rows.push({
        target: t.name,
        workload: w.label,
        rps: r.rps,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        cpuUsPerReq: r.cpuUsPerReq ?? null,
        rootCpuUsPerReq: r.rootCpuUsPerReq ?? null,
        reqPerCpuSecond: reqPerCpuSec ?? null,
        targetCores: cores ?? null,
        processes: r.processes ?? null,
        machineBusy: r.machineBusy ?? null,
        workerSplit: r.workerSplit?.map((x) => x.toFixed(3)).join(' ') ?? null,
        errors: r.errors,
        non2xx: r.non2xx,
        rpsVsSingle: single ? r.rps / single.rps : null,
        efficiencyVsSingle: single && reqPerCpuSec && perCpuSecond(single) ? reqPerCpuSec / perCpuSecond(single)! : null,
        roundsRps: r.rounds?.join(' ') ?? null,
      });
    }
  }
  const table = markdownTable(
    ['target', 'workload', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'of which primary', 'req per CPU-s', 'target cores', 'machine busy', 'worker split %', 'errors', 'req/s ÷ 1', 'efficiency ÷ 1'],
    cells,
  );
  const fmtLoad = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' / ');
  notes.unshift(
    'Unpinned: the two NGINX backends (one process each), wrk (2 threads) and the target share both cores.',
    'CPU µs/req: utime+stime summed over the target\'s whole process tree (meshgate primary + workers, NGINX master + workers; HAProxy is one process) over the measured run ÷ requests; of which primary: the root process alone (meshgate\'s primary, NGINX\'s master) in a multi-process row; req per CPU-s = 10⁶ ÷ CPU µs/req. ' +
      'Target cores: req/s × CPU per request (cores the target kept busy). Machine busy: all CPUs, /proc/stat, over the measured run. ' +
      'Worker split: each meshgate worker\'s share of the requests (warm-up and run, from /api/v1/status).',
    '÷ 1: against the same proxy with one process (nginx-2w ÷ nginx-1w, meshgate-w2* ÷ meshgate-w1) in the same run; efficiency = req per CPU-s ratio (issue 16: ≥ 0.9×).',
    'meshgate-w2: SCHED_NONE, meshgate\'s default (both workers accept from the shared socket); meshgate-w2-rr: NODE_CLUSTER_SCHED_POLICY=rr, node:cluster\'s Linux default (the primary accepts and passes each connection to a worker).',
    `Load average (1 / 5 / 15 min) at the start of this bench ${fmtLoad(loadStart)}, at its end ${fmtLoad(loadEnd)}.`,
  );
  return { title, table: `${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}`, rows };
}
