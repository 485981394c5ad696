/**
 * A page on another origin cannot change anything through a token-less admin API (issue 13), in a real
 * headless Chromium. The peer is a one-voter cluster with the shipped default: no admin token, admin on
 * loopback. The attacker's page is served by a second local HTTP server on another port and tries every
 * request a browser sends without a CORS preflight — fetch no-cors with text/plain (the reproduction that
 * used to add a learner at port 99999 and stop Raft everywhere), a text/plain form crafted to carry JSON,
 * an urlencoded form, sendBeacon — plus a CORS fetch with application/json (preflighted, must fail).
 * DNS rebinding is emulated with Chromium's host resolver rules: a name that resolves to 127.0.0.1 gets
 * 403 on reads too. A same-origin page (the dashboard's own origin) doing the same write succeeds, so the
 * test can tell a refusal from a broken setup.
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
let peer: PeerProcess | undefined;
let attacker: Server | undefined;
let attackerPort = 0;
let adminPort = 0;
let browser: Browser | undefined;

function attackPage(admin: string): string {
  const peerJson = JSON.stringify({ id: 'gw-9', address: '127.0.0.1:7001', role: 'learner' });
  const upstreamJson = JSON.stringify({ url: 'http://127.0.0.1:9' });
  return `<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<form id="f1" target="sink1" method="POST" enctype="text/plain" action="${admin}/api/v1/cluster/peers">
  <input name='{"id":"gw-8","address":"127.0.0.1:7002","role":"learner","x":"' value='"}'>
</form>
<form id="f2" target="sink2" method="POST" action="${admin}/api/v1/config/reload"><input name="a" value="b"></form>
<form id="f3" target="sink3" method="POST" enctype="text/plain" action="${admin}/api/v1/cluster/leadership-transfer">
  <input name='{"x":"' value='"}'>
</form>
<script>
window.results = [];
async function attempt(name, f) {
  try { const r = await f(); window.results.push(name + ': ' + (r && r.type) + ' ' + (r && r.status)); }
  catch (e) { window.results.push(name + ': threw ' + e.name); }
}
window.attack = async () => {
  await attempt('no-cors text/plain peers', () => fetch('${admin}/api/v1/cluster/peers', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '${peerJson}' }));
  await attempt('no-cors text/plain 99999', () => fetch('${admin}/api/v1/cluster/peers', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"id":"gw-7","address":"127.0.0.1:99999","role":"learner"}' }));
  await attempt('no-cors reload', () => fetch('${admin}/api/v1/config/reload', { method: 'POST', mode: 'no-cors' }));
  await attempt('no-cors PUT', () => fetch('${admin}/api/v1/services/web/upstreams/evil', { method: 'PUT', mode: 'no-cors', body: '${upstreamJson}' }));
  await attempt('cors json PUT', () => fetch('${admin}/api/v1/services/web/upstreams/evil2', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '${upstreamJson}' }));
  await attempt('cors json POST', () => fetch('${admin}/api/v1/cluster/peers', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '${peerJson}' }));
  window.results.push('beacon: ' + navigator.sendBeacon('${admin}/api/v1/cluster/peers', new Blob(['${peerJson}'], { type: 'text/plain' })));
  document.getElementById('f1').submit();
  document.getElementById('f2').submit();
  document.getElementById('f3').submit();
  return window.results;
};
</script></body></html>`;
}

async function status(): Promise<{ generation: number; lastReload: { source: string }; raft: { learners: string[]; voters: string[]; term: number }; upstreams: string[] }> {
  const s = (await (await fetch(`${peer!.adminUrl}/api/v1/status`)).json()) as { generation: number; lastReload: { source: string }; raft: { learners: string[]; voters: string[]; term: number } };
  const u = (await (await fetch(`${peer!.adminUrl}/api/v1/services/web/upstreams`)).json()) as { upstreams: Array<{ id: string }> };
  return { generation: s.generation, lastReload: s.lastReload, raft: s.raft, upstreams: u.upstreams.map((x) => x.id).sort() };
}

const TITLE = HAS_CHROMIUM ? 'token-less admin API against a cross-origin page in headless Chromium' : `cross-origin admin (skipped: ${CHROMIUM} not found; CI installs it)`;

describe.skipIf(!HAS_CHROMIUM)(TITLE, () => {
  beforeAll(async () => {
    const [dp, ap, rp] = [await freePort(), await freePort(), await freePort()];
    adminPort = ap;
    const dir = tempDir('mg-xorigin-');
    peer = await startPeer(
      `node: { id: gw-1, listen: 127.0.0.1:${dp}, admin: { listen: 127.0.0.1:${ap} }, accessLog: false }
cluster: { listen: 127.0.0.1:${rp}, dataDir: ${join(dir, 'data')}, secret: 0123456789abcdef0123, bootstrap: [{ id: gw-1, address: 127.0.0.1:${rp} }] }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: a, url: http://127.0.0.1:9 }]
`,
      { dir, dataPort: dp, adminPort: ap },
    );
    await waitFor(async () => (await status()).raft.voters.length === 1 && (await fetch(`${peer!.adminUrl}/api/v1/status`).then((r) => r.json()) as { raft: { role: string } }).raft.role === 'leader', 15_000, () => 'single voter elected');
    attackerPort = await freePort();
    attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(attackPage(`http://127.0.0.1:${adminPort}`));
    });
    await new Promise<void>((r) => attacker!.listen(attackerPort, '127.0.0.1', () => r()));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP rebind.test 127.0.0.1'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
    await peer?.stop();
  });

  it('refuses every write a page on another origin can send, and nothing changes', async () => {
    const before = await status();
    const page = await browser!.newPage();
    await page.goto(`http://127.0.0.1:${attackerPort}/`);
    const results = (await page.evaluate('window.attack()')) as string[];
    // Each form has been answered once its iframe holds the admin origin's document (reading its location
    // then throws: cross-origin). The fetches were awaited in the page; the beacon is fire-and-forget, so a
    // last awaited request of the same kind goes after it on the same connection pool.
    await page.waitForFunction(`['sink1', 'sink2', 'sink3'].every((n) => { try { return window[n].location.href === 'never'; } catch { return true; } })`, undefined, { timeout: 10_000 });
    await page.evaluate(`fetch('http://127.0.0.1:${adminPort}/api/v1/cluster/peers', { method: 'POST', mode: 'no-cors', body: 'x' })`);
    const after = await status();
    expect(after.raft.learners).toEqual([]);
    expect(after.raft.voters).toEqual(before.raft.voters);
    expect(after.upstreams).toEqual(before.upstreams);
    expect(after.generation).toBe(before.generation);
    expect(after.lastReload.source).toBe('start');
    // The CORS fetches fail in the page itself (no CORS headers are ever sent).
    expect(results.filter((r) => r.startsWith('cors'))).toEqual(['cors json PUT: threw TypeError', 'cors json POST: threw TypeError']);
    // The forms landed on the refusal, not on a success.
    for (const n of ['sink1', 'sink2', 'sink3']) {
      const text = (await page.frame({ name: n })!.textContent('body')) ?? '';
      expect(text, n).toContain('MG_ERR_ADMIN_CROSS_ORIGIN');
    }
    await page.close();
  }, 60_000);

  it('refuses reads under a rebound name, while the same write from the admin origin itself succeeds', async () => {
    const page = await browser!.newPage();
    const rebound = await page.goto(`http://rebind.test:${adminPort}/api/v1/status`);
    expect(rebound?.status()).toBe(403);
    expect(await page.textContent('body')).toContain('MG_ERR_ADMIN_HOST_NOT_ALLOWED');
    const metrics = await page.goto(`http://rebind.test:${adminPort}/metrics`);
    expect(metrics?.status()).toBe(403);

    // Positive control: the dashboard's own origin may write (so the refusals above are not a broken setup).
    await page.goto(`http://127.0.0.1:${adminPort}/dashboard`);
    const code = await page.evaluate(async () => (await fetch('/api/v1/services/web/upstreams/same-origin', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:9' }) })).status);
    expect(code).toBe(200);
    expect((await status()).upstreams).toContain('same-origin');
    await page.close();
  }, 60_000);
});
