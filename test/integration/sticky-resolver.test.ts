/**
 * Several StickyResolver "peers" (each with its own ioredis connection) sharing one real
 * redis-server: agreement across peers (SL-01), first-writer-wins under a race (SL-02), one move per
 * session with fence + 1 when an upstream becomes unusable (SL-06), no flap-back (SL-07), adding an
 * upstream moves nobody, forged keys are just keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPinStore, StickyResolver, type StickyResult } from '../../src/sticky/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { Fleet } from '../unit/sticky/fixtures.js';

interface Peer {
  store: RedisPinStore;
  resolver: StickyResolver;
  fleet: Fleet;
}

let redis: RedisServer;
const peers: Peer[] = [];
const UPS = ['a', 'b', 'c'];

beforeAll(async () => {
  redis = await startRedis();
  for (let i = 0; i < 3; i++) {
    const store = new RedisPinStore({ url: redis.url, keyPrefix: 'it:', budgetMs: 500 });
    // Generous budget: these tests are about agreement, not speed, on a loaded 2-core runner.
    const resolver = new StickyResolver({ store, ttlMs: 60_000, cacheTtlMs: 200, budgetMs: 500 });
    peers.push({ store, resolver, fleet: new Fleet(UPS) });
  }
  for (const p of peers) expect(await p.store.connection.waitReady(5000)).toBe(true);
});

afterAll(async () => {
  for (const p of peers) {
    p.resolver.close();
    await p.store.close();
  }
  await redis?.stop();
});

function pinned(r: StickyResult): Extract<StickyResult, { kind: 'pinned' }> {
  if (r.kind !== 'pinned') throw new Error(`expected pinned, got ${JSON.stringify(r)}`);
  return r;
}

const anyPeer = (): Peer => peers[Math.floor(Math.random() * peers.length)]!;
const everyFleet = (fn: (f: Fleet) => void): void => peers.forEach((p) => fn(p.fleet));
const totals = () => peers.map((p) => p.resolver.stats()).reduce((a, s) => ({ created: a.created + s.created, moved: a.moved + s.moved }), { created: 0, moved: 0 });

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

async function newSessions(n: number): Promise<{ key: string; upstream: string; fence: number }[]> {
  const out: { key: string; upstream: string; fence: number }[] = [];
  await pool(Array.from({ length: n }, (_, i) => i), 25, async () => {
    const p = anyPeer();
    const r = pinned(await p.resolver.resolve(p.fleet.request(undefined)));
    out.push({ key: r.newSessionKey!, upstream: r.upstream, fence: r.fence });
  });
  return out;
}

describe('sticky resolver across peers sharing Redis', () => {
  it('SL-01: 200 sessions × 10 requests over random peers each reach exactly one upstream with one fence', async () => {
    const sessions = await newSessions(200);
    const seen = new Map<string, Set<string>>();
    const work = sessions.flatMap((s) => Array.from({ length: 10 }, () => s));
    await pool(work, 50, async (s) => {
      const p = anyPeer();
      const r = pinned(await p.resolver.resolve(p.fleet.request(s.key)));
      const set = seen.get(s.key) ?? new Set<string>();
      set.add(`${r.upstream}/${r.fence}`);
      seen.set(s.key, set);
      if (Math.random() < 0.1) await new Promise((res) => setTimeout(res, 50)); // let some cache entries age out
    });
    for (const s of sessions) expect([...seen.get(s.key)!]).toEqual([`${s.upstream}/${s.fence}`]);
    expect(new Set(sessions.map((s) => s.upstream)).size).toBe(3);
  });

  it('SL-02: 50 racing first requests for one key through all peers agree on one pin, created once', async () => {
    const before = totals().created;
    const key = 'race-key-0123456789';
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => peers[i % 3]!.resolver.resolve(peers[i % 3]!.fleet.request(key))));
    const distinct = new Set(rs.map((r) => `${pinned(r).upstream}/${pinned(r).fence}`));
    expect(distinct.size).toBe(1);
    expect(totals().created - before).toBe(1);
  });

  it('SL-06/07: an unusable upstream moves its sessions once (fence + 1), others stay, and nobody moves back', async () => {
    const sessions = await newSessions(90);
    const victim = 'b';
    const onVictim = sessions.filter((s) => s.upstream === victim);
    expect(onVictim.length).toBeGreaterThan(5);
    const movedBefore = totals().moved;
    everyFleet((f) => f.set(victim, { healthy: false }));
    const after = new Map<string, Set<string>>();
    await pool(sessions.flatMap((s) => [s, s, s]), 30, async (s) => {
      const p = anyPeer();
      const r = pinned(await p.resolver.resolve(p.fleet.request(s.key)));
      const set = after.get(s.key) ?? new Set<string>();
      set.add(`${r.upstream}/${r.fence}`);
      after.set(s.key, set);
    });
    for (const s of sessions) {
      const got = [...after.get(s.key)!];
      expect(got).toHaveLength(1);
      const [u, f] = got[0]!.split('/');
      if (s.upstream === victim) {
        expect(u).not.toBe(victim);
        expect(Number(f)).toBe(s.fence + 1);
      } else {
        expect(got[0]).toBe(`${s.upstream}/${s.fence}`);
      }
    }
    expect(totals().moved - movedBefore).toBe(onVictim.length);

    everyFleet((f) => f.set(victim, { healthy: true }));
    await new Promise((r) => setTimeout(r, 250)); // past the cache TTL: answers come from Redis
    for (const s of sessions) {
      for (const p of peers) {
        const r = pinned(await p.resolver.resolve(p.fleet.request(s.key)));
        expect(`${r.upstream}/${r.fence}`).toBe([...after.get(s.key)!][0]);
      }
    }
  });

  it('adding an upstream moves no pinned session, while new sessions use it', async () => {
    const sessions = await newSessions(60);
    everyFleet((f) => f.set('d', { state: 'active', healthy: true }));
    await new Promise((r) => setTimeout(r, 250));
    for (const s of sessions) {
      const p = anyPeer();
      expect(pinned(await p.resolver.resolve(p.fleet.request(s.key))).upstream).toBe(s.upstream);
    }
    const fresh = await newSessions(40);
    expect(fresh.some((s) => s.upstream === 'd')).toBe(true);
    everyFleet((f) => f.remove('d'));
  });

  it('a client-chosen (forged) key is just a key: it gets a pin, no crash, no new cookie', async () => {
    for (const key of ['forged', 'A'.repeat(128), 'eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo']) {
      const r = pinned(await peers[0]!.resolver.resolve(peers[0]!.fleet.request(key)));
      expect(r.newSessionKey).toBeUndefined();
      const again = pinned(await peers[1]!.resolver.resolve(peers[1]!.fleet.request(key)));
      expect(again.upstream).toBe(r.upstream);
    }
    const oversized = pinned(await peers[0]!.resolver.resolve(peers[0]!.fleet.request('A'.repeat(129))));
    expect(oversized.newSessionKey).toBeDefined();
  });
});
