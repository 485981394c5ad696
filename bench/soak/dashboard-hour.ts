// Dashboard soak (issue 17 "bad input": a dashboard left open for an hour, memory flat in the page and
// in the peer). Not part of `npm test`: `npm run build && node dist/bench/soak/dashboard-hour.js`,
// MESHGATE_SOAK_MINUTES (default 60) sets the length.
//
// One real peer (dist/src/main.js, its own process) with two services over four node:http backends in
// this process; one backend flaps its /healthz every FLAP_MS so the page sees health changes, SSE
// events and re-renders all along; a steady LOAD_RPS of GETs (this process, keep-alive) moves the
// counters and sparklines. Headless Chromium (playwright-core) keeps /dashboard open. Once a minute:
// after a forced GC (CDP HeapProfiler.collectGarbage) the page's JSHeapUsedSize and DOM node count
// (CDP Memory.getDOMCounters), and, after a forced GC in the peer too (see `inspector`), the peer's
// VmRSS (/proc) and heap used (its /metrics).
// The verdict looks only at the last 30 minutes (or the second half of a shorter run): the first
// minutes fill fixed-size buffers (5 min of sparkline points, 30 events) and V8's code caches.
import { createServer, request, Agent, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { ProcessGroup, freePort, waitForHttp200 } from '../lib/procs.js';

const MINUTES = Number(process.env.MESHGATE_SOAK_MINUTES ?? 60);
const SAMPLE_MS = Number(process.env.MESHGATE_SOAK_SAMPLE_MS ?? 60_000);
const FLAP_MS = 20_000;
const LOAD_RPS = 150;
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Verdict thresholds (stated in the output). */
const PAGE_HEAP_MIB_PER_HOUR = 1;
const PEER_HEAP_MIB_PER_HOUR = 2;
/** "Bounded" DOM: the node count never exceeds its minimum over the window by more than this. */
const DOM_NODES_SPREAD = 200;
const MIB = 1024 * 1024;

const root = fileURLToPath(new URL('../../../', import.meta.url));
const meshgateMain = join(root, 'dist/src/main.js');

interface Sample {
  minute: number;
  pageHeapMiB: number;
  /** Elements in the document (what the page shows). */
  domNodes: number;
  /** Blink's live-node counter (CDP Memory.getDOMCounters): also counts detached nodes not yet swept. */
  blinkNodes: number;
  jsEventListeners: number;
  peerRssMiB: number;
  peerHeapMiB: number;
  loadRps: number;
}

/** A backend answering /healthz (200 or the flapped status) and anything else with a small body. */
function backend(id: string): Promise<{ url: string; server: Server; setHealth(s: number): void }> {
  let health = 200;
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      res.writeHead(health, { 'content-type': 'text/plain' });
      res.end(health === 200 ? 'ok' : 'down');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': id });
    res.end(id);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    resolve({ url: `http://127.0.0.1:${port}`, server, setHealth: (s) => (health = s) });
  }));
}

function get(url: string, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * The peer runs with --inspect on loopback so the soak can force a full GC in it (CDP
 * HeapProfiler.collectGarbage) before reading its heap: without it, nodejs_heap_size_used_bytes is a
 * sawtooth of garbage (±10 MiB per minute at this load) and a slope of it says nothing about leaks.
 */
async function inspector(port: number): Promise<{ gc(): Promise<void>; close(): void }> {
  const list = JSON.parse((await get(`http://127.0.0.1:${port}/json/list`)).body) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const pending = new Map<number, () => void>();
  ws.on('message', (m: Buffer) => {
    const msg = JSON.parse(m.toString()) as { id?: number };
    if (msg.id !== undefined) pending.get(msg.id)?.();
    if (msg.id !== undefined) pending.delete(msg.id);
  });
  return {
    gc: () => new Promise<void>((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
    }),
    close: () => ws.close(),
  };
}

async function peerHeapMiB(adminUrl: string): Promise<number> {
  const { body } = await get(`${adminUrl}/metrics`);
  const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(body);
  return m ? Number(m[1]) / MIB : NaN;
}

/** Least-squares slope of y over x (per x unit). */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const mean = (v: number[]): number => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);

interface Verdict {
  window: [number, number];
  pageHeapSlopeMiBPerHour: number;
  peerHeapSlopeMiBPerHour: number;
  peerRssSlopeMiBPerHour: number;
  domNodesMin: number;
  domNodesMax: number;
  pageHeapLast10VsMin10to20MiB: number;
  peerHeapLast10VsMin10to20MiB: number;
  peerRssLast10VsMin10to20MiB: number;
  domNodesLast10VsMin10to20: number;
  flat: { pageHeap: boolean; domNodes: boolean; peerHeap: boolean; all: boolean };
}

export function verdict(samples: Sample[]): Verdict {
  const last = samples[samples.length - 1]?.minute ?? 0;
  // The last 30 minutes, or the second half of a shorter run.
  const from = last >= 40 ? last - 30 : Math.floor(last / 2);
  const w = samples.filter((s) => s.minute >= from);
  const xs = w.map((s) => s.minute / 60);
  const perHour = (f: (s: Sample) => number): number => slope(xs, w.map(f));
  // Minutes 10–20 vs the last 10 (scaled down for a short run: the second quarter vs the last quarter).
  const q = last >= 40 ? 10 : Math.max(1, Math.floor(last / 4));
  const early = samples.filter((s) => s.minute >= q && s.minute < 2 * q);
  const late = samples.filter((s) => s.minute > last - q);
  const delta = (f: (s: Sample) => number): number => mean(late.map(f)) - mean(early.map(f));
  const nodes = w.map((s) => s.domNodes);
  const pageHeapSlope = perHour((s) => s.pageHeapMiB);
  const peerHeapSlope = perHour((s) => s.peerHeapMiB);
  const flat = {
    pageHeap: pageHeapSlope < PAGE_HEAP_MIB_PER_HOUR,
    domNodes: Math.max(...nodes) - Math.min(...nodes) <= DOM_NODES_SPREAD,
    peerHeap: peerHeapSlope < PEER_HEAP_MIB_PER_HOUR,
    all: false,
  };
  flat.all = flat.pageHeap && flat.domNodes && flat.peerHeap;
  return {
    window: [from, last],
    pageHeapSlopeMiBPerHour: pageHeapSlope,
    peerHeapSlopeMiBPerHour: peerHeapSlope,
    peerRssSlopeMiBPerHour: perHour((s) => s.peerRssMiB),
    domNodesMin: Math.min(...nodes),
    domNodesMax: Math.max(...nodes),
    pageHeapLast10VsMin10to20MiB: delta((s) => s.pageHeapMiB),
    peerHeapLast10VsMin10to20MiB: delta((s) => s.peerHeapMiB),
    peerRssLast10VsMin10to20MiB: delta((s) => s.peerRssMiB),
    domNodesLast10VsMin10to20: delta((s) => s.domNodes),
    flat,
  };
}

async function main(): Promise<void> {
  const procs = new ProcessGroup();
  const tmp = mkdtempSync(join(tmpdir(), 'meshgate-soak-'));
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  process.on('exit', () => procs.killAllSync());
  const backends = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(backend));
  const [dp, ap, ip] = [await freePort(), await freePort(), await freePort()];
  const config = `
node: { id: soak-1, listen: 127.0.0.1:${dp}, admin: { listen: 127.0.0.1:${ap} }, accessLog: false }
routes:
  - { match: { pathPrefix: /api }, service: api }
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    healthCheck: { interval: 1s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1 }
    upstreams: [{ id: a1, url: ${backends[0]!.url} }, { id: a2, url: ${backends[1]!.url} }]
  api:
    balancer: ring-hash
    hashOn: path
    healthCheck: { interval: 1s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1 }
    upstreams: [{ id: b1, url: ${backends[2]!.url} }, { id: b2, url: ${backends[3]!.url} }]
`;
  writeFileSync(join(tmp, 'soak.yaml'), config);
  const peer = procs.spawnToFile('meshgate', [process.execPath, `--inspect=127.0.0.1:${ip}`, meshgateMain, '--config', join(tmp, 'soak.yaml')], join(tmp, 'meshgate.log'));
  const adminUrl = `http://127.0.0.1:${ap}`;
  await waitForHttp200(`${adminUrl}/healthz`, 20_000, peer);
  const pid = peer.child.pid!;
  const peerInspector = await inspector(ip);

  // Flapping a1 makes health:changed events (and a re-render) every FLAP_MS.
  let down = false;
  const flap = setInterval(() => {
    down = !down;
    backends[0]!.setHealth(down ? 503 : 200);
  }, FLAP_MS);

  // Steady open-loop load over a keep-alive agent: every 10 ms tick sends what the schedule
  // (LOAD_RPS since the start) is owed, so timer jitter on a busy machine does not change the rate.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  let sent = 0;
  let failed = 0;
  let sentAtSample = 0;
  const paths = ['/', '/page', '/api/users/1', '/api/users/2', '/api/orders/7'];
  const loadStart = Date.now();
  const load = setInterval(() => {
    const owed = Math.floor(((Date.now() - loadStart) * LOAD_RPS) / 1000) - sent;
    for (let i = 0; i < owed; i++) {
      sent++;
      get(`http://127.0.0.1:${dp}${paths[sent % paths.length]}`, agent).catch(() => failed++);
    }
  }, 10);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.goto(`${adminUrl}/dashboard`);
  await page.waitForSelector('tr[data-upstream="web/a1"]');

  const samples: Sample[] = [];
  const started = Date.now();
  let lastSampleAt = started;
  sentAtSample = sent;
  const sample = async (minute: number): Promise<void> => {
    // Twice: the first full GC can leave detached DOM wrappers that only the next one sweeps.
    for (let i = 0; i < 2; i++) await cdp.send('HeapProfiler.collectGarbage');
    await peerInspector.gc();
    const { metrics } = await cdp.send('Performance.getMetrics');
    const dom = await cdp.send('Memory.getDOMCounters');
    const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN;
    const now = Date.now();
    const s: Sample = {
      minute,
      pageHeapMiB: heap / MIB,
      domNodes: await page.$$eval('*', (all) => all.length),
      blinkNodes: dom.nodes,
      jsEventListeners: dom.jsEventListeners,
      peerRssMiB: rssMiB(pid),
      peerHeapMiB: await peerHeapMiB(adminUrl),
      loadRps: ((sent - sentAtSample) * 1000) / Math.max(1, now - lastSampleAt),
    };
    sentAtSample = sent;
    lastSampleAt = now;
    samples.push(s);
    process.stdout.write(`${JSON.stringify(s)}\n`);
  };
  await sample(0);
  for (let m = 1; m <= MINUTES; m++) {
    await new Promise((r) => setTimeout(r, started + m * SAMPLE_MS - Date.now()));
    await sample(m);
  }
  const eventsShown = await page.$$eval('#events-list li', (l) => l.length);

  clearInterval(flap);
  clearInterval(load);
  await browser.close();
  peerInspector.close();
  await peer.stop();
  agent.destroy();
  await Promise.all(backends.map((b) => new Promise((r) => b.server.close(r))));
  rmSync(tmp, { recursive: true, force: true });

  const v = verdict(samples);
  const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '—');
  const lines = [
    `dashboard soak: ${MINUTES} min, ${new Date(started).toISOString()} → ${new Date().toISOString()}, loadavg ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `thresholds: page heap slope < ${PAGE_HEAP_MIB_PER_HOUR} MiB/h, DOM nodes spread ≤ ${DOM_NODES_SPREAD}, peer heap slope < ${PEER_HEAP_MIB_PER_HOUR} MiB/h (both heaps after a forced full GC)`,
    `load: ${LOAD_RPS} req/s target (${sent} sent, ${failed} failed), a1 /healthz flapping every ${FLAP_MS / 1000} s; events list shows ${eventsShown}`,
    '',
    'minute | page heap MiB | DOM nodes | Blink nodes | listeners | peer RSS MiB | peer heap MiB | load req/s',
    ...samples.map((s) => `${String(s.minute).padStart(6)} | ${f(s.pageHeapMiB, 3).padStart(13)} | ${String(s.domNodes).padStart(9)} | ${String(s.blinkNodes).padStart(11)} | ${String(s.jsEventListeners).padStart(9)} | ${f(s.peerRssMiB, 1).padStart(12)} | ${f(s.peerHeapMiB).padStart(13)} | ${f(s.loadRps, 0).padStart(10)}`),
    '',
    `verdict over minutes ${v.window[0]}–${v.window[1]} (least-squares slope):`,
    `  page heap ${f(v.pageHeapSlopeMiBPerHour, 3)} MiB/h (flat < ${PAGE_HEAP_MIB_PER_HOUR}): ${v.flat.pageHeap ? 'flat' : 'GROWING'}`,
    `  DOM elements ${v.domNodesMin}–${v.domNodesMax} (bounded: spread ≤ ${DOM_NODES_SPREAD}): ${v.flat.domNodes ? 'bounded' : 'GROWING'}`,
    `  peer heap ${f(v.peerHeapSlopeMiBPerHour, 3)} MiB/h (flat < ${PEER_HEAP_MIB_PER_HOUR}): ${v.flat.peerHeap ? 'flat' : 'GROWING'}`,
    `  peer RSS ${f(v.peerRssSlopeMiBPerHour, 2)} MiB/h (reported, not judged: RSS follows the allocator, not only live objects)`,
    `last-10-min mean minus minutes 10–20 mean: page heap ${f(v.pageHeapLast10VsMin10to20MiB, 3)} MiB, DOM ${f(v.domNodesLast10VsMin10to20, 1)} nodes, peer heap ${f(v.peerHeapLast10VsMin10to20MiB)} MiB, peer RSS ${f(v.peerRssLast10VsMin10to20MiB, 1)} MiB`,
    `VERDICT: ${v.flat.all ? 'FLAT' : 'NOT FLAT'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const dir = join(root, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `dashboard-soak-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ minutes: MINUTES, startedAt: new Date(started).toISOString(), endedAt: new Date().toISOString(), loadavg: loadavg(), loadRps: LOAD_RPS, sent, failed, flapMs: FLAP_MS, eventsShown, thresholds: { pageHeapMiBPerHour: PAGE_HEAP_MIB_PER_HOUR, peerHeapMiBPerHour: PEER_HEAP_MIB_PER_HOUR, domNodesSpread: DOM_NODES_SPREAD }, samples, verdict: v }, null, 2)}\n`);
  process.stdout.write(`written ${file}\n`);
  process.exit(v.flat.all ? 0 : 1);
}

await main();
