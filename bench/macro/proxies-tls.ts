// Macro bench "proxies-tls" (issue 15): TLS termination and HTTP/2 to clients, one NGINX backend over
// plain HTTP/1.1 behind every target. Targets: NGINX terminating TLS (one process, HTTP/2 by ALPN),
// the Node floor (node:https + one undici Pool; node:http2 + one undici Pool for the h2 rows), and
// meshgate with node.tls (HTTP/2 on). The target runs alone on one core, backend and load generator on
// the other. Workloads: wrk -t1 -c50 HTTPS keep-alive; wrk -c50 with `Connection: close` (a TLS
// handshake per request, so req/s = handshakes/s; session resumption is not used by wrk); h2load
// `--h1 -c50` (HTTP/1.1 over TLS) and h2load `-c5 -m10` (HTTP/2, 10 streams on each of 5 connections:
// the same 50 requests in flight). Medians of BENCH_WRK_ROUNDS interleaved rounds; CPU µs/req from the
// target's utime+stime; ratios to the Node floor of the same protocol, and meshgate's h2 row to its
// own h1-over-TLS row, from the same run. A self-signed P-256 certificate is made with `openssl`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchContext, LoadResult, MacroResult, ResultRow } from '../lib/types.js';
import { checkServes, cpuTicks, startMeshgate, startTlsFloor, USER_HZ, type Target } from '../lib/launch.js';
import { nginxBinary, startNginxBackend, startNginxTlsProxy } from '../lib/native-servers.js';
import { haveH2load, runH2load } from '../lib/h2load.js';
import { cpuPlan, pin } from '../lib/pin.js';
import { fmtMs, fmtRatio, fmtRps, markdownTable } from '../lib/table.js';
import { haveWrk, runWrk } from '../lib/wrk.js';

interface Workload {
  id: string;
  label: string;
  /** Which Node floor this protocol is compared with. */
  floor: 'node-https' | 'node-h2';
  run(ctx: BenchContext, url: string, seconds: number, cpu: number | undefined): Promise<LoadResult>;
}

const WORKLOADS: Workload[] = [
  { id: 'keep-alive', label: 'HTTPS keep-alive (wrk -c50)', floor: 'node-https', run: (ctx, url, seconds, cpu) => runWrk(ctx, { url, connections: 50, seconds, headers: [], cpu }) },
  { id: 'close', label: 'HTTPS Connection: close (wrk -c50)', floor: 'node-https', run: (ctx, url, seconds, cpu) => runWrk(ctx, { url, connections: 50, seconds, headers: ['Connection: close'], cpu }) },
  { id: 'h1', label: 'HTTP/1.1 over TLS (h2load --h1 -c50)', floor: 'node-https', run: (ctx, url, seconds, cpu) => runH2load(ctx, { url, clients: 50, streams: 1, seconds, warmupSec: 0, h1: true, cpu }) },
  { id: 'h2', label: 'HTTP/2 (h2load -c5 -m10)', floor: 'node-h2', run: (ctx, url, seconds, cpu) => runH2load(ctx, { url, clients: 5, streams: 10, seconds, warmupSec: 0, cpu }) },
];

type Measured = LoadResult & { cpuUsPerReq?: number; round?: number };

function positiveEnv(name: string, fallback: number): number {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
}

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const seconds = positiveEnv('BENCH_WRK_DURATION', 3);
  const rounds = Math.round(positiveEnv('BENCH_WRK_ROUNDS', 3));
  const title = `TLS and HTTP/2 to clients — one NGINX backend, ${seconds} s runs after ${ctx.warmupSec} s warm-up, median of ${rounds} interleaved rounds`;
  if (!haveWrk() || !haveH2load() || !nginxBinary()) return { title, table: '(needs wrk, h2load (nghttp2-client) and nginx: scripts/install-bench-deps.sh)' };
  const cert = join(ctx.tmpDir, 'tls-bench.crt');
  const key = join(ctx.tmpDir, 'tls-bench.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const plan = cpuPlan();
  const started = new Map<string, Target>();
  const samples = new Map<string, Measured[]>();
  const failed = new Map<string, string>();
  let backend: Target | undefined;
  try {
    backend = await startNginxBackend(ctx, 'b1', plan?.harness);
    const upstream = backend.origin;
    const starters: Array<[string, () => Promise<Target>]> = [
      ['nginx-tls', () => startNginxTlsProxy(ctx, upstream, { cert, key }, plan?.target)],
      ['node-https', () => startTlsFloor(ctx, 'node-https', { upstream, cert, key, mode: 'https' })],
      ['node-h2', () => startTlsFloor(ctx, 'node-h2', { upstream, cert, key, mode: 'h2' })],
      ['meshgate-tls', () => startMeshgate(ctx, 'meshgate-tls', { accessLog: false, tls: { cert, key }, service: { balancer: 'round-robin', upstreams: [{ id: 'b1', url: upstream }] } })],
    ];
    for (const [name, start] of starters) {
      if (!ctx.selected(name)) continue;
      try {
        const t = await start();
        started.set(name, t);
        if (plan) pin(t.pid, plan.target);
        if (name !== 'node-h2') await checkServes(t, '/64', 64); // node-h2 speaks HTTP/2 only
      } catch (err) {
        failed.set(name, (err as Error).message);
      }
    }
    const applies = (name: string, w: Workload) => name !== (w.floor === 'node-h2' ? 'node-https' : 'node-h2');
    // Rounds outside, workloads inside: meshgate's HTTP/2 run and its HTTP/1.1-over-TLS run of a round
    // are minutes apart at most, so their ratio is paired in time (this VM's speed drifts by 2x within
    // an hour; with the workloads outside, the two medians came from different parts of the run).
    for (let round = 1; round <= rounds; round++) {
      for (const w of WORKLOADS) {
        for (const [name, t] of started) {
          if (!applies(name, w)) continue;
          ctx.log(`proxies-tls: ${w.label} round ${round}/${rounds} ${name}`);
          try {
            const url = `${t.origin}/64`;
            if (ctx.warmupSec > 0) await w.run(ctx, url, ctx.warmupSec, plan?.harness);
            const before = cpuTicks(t.pid!);
            const r: Measured = await w.run(ctx, url, seconds, plan?.harness);
            const after = cpuTicks(t.pid!);
            if (before !== undefined && after !== undefined && r.requests > 0) r.cpuUsPerReq = ((after - before) * (1e6 / USER_HZ)) / r.requests;
            r.round = round;
            samples.set(`${name}\0${w.id}`, [...(samples.get(`${name}\0${w.id}`) ?? []), r]);
          } catch (err) {
            failed.set(name, (err as Error).message);
          }
        }
      }
    }
  } finally {
    await Promise.all([...started.values()].map((t) => t.stop()));
    await backend?.stop();
  }
  const median = (name: string, w: Workload): Measured | undefined => {
    const runs = [...(samples.get(`${name}\0${w.id}`) ?? [])].sort((a, b) => a.rps - b.rps);
    return runs[Math.floor((runs.length - 1) / 2)];
  };
  const h1Mesh = median('meshgate-tls', WORKLOADS.find((w) => w.id === 'h1')!)?.rps;
  /** Median over rounds of meshgate's h2 req/s ÷ its h2load --h1 req/s in the same round, with the range. */
  const pairedH2 = (): string => {
    const h1 = new Map((samples.get('meshgate-tls\0h1') ?? []).map((r) => [r.round, r.rps]));
    const ratios = (samples.get('meshgate-tls\0h2') ?? []).flatMap((r) => (h1.get(r.round) ? [r.rps / h1.get(r.round)!] : [])).sort((a, b) => a - b);
    if (ratios.length === 0) return '—';
    return `${ratios[Math.floor((ratios.length - 1) / 2)]!.toFixed(2)}× (${ratios[0]!.toFixed(2)}–${ratios[ratios.length - 1]!.toFixed(2)})`;
  };
  const cells: Array<Array<string | number>> = [];
  const rows: ResultRow[] = [];
  for (const w of WORKLOADS) {
    const floor = median(w.floor, w)?.rps;
    for (const name of started.keys()) {
      if (name === (w.floor === 'node-h2' ? 'node-https' : 'node-h2')) continue;
      const r = median(name, w);
      if (!r) {
        cells.push([name, w.label, `error: ${(failed.get(name) ?? 'not run').split('\n')[0]!.slice(0, 90)}`, '—', '—', '—', '—', '—', '—', '—']);
        continue;
      }
      const meshH2 = name === 'meshgate-tls' && w.id === 'h2';
      const vsOwnH1 = meshH2 ? fmtRatio(r.rps, h1Mesh) : '—';
      const paired = meshH2 ? pairedH2() : '—';
      cells.push([name, w.label, fmtRps(r.rps), fmtMs(r.p50Ms), fmtMs(r.p99Ms), r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(0), r.errors + r.non2xx === 0 ? '0' : `${r.errors} / ${r.non2xx}`, fmtRatio(r.rps, floor), vsOwnH1, paired]);
      rows.push({ target: name, workload: w.id, rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, cpuUsPerReq: r.cpuUsPerReq ?? null, errors: r.errors, non2xx: r.non2xx, ...(meshH2 ? { pairedH2VsOwnH1: paired } : {}) });
    }
  }
  for (const [name, msg] of failed) if (!started.has(name)) cells.push([name, 'start', `error: ${msg.split('\n')[0]!.slice(0, 90)}`, '—', '—', '—', '—', '—', '—', '—']);
  const table = markdownTable(['target', 'workload', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', '÷ Node floor', 'h2 ÷ own h1-TLS', 'paired h2 ÷ h1-TLS (range)'], cells);
  const notes = [
    plan ? `Pinned: each target alone on CPU ${plan.target}; the backend and the load generator on CPU ${plan.harness}.` : 'Unpinned.',
    'h2 ÷ own h1-TLS: ratio of the two medians; paired: the median over rounds of the h2 run ÷ the h2load --h1 run of the same round (and the range), which cancels the VM\'s drift.',
    'Node floor: node:https (HTTP/1.1 rows) or node:http2 (HTTP/2 row) + one undici Pool, nothing else (bench/lib/tls-floor-target.ts). NGINX: one process, session cache on, upstream keep-alive.',
  ];
  return { title, table: `${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}`, rows };
}
