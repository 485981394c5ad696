/**
 * Fences across a failover to a primary whose clock is BEHIND the old one, with the newest writes
 * lost (docs/sticky.md "Fencing tokens"). A real redis-server plays both primaries: pins and lock
 * fences are first written as the old primary would have (fences 10 s ahead of this server's TIME,
 * i.e. an old primary whose clock ran 10 s ahead), then FLUSHALL loses them (the replica never got
 * them) and this server, 10 s "behind", takes the writes. Without the seed floor the new fences are
 * the server's TIME in µs, i.e. ~10 s lower than fences already handed out; these tests fail then.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockManager, RedisLockBackend, RedisPinStore, StickyResolver, lockKeyOf, sessionIdFor, type StickyRequest } from '../../src/sticky/index.js';
import { cli } from '../helpers/redis-cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const BUDGET = 300;
const PREFIX = 'ff:';
const AHEAD_US = 10_000_000;
let redis: RedisServer;

async function serverTimeUs(): Promise<number> {
  const [s, us] = (await cli(redis.port, ['TIME'])).trim().split('\n').map(Number);
  return s! * 1e6 + us!;
}

function req(key: string): StickyRequest {
  return { service: 'web', sessionKey: key, usable: () => true, pickable: () => true, pick: () => 'u1', hashPick: () => 'u1' };
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

describe('fences after a failover to a primary whose clock is behind', () => {
  it('pins: a session this peer saw and one it never saw both get fences above every fence handed out before', async () => {
    const store = new RedisPinStore({ url: redis.url, keyPrefix: PREFIX, budgetMs: BUDGET });
    expect(await store.connection.waitReady(10_000)).toBe(true);
    const peer = new StickyResolver({ store, budgetMs: BUDGET, cacheTtlMs: 0 });
    const other = new StickyResolver({ store, budgetMs: BUDGET, cacheTtlMs: 0 });
    try {
      // The old primary (clock 10 s ahead) wrote these pins: "unseen" first, "seen" a little later.
      const ahead = (await serverTimeUs()) + AHEAD_US;
      await other.resolve(req('unseen-session'));
      await peer.resolve(req('seen-session'));
      const keyOf = (k: string): string => PREFIX + RedisPinStore.keyOf(sessionIdFor('web', k));
      await cli(redis.port, ['HSET', keyOf('unseen-session'), 'f', String(ahead)]);
      await cli(redis.port, ['HSET', keyOf('seen-session'), 'f', String(ahead + 1000)]);
      const before = { unseen: ahead, seen: ahead + 1000 };
      // This peer confirms "seen" (fence ahead + 1000); it never resolves "unseen".
      expect(await peer.resolve(req('seen-session'))).toMatchObject({ kind: 'pinned', fence: before.seen });

      // Failover: the new primary lost those writes, and its clock is 10 s behind the old one.
      await cli(redis.port, ['FLUSHALL']);
      expect(await serverTimeUs()).toBeLessThan(before.unseen);

      const seen = await peer.resolve(req('seen-session'));
      const unseen = await peer.resolve(req('unseen-session'));
      expect(seen.kind === 'pinned' && seen.fence).toBeGreaterThan(before.seen);
      expect(unseen.kind === 'pinned' && unseen.fence).toBeGreaterThan(before.unseen);
      // A brand-new session on this peer also starts above everything the peer saw.
      const fresh = await peer.resolve(req('fresh-session'));
      expect(fresh.kind === 'pinned' && fresh.fence).toBeGreaterThan(before.seen);
    } finally {
      peer.close();
      other.close();
      await store.close();
    }
  });

  it('the seed floor only seeds: an existing pin below it is not rewritten (no write per request)', async () => {
    const store = new RedisPinStore({ url: redis.url, keyPrefix: PREFIX, budgetMs: BUDGET });
    expect(await store.connection.waitReady(10_000)).toBe(true);
    try {
      const created = await store.createIfAbsent('a'.repeat(22), 'u1', { ttlMs: 60_000, renewBelowMs: 0, minFence: 0, budgetMs: BUDGET });
      const again = await store.createIfAbsent('a'.repeat(22), 'u2', { ttlMs: 60_000, renewBelowMs: 0, minFence: 0, seedFloor: created.fence + 1e9, budgetMs: BUDGET });
      expect(again).toMatchObject({ outcome: 'existing', upstream: 'u1', fence: created.fence });
      const seeded = await store.createIfAbsent('b'.repeat(22), 'u1', { ttlMs: 60_000, renewBelowMs: 0, minFence: 0, seedFloor: created.fence + 1e9, budgetMs: BUDGET });
      expect(seeded).toMatchObject({ outcome: 'created', fence: created.fence + 1e9 + 1 });
    } finally {
      await store.close();
    }
  });

  it('locks: a lock name acquired after the failover gets a fence above the one granted before', async () => {
    const backend = new RedisLockBackend({ url: redis.url, keyPrefix: PREFIX, budgetMs: BUDGET });
    expect(await backend.connection.waitReady(10_000)).toBe(true);
    const locks = new LockManager({ backend, retries: 0, budgetMs: BUDGET });
    try {
      await cli(redis.port, ['SET', PREFIX + lockKeyOf('nightly').fence, String((await serverTimeUs()) + AHEAD_US)]);
      const before = await locks.acquire('nightly', 5000);
      await before.release();
      await cli(redis.port, ['FLUSHALL']);
      expect(await serverTimeUs()).toBeLessThan(before.fence);
      const after = await locks.acquire('nightly', 5000);
      expect(after.fence).toBeGreaterThan(before.fence);
      await after.release();
    } finally {
      await backend.close();
    }
  });
});
