/**
 * The lock facility against a real redis-server: mutual exclusion with strictly rising fences under
 * contention (SL-17, SL-22), owner-only release/extend (SL-18), auto-extension (SL-19), the lost
 * signal firing before the lease runs out when Redis stalls (SL-20), fences above old ones after a
 * restart without persistence (SL-21), fast failure when Redis is down (SL-23).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LockContendedError,
  LockLostError,
  LockManager,
  LockUnavailableError,
  lockKeyOf,
  monotonicClock,
  RedisLockBackend,
} from '../../src/sticky/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Store budget for these tests. The lock is off the request path, and a loaded 2-core runner (parallel
 * test files) can delay a loopback round trip past 50 ms, which would turn "slow" into "unavailable".
 */
const BUDGET = 300;
const PREFIX = 'lk:';
let redis: RedisServer;
let raw: Redis;
const backends: RedisLockBackend[] = [];

async function backend(): Promise<RedisLockBackend> {
  const b = new RedisLockBackend({ url: redis.url, keyPrefix: PREFIX, budgetMs: BUDGET });
  backends.push(b);
  expect(await b.connection.waitReady(10_000)).toBe(true);
  return b;
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  raw.on('error', () => undefined);
});

afterAll(async () => {
  redis?.kill('SIGCONT');
  for (const b of backends) await b.close();
  raw?.disconnect();
  await redis?.stop();
});

describe('lock facility on Redis', () => {
  it('SL-17/22: 8 workers × 25 runs on one name never overlap; fences rise strictly in acquisition order; no expired lease handed out', async () => {
    const managers = await Promise.all(Array.from({ length: 4 }, async () => new LockManager({ backend: await backend(), retries: 2000, retryDelayMs: 10, jitterMs: 5, budgetMs: BUDGET })));
    let inside = 0;
    let overlaps = 0;
    let expiredHandedOut = 0;
    const fences: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        const m = managers[w % managers.length]!;
        for (let i = 0; i < 25; i++) {
          await m.runWhileHeld('shared-job', 5000, async (_signal, lease) => {
            if (lease.validUntilMs <= monotonicClock.nowMs()) expiredHandedOut++;
            if (++inside > 1) overlaps++;
            fences.push(lease.fence);
            await new Promise((r) => setTimeout(r, 5 + Math.random() * 15));
            inside--;
          });
        }
      }),
    );
    expect(overlaps).toBe(0);
    expect(expiredHandedOut).toBe(0);
    expect(fences).toHaveLength(200);
    for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
  });

  it('SL-18: release/extend with a foreign owner return false and the lock stays; double release is harmless', async () => {
    const b = await backend();
    const m = new LockManager({ backend: b, retries: 0, budgetMs: BUDGET });
    const lease = await m.acquire('owned', 5000);
    expect(await b.release('owned', 'not-the-owner', BUDGET)).toBe(false);
    expect(await b.extend('owned', 'not-the-owner', 60_000, BUDGET)).toBe(false);
    expect(await raw.get(`${PREFIX}${lockKeyOf('owned').lock}`)).toBe(lease.owner);
    expect(await raw.pttl(`${PREFIX}${lockKeyOf('owned').lock}`)).toBeLessThanOrEqual(5000);
    await expect(m.acquire('owned', 5000)).rejects.toBeInstanceOf(LockContendedError);
    expect(await lease.release()).toBe(true);
    expect(await lease.release()).toBe(false);
    expect(await raw.exists(`${PREFIX}${lockKeyOf('owned').lock}`)).toBe(0);
  });

  // SL-19 asks for 300 ms held 1.5 s; we use 1 s held 3 s (same 3 extension periods per TTL) so a
  // loaded runner's event-loop lag cannot eat the 0.2·TTL guard.
  it('SL-19: a 1 s lease held for 3 s stays held; nobody else gets it meanwhile', async () => {
    const m = new LockManager({ backend: await backend(), budgetMs: BUDGET });
    const other = new LockManager({ backend: await backend(), retries: 0, budgetMs: BUDGET });
    let stolen = 0;
    await m.runWhileHeld('long-job', 1000, async (signal) => {
      const end = Date.now() + 3000;
      while (Date.now() < end) {
        await other.acquire('long-job', 1000).then(
          () => stolen++,
          (e: unknown) => expect(e).toBeInstanceOf(LockContendedError),
        );
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(signal.aborted).toBe(false);
    });
    expect(stolen).toBe(0);
    expect(m.activeRuns).toBe(0);
  });

  it('SL-20: Redis stalls (SIGSTOP) while held → signal aborts with LockLostError before validUntil; timers cleared', async () => {
    const m = new LockManager({ backend: await backend(), budgetMs: BUDGET });
    let abortedAt = Infinity;
    let validUntil = 0;
    await expect(
      m.runWhileHeld('stalled-job', 2000, async (signal, lease) => {
        redis.kill('SIGSTOP');
        try {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          abortedAt = monotonicClock.nowMs();
          validUntil = lease.validUntilMs;
          expect(signal.reason).toBeInstanceOf(LockLostError);
        } finally {
          redis.kill('SIGCONT');
        }
      }),
    ).rejects.toBeInstanceOf(LockLostError);
    expect(abortedAt).toBeLessThan(validUntil);
    expect(m.activeRuns).toBe(0);
  });

  it('SL-21/23: acquire fails fast while Redis is down; after a restart without persistence the fence is above the old one', async () => {
    const b = await backend();
    const m = new LockManager({ backend: b, retries: 3, budgetMs: BUDGET });
    const first = await m.acquire('restart-job', 5000);
    redis.kill('SIGKILL');
    const t0 = Date.now();
    while (b.connection.isReady() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const t1 = performance.now();
    await expect(m.acquire('restart-job', 5000)).rejects.toBeInstanceOf(LockUnavailableError);
    expect(performance.now() - t1).toBeLessThan(BUDGET * (3 + 1) * 4); // hang guard, not a timing claim
    await redis.restart();
    expect(await b.connection.waitReady(15_000)).toBe(true);
    const second = await m.acquire('restart-job', 5000);
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.release();
  });
});
