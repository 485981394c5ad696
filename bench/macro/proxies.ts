// Macro bench "proxies": the README throughput table (DESIGN.md §1 `npm run bench`, style.md
// "benchmarks compare against alternatives in the same run"). One backend process, one load
// generator, the same settings, one target at a time so targets never compete for the 2 cores:
//   direct        load generator → backend (the ceiling of this machine)
//   undici-min    a 50-line node:http + undici proxy (the floor cost of any Node proxy)
//   http-proxy    node-http-proxy with a keep-alive agent (what Node projects usually deploy)
//   meshgate      round-robin over the backend, access log off (metrics are always on)
//   meshgate+log  the same with the access log on (its cost; the lead's target for logs+metrics ≤ 15 %)
// for a 64-byte body (per-request overhead) and a 1 MiB body (streaming throughput).
// With BENCH_ROUNDS=N every (target, body) pair is measured N times, targets interleaved, and the
// run with the median req/s is reported (all rounds' req/s go to the JSON).
// Invariant: every row comes from this run; a target that fails to start or serve becomes an
// error row, the others still run.
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { checkServes, runLoad, startBackend, startHttpProxy, startMeshgate, startUndiciMin, type Target } from '../lib/launch.js';
import { cpuPlan, pin } from '../lib/pin.js';
import { fmtChange, fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';

interface Size {
  label: string;
  path: string;
  bytes: number;
}

/** Load figures plus the target process's CPU time per request (see runLoad). */
type Measured = LoadResult & { cpuUsPerReq?: number; rounds?: number[] };

const SIZES: Size[] = [
  { label: '64 B', path: '/64', bytes: 64 },
  { label: '1 MiB', path: '/1m', bytes: 1024 * 1024 },
];

const TARGETS: Array<{ name: string; start: (ctx: BenchContext, backend: Target) => Promise<Target> }> = [
  { name: 'direct', start: async (_ctx, backend) => ({ ...backend, name: 'direct', stop: async () => {} }) },
  { name: 'undici-min', start: (ctx, b) => startUndiciMin(ctx, b.origin) },
  { name: 'http-proxy', start: (ctx, b) => startHttpProxy(ctx, b.origin) },
  {
    name: 'meshgate',
    start: (ctx, b) => startMeshgate(ctx, 'meshgate', { accessLog: false, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }),
  },
  {
    name: 'meshgate+log',
    start: (ctx, b) => startMeshgate(ctx, 'meshgate+log', { accessLog: true, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: b.origin }] } }),
  },
];

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const title = `Proxy throughput — ${ctx.connections} keep-alive connections, ${ctx.durationSec} s after ${ctx.warmupSec} s warm-up, GET${ctx.rounds > 1 ? `, median of ${ctx.rounds} interleaved rounds` : ''}`;
  if (!TARGETS.some((t) => ctx.selected(t.name))) return { title, table: `(no target selected; targets: ${TARGETS.map((t) => t.name).join(', ')})` };
  const backend = await startBackend(ctx, 'b1');
  const results = new Map<string, Map<string, Measured | Error>>();
  const started = new Map<string, Target>();
  try {
    // All targets are started up front (idle, they cost nothing) so rounds can interleave them:
    // with BENCH_ROUNDS > 1 a burst of outside load hits every target alike, not just one.
    for (const t of TARGETS) {
      if (!ctx.selected(t.name)) continue;
      const perSize = new Map<string, Measured | Error>();
      results.set(t.name, perSize);
      try {
        ctx.log(`proxies: starting ${t.name}`);
        const target = await t.start(ctx, backend);
        started.set(t.name, target);
        for (const s of SIZES) await checkServes(target, s.path, s.bytes);
      } catch (err) {
        await started.get(t.name)?.stop();
        started.delete(t.name);
        for (const s of SIZES) perSize.set(s.label, err as Error);
        ctx.log(`proxies: ${t.name} failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const plan = cpuPlan();
    const samples = new Map<string, Measured[]>();
    for (let round = 1; round <= ctx.rounds; round++) {
      for (const s of SIZES) {
        for (const [name, target] of started) {
          ctx.log(`proxies: round ${round}/${ctx.rounds} ${name} ${s.label} × ${ctx.connections} connections, ${ctx.durationSec} s`);
          const key = `${name}\0${s.label}`;
          try {
            if (plan) {
              // The measured process gets the target core; the backend joins the load generator
              // unless it is itself the one measured (`direct`).
              pin(backend.pid, name === 'direct' ? plan.target : plan.harness);
              if (name !== 'direct') pin(target.pid, plan.target);
            }
            const r = await runLoad(ctx, { origin: target.origin, path: s.path }, target.pid, plan?.harness);
            samples.set(key, [...(samples.get(key) ?? []), r]);
          } catch (err) {
            results.get(name)!.set(s.label, err as Error);
          }
        }
      }
    }
    for (const [name, perSize] of results) {
      for (const s of SIZES) {
        const runs = samples.get(`${name}\0${s.label}`);
        if (runs && runs.length > 0) perSize.set(s.label, medianByRps(runs));
      }
    }
  } finally {
    await Promise.all([...started.values()].map((t) => t.stop()));
    await backend.stop();
  }

  const ok = (name: string, size: string): Measured | undefined => {
    const r = results.get(name)?.get(size);
    return r instanceof Error ? undefined : r;
  };
  const rows: ResultRow[] = [];
  const cells: Array<Array<string | number>> = [];
  for (const s of SIZES) {
    for (const [name, perSize] of results) {
      const r = perSize.get(s.label);
      if (!r || r instanceof Error) {
        const msg = r ? r.message.split('\n')[0]!.slice(0, 100) : 'not run';
        cells.push([name, s.label, `error: ${msg}`, '—', '—', '—', '—', '—', '—']);
        rows.push({ target: name, body: s.label, error: r ? r.message : 'not run' });
        continue;
      }
      cells.push([
        name,
        s.label,
        fmtRps(r.rps),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0),
        r.errors + r.non2xx === 0 ? '0' : `${r.errors} / ${r.non2xx} non-2xx`,
        fmtRatio(r.rps, ok('http-proxy', s.label)?.rps),
        fmtRatio(r.rps, ok('undici-min', s.label)?.rps),
      ]);
      rows.push({ target: name, body: s.label, ...flatten(r) });
    }
  }
  const plan = cpuPlan();
  const notes: string[] = [
    'CPU µs/req: user+system CPU time of the target process (the backend for `direct`) per completed request, warm-up included; less sensitive than req/s to other work on the machine, though not immune (a starved event loop batches less).',
    plan
      ? `CPU pinning (taskset): the measured process alone on CPU ${plan.target}; load generator and backend share CPU ${plan.harness} (for \`direct\` the backend is the measured process). BENCH_PIN=0 runs unpinned.`
      : 'Unpinned (BENCH_PIN=0, or no taskset): load generator, backend and target share every core.',
  ];
  for (const s of SIZES) {
    const off = ok('meshgate', s.label);
    const on = ok('meshgate+log', s.label);
    if (off && on) notes.push(`access log cost (${s.label}): req/s ${fmtChange(off.rps, on.rps)}, p99 ${fmtMs(off.p99Ms)} → ${fmtMs(on.p99Ms)} ms`);
    const d = ok('direct', s.label);
    const m = ok('meshgate', s.label);
    if (d && m) notes.push(`meshgate vs direct (${s.label}): req/s ${fmtChange(d.rps, m.rps)}`);
  }
  const table = markdownTable(['target', 'body', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', '÷ http-proxy', '÷ undici-min'], cells);
  return {
    title,
    table: `${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}`,
    rows,
  };
}

/** The run with the median req/s (the lower middle one for an even count), kept whole. */
function medianByRps(runs: Measured[]): Measured {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...m, rounds: runs.map((r) => Math.round(r.rps)) };
}

function flatten(r: Measured): ResultRow {
  return {
    cpuUsPerReq: r.cpuUsPerReq ?? null,
    roundsRps: r.rounds ? r.rounds.join(' ') : null,
    rps: r.rps,
    requests: r.requests,
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    meanMs: r.meanMs,
    errors: r.errors,
    non2xx: r.non2xx,
    bytesPerSec: r.bytesPerSec,
    errorSamples: r.errorSamples.join('; ') || null,
  };
}
