/**
 * Sticky sessions end to end: real meshgate peers sharing a real redis-server, real backends.
 * (Resolver-level properties — races, fences across restarts, SIGSTOP — are in sticky-*.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let backends: Backend[];
let redis: RedisServer;
let peers: PeerProcess[];

function config(id: string, dp: number, ap: number, onStoreDown: 'hash' | 'reject'): string {
  return `
node:
  id: ${id}
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
redis:
  url: ${redis.url}
  keyPrefix: "mgtest:"
  # Generous for a loaded 2-core CI machine: this file checks agreement, not the budget itself
  # (the resolver tests check that no call outlives its budget).
  budget: 400ms
routes:
  - { match: { pathPrefix: /r }, service: rejecting }
  - { match: { pathPrefix: / }, service: app }
services:
  app:
    balancer: round-robin
    sticky: { cookie: mg_session, ttl: 5m, onStoreDown: ${onStoreDown}, cacheTtl: 200ms }
    upstreams:
${backends.map((b) => `      - { id: ${b.name}, url: ${b.url} }`).join('\n')}
  rejecting:
    balancer: round-robin
    sticky: { header: x-session-id, ttl: 5m, onStoreDown: reject }
    upstreams:
${backends.map((b) => `      - { id: ${b.name}, url: ${b.url} }`).join('\n')}
`;
}

beforeAll(async () => {
  redis = await startRedis();
  backends = await Promise.all(['s1', 's2', 's3'].map((n) => startBackend(n)));
  peers = [];
  for (const id of ['gw-a', 'gw-b']) {
    const [dp, ap] = [await freePort(), await freePort()];
    peers.push(await startPeer(config(id, dp, ap, 'hash'), { dataPort: dp, adminPort: ap }));
  }
});

afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop('SIGKILL')));
  await Promise.all(backends.map((b) => b.close()));
  await redis?.stop();
});

async function get(peer: PeerProcess, cookie?: string, path = '/id', headers: Record<string, string> = {}): Promise<{ status: number; body: string; setCookie: string | null; fence: string | undefined; headers: Headers }> {
  const r = await fetch(`${peer.url}${path}`, { headers: { ...(cookie ? { cookie } : {}), ...headers } });
  return { status: r.status, body: await r.text(), setCookie: r.headers.get('set-cookie'), fence: undefined, headers: r.headers };
}

describe('sticky sessions across peers', () => {
  it('200 sessions alternating between two peers each reach exactly one upstream', async () => {
    const sessions: Array<{ cookie: string; upstream: string }> = [];
    for (let i = 0; i < 200; i++) {
      const first = await get(peers[i % 2]!);
      expect(first.status).toBe(200);
      expect(first.setCookie).toMatch(/^mg_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);
      sessions.push({ cookie: first.setCookie!.split(';')[0]!, upstream: first.body });
    }
    // Every backend got some sessions (the balancer spreads new sessions).
    expect(new Set(sessions.map((s) => s.upstream)).size).toBe(3);
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(sessions.map((s, i) => get(peers[(i + round + 1) % 2]!, s.cookie)));
      results.forEach((r, i) => {
        expect(r.status).toBe(200);
        expect(r.body).toBe(sessions[i]!.upstream);
        expect(r.setCookie).toBeNull();
      });
    }
  });

  it('forwards a rising fence and strips a client-sent one', async () => {
    const first = await get(peers[0]!, undefined, '/echo', { 'x-meshgate-fence': '999999999' });
    const body = JSON.parse(first.body) as { headers: Record<string, string> };
    expect(Number(body.headers['x-meshgate-fence'])).toBeGreaterThan(0);
    expect(body.headers['x-meshgate-fence']).not.toBe('999999999');
  });

  it('header sessions: a new key comes back in the same header and pins the session across peers', async () => {
    const first = await get(peers[0]!, undefined, '/r/id');
    expect(first.status).toBe(200);
    const key = first.headers.get('x-session-id');
    expect(key).toMatch(/^[A-Za-z0-9._~+/=-]{16,128}$/);
    for (let i = 0; i < 10; i++) {
      const r = await get(peers[i % 2]!, undefined, '/r/id', { 'x-session-id': key! });
      expect(r.body).toBe(first.body);
      expect(r.headers.get('x-session-id')).toBeNull();
    }
  });

  it('a forged or oversized cookie is just a key: it routes, never breaks', async () => {
    for (const cookie of ['mg_session=' + 'x'.repeat(5000), 'mg_session="<script>"', 'mg_session=;;;', 'mg_session=%00%ff']) {
      const r = await get(peers[1]!, cookie);
      expect(r.status).toBe(200);
    }
  });

  it('redis SIGKILLed: onStoreDown hash serves every request; reject answers 503 fast', async () => {
    const sessions: Array<{ cookie: string; upstream: string }> = [];
    for (let i = 0; i < 30; i++) {
      const r = await get(peers[0]!);
      sessions.push({ cookie: r.setCookie!.split(';')[0]!, upstream: r.body });
    }
    await redis.kill('SIGKILL');
    let moved = 0;
    for (let round = 0; round < 3; round++) {
      for (const [i, s] of sessions.entries()) {
        const r = await get(peers[i % 2]!, s.cookie);
        expect(r.status).toBe(200);
        if (r.body !== s.upstream) moved++;
      }
    }
    // Peer 0 knows every pin (last known); peer 1 may fall back to the hash for pins it never saw.
    expect(moved).toBeLessThan(sessions.length * 3);
    const rej = await get(peers[0]!, undefined, '/r/id', { 'x-session-id': 'abc' });
    expect(rej.status).toBe(503);
    expect(rej.headers.get('x-meshgate-reason')).toBe('sticky-store-down');
    await redis.restart();
  });
});
