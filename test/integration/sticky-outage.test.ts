/**
 * Redis outages under real processes: SIGKILL mid-traffic (SL-11, SL-16), restart without persistence
 * (SL-12), SIGSTOP as a slow store followed by SIGCONT (SL-14/15). Three peers, each its own ioredis
 * connection. Durations are asserted only as generous hang guards; real figures are in the bench.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPinStore, sessionIdFor, StickyResolver, type StickyResult } from '../../src/sticky/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { Fleet } from '../unit/sticky/fixtures.js';

const BUDGET = 50;
/**
 * Hang guard only, not a timing claim (figures are in bench/micro/sticky-resolve.ts): with ioredis
 * defaults a resolve would wait ~10 s (offline queue) or 1–2 s (reconnects); bounded by the budget it
 * takes ≤ 50 ms plus event-loop lag, which on a shared 2-core CI box under parallel tests reaches
 * hundreds of ms. 1 s separates the two cases without flaking.
 */
const HANG_GUARD_MS = 1000;
const COOL_DOWN = 300;
const PREFIX = 'out:';

interface Peer {
  store: RedisPinStore;
  resolver: StickyResolver;
  fleet: Fleet;
}

let redis: RedisServer;
let raw: Redis;
const peers: Peer[] = [];
let rejecter: Peer;

function makePeer(onStoreDown: 'hash' | 'reject'): Peer {
  const store = new RedisPinStore({ url: redis.url, keyPrefix: PREFIX, budgetMs: BUDGET });
  const resolver = new StickyResolver({ store, ttlMs: 60_000, cacheTtlMs: 100, budgetMs: BUDGET, onStoreDown, breaker: { failureThreshold: 5, coolDownMs: COOL_DOWN } });
  return { store, resolver, fleet: new Fleet(['a', 'b', 'c']) };
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: true });
  raw.on('error', () => undefined);
  for (let i = 0; i < 3; i++) peers.push(makePeer('hash'));
  rejecter = makePeer('reject');
  for (const p of [...peers, rejecter]) expect(await p.store.connection.waitReady(5000)).toBe(true);
});

afterAll(async () => {
  redis?.kill('SIGCONT');
  for (const p of [...peers, rejecter]) {
    p.resolver.close();
    await p.store.close();
  }
  raw?.disconnect();
  await redis?.stop();
});

function pinned(r: StickyResult): Extract<StickyResult, { kind: 'pinned' }> {
  if (r.kind !== 'pinned') throw new Error(`expected pinned, got ${JSON.stringify(r)}`);
  return r;
}

async function timed(p: Peer, key: string | undefined): Promise<{ r: StickyResult; ms: number }> {
  const t0 = performance.now();
  const r = await p.resolver.resolve(p.fleet.request(key));
  return { r, ms: performance.now() - t0 };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Create sessions and make every peer (and the rejecter) learn each pin. */
async function establish(n: number): Promise<{ key: string; upstream: string; fence: number }[]> {
  const out: { key: string; upstream: string; fence: number }[] = [];
  for (let i = 0; i < n; i++) {
    const r = pinned(await peers[i % 3]!.resolver.resolve(peers[i % 3]!.fleet.request(undefined)));
    out.push({ key: r.newSessionKey!, upstream: r.upstream, fence: r.fence });
  }
  await new Promise((r) => setTimeout(r, 120)); // past cacheTtl so the next reads hit Redis
  // Every peer must have *confirmed* each pin (on a loaded runner a call can time out and fall back).
  for (const s of out) {
    for (const p of [...peers, rejecter]) {
      await until(
        async () => {
          const r = await p.resolver.resolve(p.fleet.request(s.key));
          // On a loaded runner the rejecter may time out here and answer reject: try again.
          if (r.kind !== 'pinned') return false;
          expect(r.upstream).toBe(s.upstream);
          return !r.event.startsWith('fallback');
        },
        10_000,
        'a confirmed pin',
      );
    }
  }
  return out;
}

async function waitAllReady(): Promise<void> {
  for (const p of [...peers, rejecter]) expect(await p.store.connection.waitReady(15_000)).toBe(true);
}

describe('sticky sessions through Redis outages', () => {
  it('SL-11/16/12: SIGKILL mid-traffic → zero failures (hash) or quick rejects; restart → pins re-form in place with higher fences', async () => {
    const sessions = await establish(60);
    redis.kill('SIGKILL');
    // Past cacheTtl, so every resolve below must try the dead store. Without this, a fast machine ran
    // all five rounds on the pins establish() had just cached, and no last-known fallback happened.
    await new Promise((r) => setTimeout(r, 120));

    let slowest = 0;
    const failures: StickyResult[] = [];
    for (let round = 0; round < 5; round++) {
      for (const s of sessions) {
        const p = peers[(round + sessions.indexOf(s)) % 3]!;
        const { r, ms } = await timed(p, s.key);
        slowest = Math.max(slowest, ms);
        if (r.kind !== 'pinned' || r.upstream !== s.upstream) failures.push(r);
      }
      // Brand-new sessions are served too (on the hash).
      const { r, ms } = await timed(peers[round % 3]!, undefined);
      slowest = Math.max(slowest, ms);
      if (r.kind !== 'pinned') failures.push(r);
    }
    expect(failures).toEqual([]);
    expect(slowest).toBeLessThan(HANG_GUARD_MS);
    for (const p of peers) {
      const st = p.resolver.stats();
      expect(st.fallbackLastKnown).toBeGreaterThan(0);
      expect(st.storeErrors.unavailable + st.storeErrors.timeout).toBeLessThanOrEqual(5 + 10); // breaker bounded the attempts
    }

    // Fail-closed peer: sessions get a quick reject; keyless requests are still served.
    for (const s of sessions.slice(0, 10)) {
      const { r, ms } = await timed(rejecter, s.key);
      expect(r.kind).toBe('reject');
      expect(ms).toBeLessThan(HANG_GUARD_MS);
    }
    expect((await timed(rejecter, undefined)).r.kind).toBe('pinned');

    // Restart without persistence: every pin is gone.
    await redis.restart();
    await waitAllReady();
    expect(await raw.dbsize()).toBe(0);
    const after = new Map<string, Set<string>>();
    await until(
      async () => {
        for (const s of sessions) {
          const p = peers[Math.floor(Math.random() * 3)]!;
          const r = pinned(await p.resolver.resolve(p.fleet.request(s.key)));
          if (!r.event.startsWith('fallback')) {
            const set = after.get(s.key) ?? new Set<string>();
            set.add(`${r.upstream}/${r.fence}`);
            after.set(s.key, set);
          }
        }
        return peers.every((p) => p.resolver.stats().breaker === 'closed') && after.size === sessions.length;
      },
      15_000,
      'pins to re-form',
    );
    for (const s of sessions) {
      const got = [...after.get(s.key)!];
      expect(got).toHaveLength(1); // one pin per session after recovery: every peer agrees
      const [u, f] = got[0]!.split('/');
      expect(u).toBe(s.upstream); // re-formed where it was: no move at all
      expect(Number(f)).toBeGreaterThan(s.fence);
    }
  });

  it('SL-14/15: SIGSTOP (slow store) → answers within budget; after SIGCONT the late commands changed no pin', async () => {
    await waitAllReady();
    const sessions = await establish(40);
    const before = new Map<string, { u: string; f: string }>();
    for (const s of sessions) {
      const h = await raw.hmget(`${PREFIX}{${sessionIdFor('web', s.key)}}:pin`, 'u', 'f');
      before.set(s.key, { u: h[0]!, f: h[1]! });
    }
    redis.kill('SIGSTOP');
    try {
      let slowest = 0;
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 110)); // cache entries go stale: store calls are attempted
        for (const s of sessions) {
          const p = peers[(round + sessions.indexOf(s)) % 3]!;
          const { r, ms } = await timed(p, s.key);
          slowest = Math.max(slowest, ms);
          expect(pinned(r).upstream).toBe(s.upstream);
        }
        await timed(peers[round]!, undefined); // a create that will run late (a ghost write)
      }
      expect(slowest).toBeLessThan(HANG_GUARD_MS);
      expect(peers.some((p) => p.resolver.stats().storeErrors.timeout > 0)).toBe(true);
      expect(peers.some((p) => p.resolver.stats().breaker !== 'closed')).toBe(true);
    } finally {
      redis.kill('SIGCONT');
    }
    // Let the queued commands run, then compare every pin with its pre-stop value.
    await until(async () => (await raw.ping()) === 'PONG', 5000, 'redis to answer');
    for (const s of sessions) {
      const h = await raw.hmget(`${PREFIX}{${sessionIdFor('web', s.key)}}:pin`, 'u', 'f');
      expect({ u: h[0], f: h[1] }).toEqual(before.get(s.key));
    }
    // And routing recovers without moving anyone.
    await new Promise((r) => setTimeout(r, COOL_DOWN * 1.3));
    await until(
      async () => {
        for (const s of sessions) {
          const p = peers[sessions.indexOf(s) % 3]!;
          expect(pinned(await p.resolver.resolve(p.fleet.request(s.key))).upstream).toBe(s.upstream);
        }
        return peers.every((p) => p.resolver.stats().breaker === 'closed');
      },
      10_000,
      'breakers to close',
    );
  });
});
