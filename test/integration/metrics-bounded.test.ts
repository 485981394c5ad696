/**
 * /metrics under the issue's bad input: 10,000 distinct paths add no series; upstream churn (reloads
 * that replace the upstream set) leaves only the current upstreams' series; scrapes taken while
 * reloads swap the routing are all complete and `promtool check metrics` clean (when promtool is
 * installed). A real peer process, real backends, reloads through the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';
import { PROMTOOL, runPromtool } from '../helpers/promtool.js';

let backend: Backend;
let peer: PeerProcess;
let dp = 0;
let ap = 0;

function config(ids: string[]): string {
  return `
node: { id: gw-churn, listen: 127.0.0.1:${dp}, admin: { listen: 127.0.0.1:${ap} }, accessLog: false }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    healthCheck: { interval: 1s, timeout: 2s }
    upstreams:
${ids.map((id) => `      - { id: ${id}, url: ${backend.url} }`).join('\n')}
`;
}

const scrape = async () => fetch(`${peer.adminUrl}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() }));
const series = (text: string, prefix = 'meshgate_') => text.split('\n').filter((l) => l.startsWith(prefix));
const upstreamsIn = (text: string) => new Set([...text.matchAll(/upstream="([^"]+)"/g)].map((m) => m[1]));

async function reload(ids: string[]): Promise<void> {
  writeFileSync(peer.configFile, config(ids));
  const r = await fetch(`${peer.adminUrl}/api/v1/config/reload`, { method: 'POST' });
  expect(r.status, await r.text()).toBe(200);
}

describe('metrics stay bounded and consistent', () => {
  beforeAll(async () => {
    backend = await startBackend('churn');
    [dp, ap] = [await freePort(), await freePort()];
    peer = await startPeer(config(['u0', 'u1']), { dataPort: dp, adminPort: ap });
  });
  afterAll(async () => {
    await peer?.stop();
    await backend?.close();
  });

  it('10,000 distinct paths add no series', async () => {
    for (let i = 0; i < 20; i++) await fetch(`${peer.url}/warm/${i}`).then((r) => r.arrayBuffer());
    const before = series((await scrape()).text).length;
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < 10_000) {
        const i = next++;
        await fetch(`${peer.url}/item/${i}?q=${i}`).then((r) => r.arrayBuffer());
      }
    }));
    const after = (await scrape()).text;
    expect(series(after).length).toBe(before);
    expect(after).not.toContain('/item/');
  }, 120_000);

  it('upstream churn leaves only the current upstreams, and scrapes during reloads are complete and clean', async () => {
    const scrapes: Array<{ status: number; text: string }> = [];
    let reloading = true;
    const scraper = (async () => {
      while (reloading) scrapes.push(await scrape());
    })();
    for (let round = 0; round < 20; round++) {
      await reload([`u${round + 2}`, `u${round + 3}`]);
      await Promise.all(Array.from({ length: 10 }, () => fetch(`${peer.url}/id`).then((r) => r.arrayBuffer())));
    }
    reloading = false;
    await scraper;
    const last = (await scrape()).text;
    expect([...upstreamsIn(last)].sort()).toEqual(['u21', 'u22']);
    expect(scrapes.length).toBeGreaterThan(5);
    for (const s of scrapes) {
      expect(s.status).toBe(200);
      expect(s.text).toContain('# TYPE meshgate_upstream_requests_total counter');
      expect(s.text).toContain('meshgate_build_info{');
      // At most the upstreams of two consecutive tables are ever visible together.
      expect(upstreamsIn(s.text).size).toBeLessThanOrEqual(4);
    }
    if (existsSync(PROMTOOL)) {
      for (const s of scrapes.slice(0, 30)) {
        const r = runPromtool(['check', 'metrics'], s.text);
        expect(r.out.trim(), r.out).toBe('');
      }
    }
  }, 120_000);
});
