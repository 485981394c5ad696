// Macro bench "ring-vs-rr" (issue 3): what consistent hashing costs on the data path. The same
// meshgate binary, the same 3 backend processes, the same load (64-byte GETs, each carrying an
// x-user-id drawn from 10,000 ids), once with `balancer: round-robin` and once with
// `balancer: ring-hash, hashOn: header:x-user-id`, one after the other in this run.
// The share column shows how requests spread over the 3 upstreams (from the backends'
// x-backend-id response header): round-robin should be ⅓ each, ring-hash close to it.
// Invariant: both rows use identical load settings and backends; a failed run is an error row.
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { checkServes, runLoad, startBackend, startMeshgate, type MeshgateService, type Target } from '../lib/launch.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';

const BACKENDS = ['b1', 'b2', 'b3'];
/** Enough distinct keys that each of the 3 upstreams owns thousands of them. */
const USER_IDS = 10_000;

const CASES = ['round-robin', 'ring-hash'];

type Measured = LoadResult & { cpuUsPerReq?: number };

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const title = `Balancer cost — meshgate, 3 backends, 64 B GET with x-user-id (${USER_IDS} ids), ${ctx.connections} connections, ${ctx.durationSec} s`;
  if (!CASES.some((c) => ctx.selected(c))) return { title, table: `(no case selected; cases: ${CASES.join(', ')})` };
  const backends: Target[] = [];
  const results = new Map<string, Measured | Error>();
  try {
    for (const id of BACKENDS) backends.push(await startBackend(ctx, id));
    const upstreams = backends.map((b, i) => ({ id: BACKENDS[i]!, url: b.origin }));
    const cases: Array<{ name: string; service: MeshgateService }> = [
      { name: 'round-robin', service: { balancer: 'round-robin', upstreams } },
      { name: 'ring-hash', service: { balancer: 'ring-hash', hashOn: 'header:x-user-id', upstreams } },
    ];
    const started = new Map<string, Target>();
    try {
      for (const c of cases) {
        if (!ctx.selected(c.name)) continue;
        try {
          ctx.log(`ring-vs-rr: starting meshgate ${c.name}`);
          const target = await startMeshgate(ctx, `meshgate ${c.name}`, { accessLog: false, service: c.service });
          started.set(c.name, target);
          await checkServes(target, '/64', 64);
        } catch (err) {
          await started.get(c.name)?.stop();
          started.delete(c.name);
          results.set(c.name, err as Error);
          ctx.log(`ring-vs-rr: ${c.name} failed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      // Interleaved rounds, median by req/s (see proxies.ts): both balancers see the same noise.
      const samples = new Map<string, Measured[]>();
      for (let round = 1; round <= ctx.rounds; round++) {
        for (const [name, target] of started) {
          ctx.log(`ring-vs-rr: round ${round}/${ctx.rounds} ${name}`);
          try {
            const r = await runLoad(ctx, { origin: target.origin, path: '/64', headerName: 'x-user-id', headerValues: USER_IDS, countHeader: 'x-backend-id' }, target.pid);
            samples.set(name, [...(samples.get(name) ?? []), r]);
          } catch (err) {
            results.set(name, err as Error);
          }
        }
      }
      for (const [name, runs] of samples) {
        if (results.get(name) instanceof Error) continue;
        results.set(name, [...runs].sort((a, b) => a.rps - b.rps)[Math.floor((runs.length - 1) / 2)]!);
      }
    } finally {
      await Promise.all([...started.values()].map((t) => t.stop()));
    }
  } finally {
    await Promise.all(backends.map((b) => b.stop()));
  }

  const rr = results.get('round-robin');
  const rrRps = rr instanceof Error ? undefined : rr?.rps;
  const rows: ResultRow[] = [];
  const cells: Array<Array<string | number>> = [];
  for (const [name, r] of results) {
    if (r instanceof Error) {
      cells.push([name, `error: ${r.message.split('\n')[0]!.slice(0, 100)}`, '—', '—', '—', '—', '—', '—']);
      rows.push({ balancer: name, error: r.message });
      continue;
    }
    const total = Object.values(r.headerCounts ?? {}).reduce((a, b) => a + b, 0);
    const share = BACKENDS.map((id) => (total ? `${(((r.headerCounts?.[id] ?? 0) / total) * 100).toFixed(0)}%` : '—')).join(' / ');
    cells.push([name, fmtRps(r.rps), fmtMs(r.p50Ms), fmtMs(r.p99Ms), r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0), String(r.errors + r.non2xx), share, fmtRatio(r.rps, rrRps)]);
    rows.push({ balancer: name, rps: r.rps, cpuUsPerReq: r.cpuUsPerReq ?? null, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors, non2xx: r.non2xx, share: JSON.stringify(r.headerCounts ?? {}) });
  }
  return {
    title,
    table: markdownTable(['balancer', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', `share ${BACKENDS.join('/')}`, '÷ round-robin'], cells),
    rows,
  };
}
