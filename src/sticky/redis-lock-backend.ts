/**
 * RedisLockBackend: the lock facility's primitives as Lua scripts on one Redis primary (lock.ts
 * explains why that is efficiency-grade). Keys: `${keyPrefix}lock:{<name>}` (owner token, PX = TTL)
 * and `${keyPrefix}lock:{<name>}:fence` (counter, PX = FENCE_KEY_TTL_MS); one hash tag, one slot.
 */
import { StoreDataError } from './errors.js';
import { DEFAULT_LOCK_BUDGET_MS, lockKeyOf, type LockBackend } from './lock.js';
import { RedisConnection, type RedisConnectionOptions } from './redis-connection.js';

/**
 * Fence counters live 7 days after the last acquisition. Their loss is harmless (the next fence is
 * seeded from Redis TIME in µs, above any earlier one); the TTL only stops unused names piling up.
 */
const FENCE_KEY_TTL_MS = 7 * 24 * 3600_000;

export class RedisLockBackend implements LockBackend {
  readonly connection: RedisConnection;
  private readonly ownsConnection: boolean;

  constructor(opts: RedisConnectionOptions & { readonly connection?: RedisConnection } = {}) {
    this.ownsConnection = opts.connection === undefined;
    // Own connection: its ioredis commandTimeout matches the lock budget (a shared pin-store
    // connection would cut lock calls at the request path's 50 ms).
    this.connection = opts.connection ?? new RedisConnection({ ...opts, budgetMs: opts.budgetMs ?? DEFAULT_LOCK_BUDGET_MS });
  }

  async acquire(name: string, owner: string, ttlMs: number, budgetMs: number, seedFloor = 0): Promise<{ acquired: true; fence: number } | { acquired: false; retryAfterMs: number }> {
    const k = lockKeyOf(name);
    const r = await this.connection.script('mgLockAcquire', [k.lock, k.fence], [owner, ttlMs, FENCE_KEY_TTL_MS, Math.max(0, Math.floor(seedFloor))], budgetMs);
    if (!Array.isArray(r) || typeof r[0] !== 'number' || typeof r[1] !== 'number') throw new StoreDataError('unexpected lock acquire reply');
    if (r[0] === 1) {
      if (!Number.isSafeInteger(r[1]) || r[1] <= 0) throw new StoreDataError('lock fence out of range');
      return { acquired: true, fence: r[1] };
    }
    return { acquired: false, retryAfterMs: Math.max(0, r[1]) };
  }

  async extend(name: string, owner: string, ttlMs: number, budgetMs: number): Promise<boolean> {
    return (await this.connection.script('mgLockExtend', [lockKeyOf(name).lock], [owner, ttlMs], budgetMs)) === 1;
  }

  async release(name: string, owner: string, budgetMs: number): Promise<boolean> {
    return (await this.connection.script('mgLockRelease', [lockKeyOf(name).lock], [owner], budgetMs)) === 1;
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.connection.close();
  }
}
