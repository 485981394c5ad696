/**
 * RedisPinStore: pins shared by every peer through one Redis primary (Sentinel/Cluster optional).
 *
 * Key layout: `${keyPrefix}{<sid>}:pin`, a HASH { u: upstream id, f: fence, n: moves } with a PTTL
 * equal to the idle TTL. `<sid>` is already a truncated SHA-256 (session-key.ts), so no raw cookie
 * reaches Redis, and the `{…}` hash tag keeps any per-session companion key in the same Cluster slot.
 *
 * Each operation is one Lua script (redis-scripts.ts): one round trip, atomic, safe to run late.
 * Replies are validated here: anything that is not the expected shape becomes StoreDataError (counted
 * by the caller, never a crash).
 */
import { StoreDataError } from './errors.js';
import { assertSid, assertUpstreamId } from './pin-store.js';
import type { CreateOptions, CreateResult, GetResult, MoveOptions, MoveResult, PinStore, RenewOptions, RenewResult, StoreCallOptions } from './pin-store.js';
import { RedisConnection, type RedisConnectionOptions } from './redis-connection.js';

export interface RedisPinStoreOptions extends RedisConnectionOptions {
  /** Use an existing connection (shared with the lock facility); the store then does not close it. */
  readonly connection?: RedisConnection;
}

export class RedisPinStore implements PinStore {
  readonly kind = 'redis' as const;
  readonly connection: RedisConnection;
  private readonly ownsConnection: boolean;

  constructor(opts: RedisPinStoreOptions = {}) {
    this.ownsConnection = opts.connection === undefined;
    this.connection = opts.connection ?? new RedisConnection(opts);
  }

  /** The Redis key of a sid (exported for tests and operators' debugging). */
  static keyOf(sid: string): string {
    return `{${sid}}:pin`;
  }

  /** The Redis node that holds `sid`'s pin now (Cluster: its slot's primary; '' otherwise). */
  shardOf(sid: string): string {
    return this.connection.nodeFor(RedisPinStore.keyOf(sid));
  }

  async get(sid: string, opts: StoreCallOptions = {}): Promise<GetResult> {
    assertSid(sid);
    const r = asArray(await this.connection.script('mgPinGet', [RedisPinStore.keyOf(sid)], [], opts.budgetMs));
    if (int(r[0]) === 0) return { outcome: 'absent' };
    return { outcome: 'found', ...pinOf(r) };
  }

  async createIfAbsent(sid: string, candidate: string, opts: CreateOptions): Promise<CreateResult> {
    assertSid(sid);
    assertUpstreamId(candidate);
    const r = asArray(
      await this.connection.script('mgPinResolve', [RedisPinStore.keyOf(sid)], [candidate, ms(opts.ttlMs), ms(opts.renewBelowMs), fenceArg(opts.minFence), fenceArg(opts.seedFloor ?? 0)], opts.budgetMs),
    );
    const status = int(r[0]);
    if (status !== 0 && status !== 1) throw new StoreDataError(`unexpected resolve status ${String(r[0])}`);
    return { outcome: status === 1 ? 'created' : 'existing', renewed: int(r[4]) === 1, ...pinOf(r) };
  }

  async compareAndMove(sid: string, expected: { upstream: string; fence: number }, to: string, opts: MoveOptions): Promise<MoveResult> {
    assertSid(sid);
    assertUpstreamId(to);
    const r = asArray(
      await this.connection.scriptReplicated(
        'mgPinMove',
        [RedisPinStore.keyOf(sid)],
        [expected.upstream, fenceArg(expected.fence), to, ms(opts.ttlMs), fenceArg(opts.minFence), fenceArg(opts.seedFloor ?? 0)],
        opts.budgetMs,
      ),
    );
    const status = int(r[0]);
    const outcome = status === 1 ? 'moved' : status === 2 ? 'created' : status === 0 ? 'conflict' : undefined;
    if (outcome === undefined) throw new StoreDataError(`unexpected move status ${String(r[0])}`);
    return { outcome, ...pinOf(r) };
  }

  async renew(sid: string, expectedFence: number, opts: RenewOptions): Promise<RenewResult> {
    assertSid(sid);
    const r = asArray(await this.connection.script('mgPinRenew', [RedisPinStore.keyOf(sid)], [fenceArg(expectedFence), ms(opts.ttlMs)], opts.budgetMs));
    const status = int(r[0]);
    if (status === -1) return { outcome: 'absent' };
    if (status !== 0 && status !== 1) throw new StoreDataError(`unexpected renew status ${String(r[0])}`);
    return { outcome: status === 1 ? 'renewed' : 'conflict', ...pinOf(r) };
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.connection.close();
  }
}

function ms(v: number): string {
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`invalid duration ${v}`);
  return String(Math.floor(v));
}

function fenceArg(v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`invalid fence ${v}`);
  return String(v);
}

function asArray(v: unknown): unknown[] {
  if (!Array.isArray(v) || v.length === 0) throw new StoreDataError(`expected an array reply, got ${typeof v}`);
  return v;
}

function int(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d{1,16}$/.test(v)) return Number(v);
  throw new StoreDataError(`expected an integer, got ${typeof v}`);
}

function pinOf(r: unknown[]): { upstream: string; fence: number; ttlRemainingMs: number } {
  const u = r[1];
  const upstream = typeof u === 'string' ? u : Buffer.isBuffer(u) ? u.toString('utf8') : undefined;
  if (upstream === undefined || upstream.length === 0 || upstream.length > 256) throw new StoreDataError('pin has no valid upstream');
  const fence = int(r[2]);
  if (fence <= 0) throw new StoreDataError('pin fence is not positive');
  return { upstream, fence, ttlRemainingMs: Math.max(0, int(r[3])) };
}
