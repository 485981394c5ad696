/**
 * RedisPinStore against a real redis-server: the shared conformance suite, plus what only Redis can
 * show — key layout (hashed sid inside a hash tag), exact µs fences, garbage/wrong-type data turning
 * into StoreDataError, NOSCRIPT recovery and fences above old ones after a restart without persistence.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPinStore, sessionIdFor, StoreDataError, StoreUnavailableError } from '../../src/sticky/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { pinStoreConformance } from '../unit/sticky/pin-store-conformance.js';

let redis: RedisServer;
let raw: Redis;
const stores: RedisPinStore[] = [];
const prefix = 'mgtest:';

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  raw.on('error', () => undefined); // the test kills redis-server on purpose
});
afterAll(async () => {
  for (const s of stores) await s.close();
  raw?.disconnect();
  await redis?.stop();
});

async function ready(s: RedisPinStore): Promise<RedisPinStore> {
  stores.push(s);
  expect(await s.connection.waitReady(5000)).toBe(true);
  return s;
}

const make = (): RedisPinStore => {
  const s = new RedisPinStore({ url: redis.url, keyPrefix: prefix, budgetMs: 1000 });
  stores.push(s);
  return s;
};

describe('RedisPinStore', () => {
  beforeAll(async () => {
    await ready(make());
  });

  pinStoreConformance(
    'redis',
    () => {
      const s = make();
      const readyOnce = s.connection.waitReady(5000);
      // Commands before 'ready' fail fast (no offline queue); the conformance cases wait for it.
      return new Proxy(s, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv) as unknown;
          if (typeof v !== 'function' || prop === 'close') return v;
          return async (...args: unknown[]) => {
            await readyOnce;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    },
    async (_s, sid) => {
      await raw.del(`${prefix}${RedisPinStore.keyOf(sid)}`);
    },
  );

  it('stores a hashed id inside a hash tag, never the raw key, with the idle TTL', async () => {
    const s = await ready(make());
    const id = sessionIdFor('web', 'raw-cookie-value-123');
    await s.createIfAbsent(id, 'u1', { ttlMs: 5000, renewBelowMs: 0, minFence: 0 });
    const keys = await raw.keys(`${prefix}*`);
    expect(keys).toContain(`${prefix}{${id}}:pin`);
    expect(keys.some((k) => k.includes('raw-cookie'))).toBe(false);
    const pttl = await raw.pttl(`${prefix}{${id}}:pin`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5000);
  });

  it('seeds fences from Redis TIME in µs, exactly (no float formatting loss)', async () => {
    const s = await ready(make());
    const id = sessionIdFor('web', 'fence-exact');
    const [sec, usec] = (await raw.time()) as [string | number, string | number];
    const before = Number(sec) * 1e6 + Number(usec);
    const r = await s.createIfAbsent(id, 'u1', { ttlMs: 5000, renewBelowMs: 0, minFence: 0 });
    expect(r.fence).toBeGreaterThanOrEqual(before);
    expect(r.fence).toBeLessThan(before + 60e6);
    expect(await raw.hget(`${prefix}{${id}}:pin`, 'f')).toBe(String(r.fence));
  });

  it('garbage or wrong-type data is a StoreDataError, not a crash', async () => {
    const s = await ready(make());
    const wrongType = sessionIdFor('web', 'wrong-type');
    await raw.set(`${prefix}{${wrongType}}:pin`, 'hello');
    await expect(s.createIfAbsent(wrongType, 'u1', { ttlMs: 5000, renewBelowMs: 0, minFence: 0 })).rejects.toBeInstanceOf(StoreDataError);
    await expect(s.get(wrongType)).rejects.toBeInstanceOf(StoreDataError);
    const garbage = sessionIdFor('web', 'garbage');
    await raw.hset(`${prefix}{${garbage}}:pin`, 'u', 'u1', 'f', 'not-a-number');
    await expect(s.createIfAbsent(garbage, 'u1', { ttlMs: 5000, renewBelowMs: 0, minFence: 0 })).rejects.toBeInstanceOf(StoreDataError);
    await expect(s.compareAndMove(garbage, { upstream: 'u1', fence: 1 }, 'u2', { ttlMs: 5000, minFence: 0 })).rejects.toBeInstanceOf(StoreDataError);
    await expect(s.renew(garbage, 1, { ttlMs: 5000 })).rejects.toBeInstanceOf(StoreDataError);
    // The failed scripts wrote nothing.
    expect(await raw.type(`${prefix}{${wrongType}}:pin`)).toBe('string');
    expect(await raw.hget(`${prefix}{${garbage}}:pin`, 'u')).toBe('u1');
  });

  it('fails fast while Redis is down and recovers after a restart: NOSCRIPT handled, new fences above old', async () => {
    const s = await ready(make());
    const ids = Array.from({ length: 20 }, (_, i) => sessionIdFor('web', `restart-${i}`));
    const before = await Promise.all(ids.map((id) => s.createIfAbsent(id, 'u1', { ttlMs: 60_000, renewBelowMs: 0, minFence: 0 })));
    redis.kill('SIGKILL');
    // Wait for the client to notice (bounded polling), then calls must fail at once.
    const t0 = Date.now();
    while (s.connection.isReady() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    await expect(s.get(ids[0]!)).rejects.toBeInstanceOf(StoreUnavailableError);
    await redis.restart();
    expect(await s.connection.waitReady(10_000)).toBe(true);
    for (let i = 0; i < ids.length; i++) {
      const after = await s.createIfAbsent(ids[i]!, 'u2', { ttlMs: 60_000, renewBelowMs: 0, minFence: 0 });
      expect(after.outcome).toBe('created');
      expect(after.fence).toBeGreaterThan(before[i]!.fence);
    }
  });
});
