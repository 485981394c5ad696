/**
 * Balancers through the real proxy (issue 3): least-request steers away from a slow upstream;
 * ring-hash keeps a key on one upstream and counts requests without the key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';

let fast: Backend, slow: Backend, h: Backend[];
let peer: PeerProcess;

beforeAll(async () => {
  [fast, slow] = await Promise.all([startBackend('fast'), startBackend('slow')]);
  h = await Promise.all(['h1', 'h2', 'h3'].map((n) => startBackend(n)));
  fast.setDelay(20);
  slow.setDelay(200); // ten times slower
  const [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(`
node:
  id: gw-balance
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
  - { match: { pathPrefix: /hash }, service: hashed }
  - { match: { pathPrefix: / }, service: lr }
services:
  lr:
    balancer: least-request
    upstreams:
      - { id: fast, url: ${fast.url} }
      - { id: slow, url: ${slow.url} }
  hashed:
    balancer: ring-hash
    hashOn: header:x-user-id
    boundedLoad: 1.25
    upstreams:
${h.map((b) => `      - { id: ${b.name}, url: ${b.url} }`).join('\n')}
`, { dataPort: dp, adminPort: ap });
});

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await Promise.all([fast, slow, ...h].map((b) => b?.close()));
});

describe('balancers through the proxy', () => {
  it('least-request sends clearly fewer requests to a 10x slower upstream', async () => {
    // Eight clients: enough concurrency for in-flight counts to differ, little enough that the
    // backends' delays (not a CPU-starved proxy) dominate latency on a loaded 2-core runner.
    const agent = new Agent({ connections: 8 });
    const counts: Record<string, number> = { fast: 0, slow: 0 };
    let next = 0;
    const total = 600;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < total) {
          const r = await request(`${peer.url}/id`, { dispatcher: agent });
          counts[await r.body.text()]!++;
        }
      }),
    );
    await agent.close();
    const share = counts.slow! / (counts.fast! + counts.slow!);
    if (process.env.MG_TEST_VERBOSE) console.log(`least-request: slow upstream got ${(share * 100).toFixed(1)}% (${counts.slow}/${total})`);
    // Equal split would be 50%; in-flight-based P2C gives the slow one far less.
    expect(share).toBeLessThan(0.3);
    expect(counts.slow).toBeGreaterThan(0);
  });

  it('ring-hash keeps each key on one upstream across requests and spreads keys', async () => {
    const home = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 60; u++) {
        const r = await fetch(`${peer.url}/hash/id`, { headers: { 'x-user-id': `user-${u}` } });
        const b = await r.text();
        if (round === 0) home.set(`user-${u}`, b);
        else expect(b).toBe(home.get(`user-${u}`));
      }
    }
    expect(new Set(home.values()).size).toBe(3);
  });

  it('counts hash requests without the key and still serves them', async () => {
    for (let i = 0; i < 5; i++) expect((await fetch(`${peer.url}/hash/id`)).status).toBe(200);
    const m = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    expect(m).toMatch(/meshgate_balancer_hash_key_missing_total\{service="hashed"\} 5/);
    const st = (await (await fetch(`${peer.adminUrl}/api/v1/status`)).json()) as { services: { hashed: { upstreams: Array<{ ringShare: number }> } } };
    const shares = st.services.hashed.upstreams.map((u) => u.ringShare);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });
});
