// Macro bench "websocket" (issue 12): the Upgrade path against the alternatives, in the same run.
//   direct      load generator → the ws echo backend (the ceiling of this machine)
//   http-proxy  node-http-proxy `proxy.ws()` (what meshgate used before issue 12)
//   meshgate    its own Upgrade path (src/proxy/upgrade*.ts), access log off
// Figures per target (bench/lib/ws-load.ts): upgrades per second (open + one echo + close, 16 at a
// time) and the target process's CPU time per upgrade over that phase (a cost figure that barely
// moves when other work shares the machine; Linux only), 64-byte echo round trip p50/p99 over one
// connection, and 1 MiB-message echo throughput.
// With BENCH_ROUNDS=N the targets are interleaved N times and the median round (by upgrades/s) is
// shown. --quick runs smaller phases.
// Invariant: every child goes through ctx.procs; a target that fails becomes an error row.
import { fileURLToPath } from 'node:url';
import { cpuTicks, startMeshgate, USER_HZ, type Target } from '../lib/launch.js';
import { quickMode } from '../lib/samples.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';
import type { BenchContext, MacroResult, ResultRow } from '../lib/types.js';
import type { WsLoadArgs, WsLoadResult } from '../lib/ws-load.js';

const READY_TIMEOUT_MS = 10_000;
const script = (name: string): string => fileURLToPath(new URL(`../lib/${name}.js`, import.meta.url));

async function startChild(ctx: BenchContext, name: string, file: string, args: unknown): Promise<Target> {
  const h = ctx.procs.spawnNode(name, script(file), args);
  const { port } = await h.firstJsonLine<{ port: number }>(READY_TIMEOUT_MS);
  return { name, origin: `http://127.0.0.1:${port}`, pid: h.child.pid, stop: () => h.stop(), tail: () => h.tail() };
}

const TARGETS: Array<{ name: string; start: (ctx: BenchContext, backend: Target) => Promise<Target> }> = [
  { name: 'direct', start: async (_ctx, b) => ({ ...b, name: 'direct', stop: async () => {} }) },
  { name: 'http-proxy', start: (ctx, b) => startChild(ctx, 'http-proxy (ws)', 'http-proxy-ws-target', { upstream: b.origin }) },
  { name: 'meshgate', start: (ctx, b) => startMeshgate(ctx, 'meshgate (ws)', { accessLog: false, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }) },
];

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const quick = quickMode();
  const load: Omit<WsLoadArgs, 'url'> = quick ? { handshakes: 300, concurrency: 16, echoes: 1000, bulkMiB: 16 } : { handshakes: 2000, concurrency: 16, echoes: 5000, bulkMiB: 64 };
  const title = `WebSocket (Upgrade path) — ${load.handshakes} upgrades ${load.concurrency} at a time, ${load.echoes} sequential 64 B echoes, ${load.bulkMiB} × 1 MiB echoed 8 in flight${ctx.rounds > 1 ? `, median of ${ctx.rounds} interleaved rounds` : ''}`;
  const chosen = TARGETS.filter((t) => ctx.selected(t.name));
  if (chosen.length === 0) return { title, table: `(no target selected; targets: ${TARGETS.map((t) => t.name).join(', ')})` };
  const backend = await startChild(ctx, 'ws echo backend', 'ws-echo-target', {});
  type Measured = WsLoadResult & { cpuUsPerUpgrade?: number };
  const results = new Map<string, Measured[]>();
  const errors = new Map<string, string>();
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const t of chosen) {
        if (errors.has(t.name)) continue;
        let target: Target | undefined;
        try {
          target = await t.start(ctx, backend);
          ctx.log(`websocket: ${t.name} round ${round + 1}/${ctx.rounds}`);
          const url = `${target.origin.replace('http', 'ws')}/bench`;
          const phase = async (args: WsLoadArgs): Promise<WsLoadResult> => {
            const h = ctx.procs.spawnNode(`ws-load ${t.name}`, script('ws-load'), args);
            return h.result<WsLoadResult>().catch((err: Error) => {
              throw new Error(`${err.message}; ${h.tail()}`);
            });
          };
          // The upgrade phase alone, so the target's CPU time over it is per upgrade.
          const before = target.pid === undefined ? undefined : cpuTicks(target.pid);
          const up = await phase({ ...load, url, echoes: 0, bulkMiB: 0 });
          const after = target.pid === undefined ? undefined : cpuTicks(target.pid);
          const rest = await phase({ ...load, url, handshakes: 0 });
          const cpuUsPerUpgrade = before === undefined || after === undefined ? undefined : ((after - before) * (1e6 / USER_HZ)) / load.handshakes;
          results.set(t.name, [...(results.get(t.name) ?? []), { ...up, ...rest, cpuUsPerUpgrade }]);
        } catch (err) {
          errors.set(t.name, (err as Error).message.slice(0, 200));
        } finally {
          await target?.stop();
        }
      }
    }
  } finally {
    await backend.stop();
  }
  const median = (name: string): Measured | undefined => {
    const rs = [...(results.get(name) ?? [])].sort((a, b) => (a.handshakesPerSec ?? 0) - (b.handshakesPerSec ?? 0));
    return rs[Math.floor((rs.length - 1) / 2)];
  };
  const hp = median('http-proxy');
  const rows: ResultRow[] = [];
  const num = (v: number | undefined, f: (x: number) => string): string => (v === undefined ? 'n/a' : f(v));
  const cells = chosen.map((t) => {
    const r = median(t.name);
    if (!r) return [t.name, `error: ${errors.get(t.name) ?? 'no result'}`, '', '', '', '', '', ''];
    const all = results.get(t.name) ?? [];
    rows.push({ target: t.name, ...r, rounds: all.map((x) => Math.round(x.handshakesPerSec ?? 0)).join(','), cpuRounds: all.map((x) => Math.round(x.cpuUsPerUpgrade ?? 0)).join(',') });
    const cpu = t.name === 'direct' ? '—' : num(r.cpuUsPerUpgrade, (x) => fmtRps(x));
    return [t.name, num(r.handshakesPerSec, fmtRps), cpu, num(r.echoP50Ms, fmtMs), num(r.echoP99Ms, fmtMs), num(r.bulkMiBPerSec, fmtRps), fmtRatio(r.handshakesPerSec, hp?.handshakesPerSec), fmtRatio(hp?.cpuUsPerUpgrade, t.name === 'direct' ? undefined : r.cpuUsPerUpgrade)];
  });
  const table = markdownTable(['target', 'upgrades/s', 'CPU µs/upgrade', 'echo p50 ms', 'echo p99 ms', 'MiB/s', 'upgrades/s ÷ http-proxy', 'http-proxy CPU ÷ this'], cells);
  return { title, table, rows };
}
