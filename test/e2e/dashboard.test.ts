/**
 * The live dashboard (DESIGN.md §8) in a real headless Chromium against a real meshgate process and
 * real backends.
 *
 * What it pins down:
 * - every upstream of every service is listed in a real table, with the Raft and sticky panels saying
 *   "not configured" on a single peer without redis;
 * - a backend whose /healthz turns 500 shows as unhealthy within 2 s WITHOUT a page reload (the page
 *   lives on /api/v1/events; a window marker set before the flip must survive), and comes back;
 * - a rejected reload shows its file:line:column lines, and a later good one clears them;
 * - the workers panel is hidden on a single-process peer, and on a `node.workers: 2` peer lists both
 *   workers (pid, state, the requests they served) without sideways scrolling at 390 px;
 * - the page logs no console error and throws no page error throughout.
 * It writes test-artifacts/dashboard.png for humans (gitignored).
 *
 * Needs `npm run build` (the peer runs from dist/). Skipped only when /usr/bin/chromium is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
/** The brief's bound for a health flip to reach the page: 300 ms checks + SSE + one throttled fetch fit well inside it. */
const LIVE_UPDATE_MS = 2000;

let backends: Backend[] = [];
let peer: PeerProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let goodConfig = '';
const consoleErrors: string[] = [];
const pageErrors: string[] = [];

function config(dp: number, ap: number, [a, b, c]: Backend[]): string {
  return `
node:
  id: gw-dash
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
  - { match: { pathPrefix: /api }, service: api }
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    balancer: round-robin
    healthCheck: { path: /healthz, interval: 300ms, timeout: 200ms, healthyThreshold: 1, unhealthyThreshold: 1 }
    upstreams:
      - { id: a, url: ${a!.url} }
      - { id: b, url: ${b!.url} }
      - { id: c, url: ${c!.url} }
  api:
    balancer: ring-hash
    hashOn: header:x-user
    upstreams:
      - { id: api-1, url: ${a!.url} }
      - { id: api-2, url: ${c!.url}, weight: 2 }
`;
}

const TITLE = HAS_CHROMIUM ? 'dashboard in headless Chromium' : `dashboard (skipped: ${CHROMIUM} not found; CI installs it)`;

describe.skipIf(!HAS_CHROMIUM)(TITLE, () => {
  beforeAll(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
    const [dp, ap] = [await freePort(), await freePort()];
    goodConfig = config(dp, ap, backends);
    peer = await startPeer(goodConfig, { dataPort: dp, adminPort: ap });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    // Some traffic so the rate and latency columns have figures in the screenshot.
    for (let i = 0; i < 30; i++) {
      await fetch(`${peer.url}/id`).then((r) => r.text());
      await fetch(`${peer.url}/api/id`, { headers: { 'x-user': `u${i}` } }).then((r) => r.text());
    }
  });

  afterAll(async () => {
    await browser?.close();
    await peer?.stop('SIGKILL');
    await Promise.all(backends.map((b) => b.close()));
  });

  it('lists every upstream of every service in a table, with health, and the unconfigured panels', async () => {
    await page.goto(`${peer!.adminUrl}/dashboard`);
    for (const id of ['web/a', 'web/b', 'web/c', 'api/api-1', 'api/api-2']) {
      await page.waitForSelector(`tr[data-upstream="${id}"]`, { timeout: 10_000 });
    }
    // Real table headers, not styled divs.
    const headers = await page.$$eval('section[data-service="web"] thead th', (ths) => ths.map((t) => t.textContent?.trim()));
    expect(headers).toEqual(['upstream', 'url', 'health', 'state', 'source', 'in-flight', 'req/s', 'p50', 'p99', '5xx', 'errors', 'ejections', 'ring share']);
    // Checks every 300 ms with healthyThreshold 1: all web upstreams turn healthy, in words as well as colour.
    await page.waitForSelector('tr[data-upstream="web/a"][data-health="healthy"]', { timeout: 10_000 });
    await page.waitForSelector('tr[data-upstream="web/b"][data-health="healthy"]', { timeout: 10_000 });
    await page.waitForSelector('tr[data-upstream="web/c"][data-health="healthy"]', { timeout: 10_000 });
    expect(await page.textContent('tr[data-upstream="web/b"] td.health')).toContain('healthy');
    const row = await page.$$eval('tr[data-upstream="web/a"] > *', (cells) => cells.map((c) => c.textContent?.trim()));
    expect(row[0]).toBe('a');
    expect(row[1]).toBe(backends[0]!.url);
    expect(row[3]).toBe('active');
    expect(row[4]).toBe('file');
    // The ring-hash service shows ring shares that add up to the whole ring.
    const shares = await page.$$eval('section[data-service="api"] tbody tr td:last-child', (tds) => tds.map((t) => parseFloat(t.textContent ?? '')));
    expect(shares).toHaveLength(2);
    expect(shares[0]! + shares[1]!).toBeCloseTo(100, 0);
    // Single peer without redis: both panels say so.
    expect(await page.getAttribute('#raft', 'data-raft')).toBe('not-configured');
    expect(await page.textContent('#raft-body')).toContain('not configured');
    expect(await page.getAttribute('#sticky', 'data-sticky')).toBe('not-configured');
    expect(await page.textContent('#sticky-body')).toContain('not configured');
    // A single-process peer has no `workers` in its status: no workers panel.
    expect(await page.isHidden('#workers')).toBe(true);
    expect(await page.getAttribute('#workers', 'data-workers')).toBe('absent');
    expect(await page.getAttribute('#config-generation', 'data-generation')).toBe('1');
    expect(await page.getAttribute('#config', 'data-reload')).toBe('ok');
    await page.waitForSelector('#feed[data-feed="live"]', { timeout: 5000 });
  });

  it('shows an upstream going unhealthy within 2 s without a page reload, and coming back', async () => {
    // A marker that a reload (or navigation) would wipe.
    await page.evaluate(() => ((globalThis as unknown as { __mgMarker: number }).__mgMarker = 42));
    backends[1]!.setHealth(500);
    await page.waitForSelector('tr[data-upstream="web/b"][data-health="unhealthy"]', { timeout: LIVE_UPDATE_MS });
    expect(await page.textContent('tr[data-upstream="web/b"] td.health')).toContain('unhealthy');
    // The others are still shown healthy (waited for, not read once: with the brief's 200 ms probe
    // timeout and threshold 1, a loaded machine can make a healthy upstream blink).
    await page.waitForSelector('tr[data-upstream="web/a"][data-health="healthy"]', { timeout: 10_000 });
    await page.waitForSelector('tr[data-upstream="web/c"][data-health="healthy"]', { timeout: 10_000 });
    // The event list names the transition.
    expect(await page.textContent('#events-list')).toContain('web/b: healthy → unhealthy');
    await page.screenshot({ path: new URL('dashboard-unhealthy.png', artifactsDir()).pathname, fullPage: true });

    backends[1]!.setHealth(200);
    await page.waitForSelector('tr[data-upstream="web/b"][data-health="healthy"]', { timeout: LIVE_UPDATE_MS });
    expect(await page.evaluate(() => (globalThis as unknown as { __mgMarker?: number }).__mgMarker)).toBe(42);
  });

  it('shows a rejected reload with its file:line:column lines, and clears them on a good reload', async () => {
    const file = peer!.configFile;
    // The unknown key is markup: the page must show it as text, never parse it.
    writeFileSync(file, `${goodConfig}\n    "<img src=x id=injected>": 1\n`);
    const res = await fetch(`${peer!.adminUrl}/api/v1/config/reload`, { method: 'POST' });
    expect(res.status).toBe(400);
    await page.waitForSelector('#config[data-reload="rejected"]', { timeout: 5000 });
    const lines = await page.$$eval('#reload-errors li', (lis) => lis.map((l) => l.textContent ?? ''));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/config\.yaml:\d+:\d+: /);
    expect(await page.textContent('#reload-result')).toContain('rejected');
    expect(lines.join('\n')).toContain('<img src=x id=injected>');
    expect(await page.$$('#injected')).toHaveLength(0);

    writeFileSync(file, goodConfig);
    expect(readFileSync(file, 'utf8')).toBe(goodConfig);
    const ok = await fetch(`${peer!.adminUrl}/api/v1/config/reload`, { method: 'POST' });
    expect(ok.status).toBe(200);
    await page.waitForSelector('#config[data-reload="ok"]', { timeout: 5000 });
    expect(await page.$$('#reload-errors li')).toHaveLength(0);
    expect(Number(await page.getAttribute('#config-generation', 'data-generation'))).toBeGreaterThan(1);
  });

  it('lists each worker of a node.workers: 2 peer, with its requests, readable at 390 px', async () => {
    const [dp, ap] = [await freePort(), await freePort()];
    const multi = await startPeer(`
node: { id: gw-workers, listen: 127.0.0.1:${dp}, admin: { listen: 127.0.0.1:${ap} }, accessLog: false, workers: 2 }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: a, url: ${backends[0]!.url} }]
`, { dataPort: dp, adminPort: ap });
    const phone = await browser!.newPage({ viewport: { width: 390, height: 844 } });
    phone.on('pageerror', (err) => pageErrors.push(String(err)));
    try {
      await phone.goto(`${multi.adminUrl}/dashboard`);
      await phone.waitForSelector('#workers[data-workers="2"]', { timeout: 10_000 });
      await phone.waitForSelector('tr[data-worker="0"][data-state="ready"]', { timeout: 10_000 });
      await phone.waitForSelector('tr[data-worker="1"][data-state="ready"]', { timeout: 10_000 });
      const status = (await (await fetch(`${multi.adminUrl}/api/v1/status`)).json()) as { workers: Array<{ index: number; pid: number }> };
      for (const w of status.workers) {
        expect(await phone.textContent(`tr[data-worker="${w.index}"] td[data-label="pid"]`)).toContain(String(w.pid));
      }
      // Requests served through the data port show up in the workers' rows (heartbeat ≤ 1 s + 2 s poll).
      for (let i = 0; i < 20; i++) await fetch(`${multi.url}/id`, { headers: { connection: 'close' } }).then((r) => r.text());
      const served = () => phone.$$eval('#workers td[data-label="requests"]', (tds) => tds.reduce((n, td) => n + Number(td.textContent), 0));
      await expect.poll(served, { timeout: 10_000 }).toBeGreaterThanOrEqual(20);
      const widths = await phone.$eval('html', (h) => ({ scroll: h.scrollWidth, client: h.clientWidth }));
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      await phone.screenshot({ path: new URL('dashboard-workers-390.png', artifactsDir()).pathname, fullPage: true });
    } finally {
      await phone.close();
      await multi.stop();
    }
  });

  it('logs no console error or page error, and writes a screenshot', async () => {
    // One more status fetch (the 2 s poll) so errors from the periodic path would show too.
    await page.waitForResponse((r) => r.url().endsWith('/api/v1/status'), { timeout: 5000 });
    await page.waitForSelector('tr[data-upstream="web/b"][data-health="healthy"]', { timeout: 5000 });
    await page.screenshot({ path: new URL('dashboard.png', artifactsDir()).pathname, fullPage: true });
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

function artifactsDir(): URL {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}
