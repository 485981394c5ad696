/**
 * The dashboard as an operator uses it (issue 17), in Debian's headless Chromium against a real
 * three-peer cluster with a sticky service and real backends:
 * - the sticky panel shows real counts (resolves, created, cached pins) from the per-service stats;
 * - on a follower, the other follower is not shown "✖ down" (followers do not talk between elections);
 * - at 390 px the page does not scroll sideways (tables become cards);
 * - the req/s and p99 sparklines move while load runs (points added, last req/s > 0), and each
 *   upstream's req/s cell grows its own small line;
 * - time in state and the 5xx column are shown; the ring-share bar is drawn for ring-hash;
 * - screenshots for light, dark and phone in test-artifacts/ (gitignored); no console or page error.
 *
 * Needs `npm run build`. Skipped only when /usr/bin/chromium is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startBackend, type Backend } from '../helpers/backend.js';
import { TestCluster, startAll } from '../helpers/cluster.js';
import { waitFor } from '../helpers/meshgate.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const IDS = ['d1', 'd2', 'd3'];

let backends: Backend[] = [];
let cluster: TestCluster;
let browser: Browser | undefined;
const consoleErrors: string[] = [];
const pageErrors: string[] = [];
let leader = '';
let follower = '';
let otherFollower = '';
let loadRunning = false;
let load: Promise<void> | undefined;

function services(): string {
  const [a, b, c] = backends;
  return `
routes:
  - { match: { pathPrefix: /cart }, service: cart }
  - { match: { pathPrefix: /api }, service: api }
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    healthCheck: { interval: 500ms, timeout: 2s, healthyThreshold: 1, unhealthyThreshold: 2 }
    upstreams: [{ id: a, url: ${a!.url} }, { id: b, url: ${b!.url} }]
  api:
    balancer: ring-hash
    hashOn: header:x-user
    upstreams: [{ id: api-1, url: ${a!.url} }, { id: api-2, url: ${c!.url}, weight: 2 }]
  cart:
    sticky: { cookie: sid }
    upstreams: [{ id: c1, url: ${b!.url} }, { id: c2, url: ${c!.url} }]
`;
}

async function newPage(width: number, height: number, scheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width, height }, colorScheme: scheme });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  return page;
}

function startLoad(): void {
  loadRunning = true;
  const url = cluster.procs.get(follower)!.url;
  load = (async () => {
    let i = 0;
    while (loadRunning) {
      await Promise.all([
        fetch(`${url}/id`).then((r) => r.arrayBuffer(), () => undefined),
        fetch(`${url}/api/id`, { headers: { 'x-user': `u${i % 20}` } }).then((r) => r.arrayBuffer(), () => undefined),
        fetch(`${url}/cart/id`, { headers: { cookie: `sid=s${i % 10}` } }).then((r) => r.arrayBuffer(), () => undefined),
        fetch(`${url}/status/503`).then((r) => r.arrayBuffer(), () => undefined),
      ]);
      i++;
    }
  })();
}

describe.skipIf(!HAS_CHROMIUM)('dashboard for operators (headless Chromium, three peers)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
    cluster = new TestCluster(() => services());
    await cluster.allocate(IDS);
    await startAll(cluster, IDS);
    leader = await cluster.leader();
    [follower, otherFollower] = IDS.filter((id) => id !== leader) as [string, string];
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    startLoad();
  }, 60_000);

  afterAll(async () => {
    loadRunning = false;
    await load;
    await browser?.close();
    await cluster?.stopAll();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('sticky panel shows real counts; a follower does not show its fellow follower down; sparklines move under load (light screenshot)', async () => {
    const page = await newPage(1400, 1100);
    await page.goto(`${cluster.procs.get(follower)!.adminUrl}/dashboard`);
    // Sticky: real resolves and created pins for the cart service.
    await page.waitForSelector('tr[data-sticky-service="cart"]', { timeout: 10_000 });
    await waitFor(async () => Number(await page.textContent('tr[data-sticky-service="cart"] td[data-label="resolves"]')) > 0, 10_000, () => 'no sticky resolves shown');
    expect(Number(await page.textContent('tr[data-sticky-service="cart"] td[data-label="created"]'))).toBeGreaterThan(0);
    expect(await page.textContent('#sticky-body')).not.toContain('—');
    // Raft: the other follower is not "down" on a follower.
    await page.waitForSelector(`tr[data-peer="${otherFollower}"]`, { timeout: 10_000 });
    // (A link opened during the election may still be up: "connected" is true then, never "down".)
    expect(['follower-peer', 'connected']).toContain(await page.getAttribute(`tr[data-peer="${otherFollower}"]`, 'data-link'));
    expect(await page.textContent(`tr[data-peer="${otherFollower}"]`)).not.toContain('✖ down');
    expect(await page.getAttribute(`tr[data-peer="${leader}"]`, 'data-link')).toBe('connected');
    // Sparklines: points are added while load runs, and the last req/s is above 0.
    const points = async () => Number(await page.getAttribute('[data-series="web/req/s"]', 'data-points'));
    await page.waitForSelector('[data-series="web/req/s"]', { timeout: 10_000 });
    const before = await points();
    await waitFor(async () => (await points()) >= before + 2, 15_000, () => `sparkline did not move from ${before}`);
    expect(Number(await page.getAttribute('[data-series="web/req/s"]', 'data-last'))).toBeGreaterThan(0);
    await waitFor(async () => Number(await page.getAttribute('[data-series="web/p99"]', 'data-last')) > 0, 10_000, () => 'no p99 figure');
    expect(await page.$$('[data-series="web/req/s"] svg polyline')).toHaveLength(1);
    // Per upstream: a small line of its recent req/s in the req/s cell.
    await page.waitForSelector('tr[data-upstream="web/a"] td[data-label="req/s"] svg.mini polyline', { timeout: 15_000 });
    // 5xx column (the /status/503 traffic) and time in state.
    await waitFor(async () => {
      const cells = await page.$$eval('section[data-service="web"] td[data-label="5xx"]', (tds) => tds.map((t) => Number(t.textContent)));
      return cells.some((n) => n > 0);
    }, 10_000, () => 'no 5xx counted');
    await page.waitForSelector('tr[data-upstream="web/a"] .since', { timeout: 10_000 });
    expect(await page.textContent('tr[data-upstream="web/a"] .since')).toMatch(/^for \d+/);
    // Ring shares drawn for the ring-hash service.
    expect(await page.$$('[data-ring="api"] rect')).toHaveLength(2);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-light.png`, fullPage: true });
    await page.close();
  }, 90_000);

  it('dark scheme renders (screenshot)', async () => {
    const page = await newPage(1400, 1100, 'dark');
    await page.goto(`${cluster.procs.get(leader)!.adminUrl}/dashboard`);
    await page.waitForSelector('tr[data-upstream="web/a"]', { timeout: 10_000 });
    await page.waitForSelector('[data-series="web/req/s"][data-points="2"]', { timeout: 15_000 });
    expect(await page.$eval('body', (b) => b.ownerDocument.defaultView!.getComputedStyle(b).backgroundColor)).toBe('rgb(22, 22, 22)');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-dark.png`, fullPage: true });
    await page.close();
  }, 60_000);

  it('at 390 px nothing scrolls sideways (phone screenshot)', async () => {
    const page = await newPage(390, 844);
    await page.goto(`${cluster.procs.get(leader)!.adminUrl}/dashboard`);
    await page.waitForSelector('tr[data-upstream="web/a"]', { timeout: 10_000 });
    await page.waitForSelector(`tr[data-peer="${follower}"]`, { timeout: 10_000 });
    const widths = await page.$eval('html', (h) => ({ scroll: h.scrollWidth, client: h.clientWidth }));
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    // A URL is not broken every few characters: its cell is at least as wide as half the screen.
    // Measured once laid out, in the same evaluation that finds it so: the tables are rebuilt on every
    // refresh (250 ms), and a second query landing in the middle of a rebuild on a loaded CI machine
    // read a width of 0 (twice: once after a separate wait for a non-zero width).
    const urlCell = 'tr[data-upstream="web/a"] td.url';
    const laidOut = await page.waitForFunction(`(() => { const w = document.querySelector('${urlCell}')?.getBoundingClientRect().width ?? 0; return w > 0 ? w : false; })()`, undefined, { timeout: 10_000 });
    const urlWidth = (await laidOut.jsonValue()) as number;
    expect(urlWidth).toBeGreaterThan(195);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-phone.png`, fullPage: true });
    await page.close();
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
