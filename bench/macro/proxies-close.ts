// Macro bench "proxies-close": a new TCP connection per request (`Connection: close`, issue 12),
// 50 clients, measured with wrk — what a fleet of clients without keep-alive (scripts, health
// checkers, some SDKs and older load balancers) costs a proxy. Same targets as `proxies`, one at a
// time, same pinning; GET of the 64-byte body, so per-connection cost dominates.
// The proxies keep their upstream connections alive (pooled); only the client side reconnects.
// Invariant: every row comes from this run; a target that fails becomes an error row.
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { checkServes, cpuTicks, startBackend, startHttpProxy, startMeshgate, startUndiciMin, USER_HZ, type Target } from '../lib/launch.js';
import { cpuPlan, pin } from '../lib/pin.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';
import { haveWrk, runWrk } from '../lib/wrk.js';

const CONNECTIONS = 50;
const PATH = '/64';

type Measured = LoadResult & { cpuUsPerReq?: number; rounds?: number[] };

const TARGETS: Array<{ name: string; start: (ctx: BenchContext, backend: Target) => Promise<Target> }> = [
  { name: 'direct', start: async (_ctx, backend) => ({ ...backend, name: 'direct', stop: async () => {} }) },
  { name: 'undici-min', start: (ctx, b) => startUndiciMin(ctx, b.origin) },
  { name: 'http-proxy', start: (ctx, b) => startHttpProxy(ctx, b.origin) },
  { name: 'meshgate', start: (ctx, b) => startMeshgate(ctx, 'meshgate-close', { accessLog: false, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }) },
  { name: 'meshgate+log', start: (ctx, b) => startMeshgate(ctx, 'meshgate-close+log', { accessLog: true, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }) },
];
// BENCH_BASELINE_MAIN=<another build's dist/src/main.js>: the same meshgate row for that build, in the
// same run (before/after figures of a change without two runs' noise between them).
const baseline = process.env.BENCH_BASELINE_MAIN;
if (baseline) {
  TARGETS.push({ name: 'meshgate-baseline', start: (ctx, b) => startMeshgate({ ...ctx, meshgateMain: baseline }, 'meshgate-baseline', { accessLog: false, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }) });
}

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const title = `Proxy throughput, Connection: close — ${CONNECTIONS} wrk connections, a new TCP connection per request, ${ctx.durationSec} s after ${ctx.warmupSec} s warm-up, GET 64 B${ctx.rounds > 1 ? `, median of ${ctx.rounds} interleaved rounds` : ''}`;
  if (!haveWrk()) return { title, table: '(wrk not installed: `apt-get install wrk`)' };
  if (!TARGETS.some((t) => ctx.selected(t.name))) return { title, table: `(no target selected; targets: ${TARGETS.map((t) => t.name).join(', ')})` };
  const backend = await startBackend(ctx, 'b1');
  const started = new Map<string, Target>();
  const failed = new Map<string, Error>();
  const samples = new Map<string, Measured[]>();
  try {
    for (const t of TARGETS) {
      if (!ctx.selected(t.name)) continue;
      try {
        ctx.log(`proxies-close: starting ${t.name}`);
        const target = await t.start(ctx, backend);
        started.set(t.name, target);
        await checkServes(target, PATH, 64);
      } catch (err) {
        await started.get(t.name)?.stop();
        started.delete(t.name);
        failed.set(t.name, err as Error);
      }
    }
    const plan = cpuPlan();
    for (let round = 1; round <= ctx.rounds; round++) {
      for (const [name, target] of started) {
        ctx.log(`proxies-close: round ${round}/${ctx.rounds} ${name}`);
        try {
          if (plan) {
            pin(backend.pid, name === 'direct' ? plan.target : plan.harness);
            if (name !== 'direct') pin(target.pid, plan.target);
          }
          const url = `${target.origin}${PATH}`;
          const common = { url, connections: CONNECTIONS, headers: ['Connection: close'], cpu: plan?.harness };
          await runWrk(ctx, { ...common, seconds: ctx.warmupSec });
          const before = target.pid === undefined ? undefined : cpuTicks(target.pid);
          const r: Measured = await runWrk(ctx, { ...common, seconds: ctx.durationSec });
          const after = target.pid === undefined ? undefined : cpuTicks(target.pid);
          if (before !== undefined && after !== undefined && r.requests > 0) r.cpuUsPerReq = ((after - before) * (1e6 / USER_HZ)) / r.requests;
          samples.set(name, [...(samples.get(name) ?? []), r]);
        } catch (err) {
          failed.set(name, err as Error);
        }
      }
    }
  } finally {
    await Promise.all([...started.values()].map((t) => t.stop()));
    await backend.stop();
  }

  const median = (name: string): Measured | undefined => {
    const runs = samples.get(name);
    if (!runs || runs.length === 0) return undefined;
    const sorted = [...runs].sort((a, b) => a.rps - b.rps);
    return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, rounds: runs.map((r) => Math.round(r.rps)) };
  };
  const rows: ResultRow[] = [];
  const cells: Array<Array<string | number>> = [];
  for (const t of TARGETS) {
    if (!ctx.selected(t.name)) continue;
    const r = median(t.name);
    if (!r) {
      const msg = failed.get(t.name)?.message.split('\n')[0]?.slice(0, 100) ?? 'not run';
      cells.push([t.name, `error: ${msg}`, '—', '—', '—', '—', '—', '—']);
      rows.push({ target: t.name, error: msg });
      continue;
    }
    cells.push([
      t.name,
      fmtRps(r.rps),
      fmtMs(r.p50Ms),
      fmtMs(r.p99Ms),
      r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0),
      r.errors + r.non2xx === 0 ? '0' : `${r.errors} / ${r.non2xx} non-2xx`,
      fmtRatio(r.rps, median('http-proxy')?.rps),
      fmtRatio(r.rps, median('undici-min')?.rps),
    ]);
    rows.push({ target: t.name, rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, cpuUsPerReq: r.cpuUsPerReq ?? null, errors: r.errors, non2xx: r.non2xx, roundsRps: r.rounds?.join(' ') ?? null });
  }
  const table = markdownTable(['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', '÷ http-proxy', '÷ undici-min'], cells);
  const notes = [
    'wrk -t1 -c50 -H "Connection: close": every request opens and closes a TCP connection to the target; the proxies keep their upstream connections pooled.',
    'CPU µs/req: user+system CPU of the target process over the measured run, per request.',
  ];
  return { title, table: `${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}`, rows };
}
