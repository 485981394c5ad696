/**
 * ioredis can end a client on its own (a Sentinel +switch-master that lands while the client is
 * reconnecting leaves it in status `end`, for good): RedisConnection connects it again. The race
 * itself is timing-dependent, so the client is put in `end` directly here, as that race leaves it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../src/sticky/redis-connection.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/meshgate.js';

let redis: RedisServer;
beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => { await redis?.stop(); });

/** The ioredis client inside (test-only reach into a private field). */
const clientOf = (c: RedisConnection) => (c as unknown as { client: { status: string; disconnect(): void } }).client;

describe('a Redis client that ioredis ended on its own', () => {
  it('is connected again and serves; one closed by us stays closed', async () => {
    const conn = new RedisConnection({ url: redis.url });
    try {
      expect(await conn.waitReady(5_000)).toBe(true);
      clientOf(conn).disconnect(); // what the race ends in: status `end`, no reconnect scheduled by ioredis
      await waitFor(async () => conn.status === 'end', 5_000, () => `status ${conn.status}`);
      await waitFor(async () => conn.isReady(), 5_000, () => `not revived: ${conn.status}`);
      expect(await conn.command('PING', [])).toBe('PONG');
    } finally {
      await conn.close();
    }
    await new Promise((r) => setTimeout(r, 300)); // longer than the revive pause
    expect(conn.status).toBe('end');
  });
});
