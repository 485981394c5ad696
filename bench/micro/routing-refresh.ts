/**
 * Micro-benchmark of what a routing change costs the event loop (issue 14): event-loop delay
 * (monitorEventLoopDelay, 1 ms resolution; p99 and max in ms) while a membership write is applied and
 * while an outlier ejection is applied, with one ring-hash service of 10, 100 and 1,000 upstreams.
 *
 * Setup: one in-process meshgate peer (src/app/peer.ts, the real composition root) with a one-voter
 * Raft cluster, a ring-hash service `big` (hashOn a header, outlier detection ejecting on the first
 * 5xx, no panic mode) whose upstreams all point at one local backend answering 500, and a one-upstream
 * service `small`. Cases, each repeated WRITES times with a fresh histogram per sample window:
 * - `write big`: PUT a new upstream of `big` through the admin API (the ring of `big` changes);
 * - `write small`: PUT an upstream of `small` (the ring of `big` does not change: a peer that reuses
 *   unchanged balancers pays nothing for it);
 * - `eject`: one request to `big` with a new hash key; the 500 ejects the picked upstream.
 * A window runs from just before the request to SETTLE_MS after its answer (so a rebuild deferred to a
 * later event-loop turn is inside it). Figures: the worst window's p99, the max of all windows, and
 * the median CPU time of this process per window (robust to other load on a shared machine).
 *
 * Invariant: the peer, its Raft node, the backend and every timer are closed before run() returns.
 * Run standalone: `node dist/bench/micro/routing-refresh.js` after `npm run build`.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Peer } from '../../src/app/peer.js';

interface Row { name: string; value: number; unit: string }

const SIZES = [10, 100, 1000];
const WRITES = 8;
const EJECTIONS = 4;
const SETTLE_MS = 60;
const LEADER_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function configYaml(n: number, backend: string, raftPort: number, dataDir: string): string {
  const ups = Array.from({ length: n }, (_, i) => `      - { id: u${i}, url: ${backend} }`).join('\n');
  return `node:
  id: bench
  listen: 127.0.0.1:0
  admin: { listen: 127.0.0.1:0 }
  accessLog: false
  logLevel: error
cluster:
  listen: 127.0.0.1:${raftPort}
  dataDir: ${dataDir}
  secret: bench-secret-0123456789
  bootstrap:
    - { id: bench, address: 127.0.0.1:${raftPort} }
routes:
  - { match: { pathPrefix: /big }, service: big }
  - { match: { pathPrefix: / }, service: small }
services:
  big:
    balancer: ring-hash
    hashOn: header:x-key
    panicThreshold: 0
    outlierDetection: { consecutive5xx: 1, baseEjectionTime: 1h, maxEjectionPercent: 100 }
    upstreams:
${ups}
  small:
    upstreams:
      - { id: s0, url: ${backend} }
`;
}

/**
 * Runs `act` inside a fresh event-loop-delay histogram; returns the histogram's p99 and max (ms), and
 * this process's CPU time over the window (ms): on a shared machine wall-clock delay also measures the
 * other processes, CPU time does not.
 */
async function window(act: () => Promise<void>): Promise<{ p99: number; max: number; cpuMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu0 = process.cpuUsage();
  await act();
  await sleep(SETTLE_MS);
  const cpu = process.cpuUsage(cpu0);
  h.disable();
  return { p99: h.percentile(99) / 1e6, max: h.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function measure(n: number): Promise<Row[]> {
  const backend: Server = createServer((_req, res) => {
    res.statusCode = 500;
    res.end('no');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const addr = backend.address();
  const backendUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-refresh-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, configYaml(n, backendUrl, await freePort(), join(dir, 'data')));
  const peer = new Peer({ configFile, watch: false });
  try {
    const started = await peer.start();
    if (!started.ok) throw new Error(`peer did not start: ${JSON.stringify(started.issues)}`);
    const admin = `http://127.0.0.1:${peer.adminPort}`;
    const data = `http://127.0.0.1:${peer.dataPort}`;
    const deadline = Date.now() + LEADER_TIMEOUT_MS;
    while (peer.cluster?.status().role !== 'leader') {
      if (Date.now() > deadline) throw new Error('no Raft leader');
      await sleep(50);
    }
    const put = async (service: string, id: string) => {
      const r = await fetch(`${admin}/api/v1/services/${service}/upstreams/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: backendUrl }) });
      if (r.status !== 200) throw new Error(`PUT ${service}/${id}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    const cases: Array<[string, number, (i: number) => Promise<void>]> = [
      ['write big', WRITES, (i) => put('big', `new${i}`)],
      ['write small', WRITES, (i) => put('small', `s-new${i}`)],
      ['eject', EJECTIONS, async (i) => {
        const r = await fetch(`${data}/big`, { headers: { 'x-key': `key-${i}-${Math.random()}` } });
        await r.arrayBuffer();
      }],
    ];
    const rows: Row[] = [];
    for (const [label, count, act] of cases) {
      await act(-1); // warm-up (JIT, pools); not measured
      await sleep(SETTLE_MS);
      let p99 = 0;
      let max = 0;
      const cpu: number[] = [];
      for (let i = 0; i < count; i++) {
        const w = await window(() => act(i));
        p99 = Math.max(p99, w.p99);
        max = Math.max(max, w.max);
        cpu.push(w.cpuMs);
      }
      cpu.sort((a, b) => a - b);
      rows.push({ name: `${label}, ${n} ring-hash upstreams: event-loop delay p99 (worst window)`, value: round(p99), unit: 'ms' });
      rows.push({ name: `${label}, ${n} ring-hash upstreams: event-loop delay max`, value: round(max), unit: 'ms' });
      rows.push({ name: `${label}, ${n} ring-hash upstreams: CPU time per window (median)`, value: round(cpu[cpu.length >> 1]!), unit: 'ms' });
    }
    return rows;
  } finally {
    await peer.stop();
    await new Promise<void>((r) => backend.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of SIZES) rows.push(...(await measure(n)));
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await run()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
