/**
 * PinStore: where session pins live (Redis for a fleet, memory for a single peer).
 *
 * A pin is `sid -> (upstream, fence)` with an idle TTL. `sid` is the already-hashed session id
 * (session-key.ts `sessionIdFor`), never the raw cookie, so no client data reaches the store and key
 * length is bounded.
 *
 * Invariants every implementation keeps (checked by the shared tests in test/unit/sticky):
 * - createIfAbsent is first-writer-wins: racing callers all get the winner's (upstream, fence).
 * - compareAndMove changes a pin only when it still holds the expected (upstream, fence); the new
 *   fence is exactly expected fence + 1. A stale or replayed call is a no-op that returns the current pin.
 * - renew extends the TTL only when the fence still matches; it never changes upstream or fence.
 * - Fences of one sid only grow, across moves, idle expiry and (for Redis) a restart without
 *   persistence: a fresh pin's fence is seeded from the store's clock in microseconds and is never
 *   below `minFence + 1`. See docs/sticky.md "Fencing tokens".
 * - Every operation is safe to run twice or late (a timed-out command may still execute).
 * - Failures reject with StoreUnavailableError / StoreTimeoutError / StoreDataError (errors.ts); no
 *   operation waits longer than its budget.
 */

export interface Pin {
  readonly upstream: string;
  readonly fence: number;
  /** Remaining lease as the store saw it when answering (ms). */
  readonly ttlRemainingMs: number;
}

export type GetResult = ({ readonly outcome: 'found' } & Pin) | { readonly outcome: 'absent' };

export type CreateResult = {
  /** `created`: this call wrote the pin. `existing`: a pin was there already (adopt it). */
  readonly outcome: 'created' | 'existing';
  /** True when an existing pin's TTL was extended by this call (it was below `renewBelowMs`). */
  readonly renewed: boolean;
} & Pin;

export type MoveResult =
  /** `moved`: CAS matched, pin now at `to`. `created`: the pin had expired; a fresh one points at `to`. */
  | ({ readonly outcome: 'moved' | 'created' } & Pin)
  /** The pin no longer matched `expected`; this is the current pin, to adopt. */
  | ({ readonly outcome: 'conflict' } & Pin);

export type RenewResult =
  | ({ readonly outcome: 'renewed' | 'conflict' } & Pin)
  | { readonly outcome: 'absent' };

export interface StoreCallOptions {
  /** Hard bound on this call (ms); defaults to the store's own budget. */
  readonly budgetMs?: number;
}

/**
 * Fences at or above this (µs since 1970 ≈ year 2112) are not used as a seed floor: a corrupt or
 * hostile value near 2⁵³ must not push every later fence out of the exact-integer range.
 */
export const FENCE_FLOOR_CAP = 2 ** 52;

export interface CreateOptions extends StoreCallOptions {
  readonly ttlMs: number;
  /** Extend an existing pin to `ttlMs` when its remaining TTL is below this (ms). 0 = never. */
  readonly renewBelowMs: number;
  /** Highest fence the caller has seen for this sid (0 if none); a new pin's fence is above it. */
  readonly minFence: number;
  /**
   * Highest fence the caller has seen for ANY sid (0 if none). Only seeds a new pin (never raises an
   * existing one): after a failover to a replica whose clock is behind, new pins still get fences above
   * every fence this peer saw (docs/sticky.md "Fencing tokens").
   */
  readonly seedFloor?: number;
}

export interface MoveOptions extends StoreCallOptions {
  readonly ttlMs: number;
  readonly minFence: number;
  /** As CreateOptions.seedFloor (used when the pin vanished and the move creates it). */
  readonly seedFloor?: number;
}

export interface RenewOptions extends StoreCallOptions {
  readonly ttlMs: number;
}

export interface PinStore {
  readonly kind: 'redis' | 'memory';
  get(sid: string, opts?: StoreCallOptions): Promise<GetResult>;
  /** Get-or-create plus conditional renewal, in one round trip (the hot path on a cache miss). */
  createIfAbsent(sid: string, candidate: string, opts: CreateOptions): Promise<CreateResult>;
  compareAndMove(sid: string, expected: { readonly upstream: string; readonly fence: number }, to: string, opts: MoveOptions): Promise<MoveResult>;
  renew(sid: string, expectedFence: number, opts: RenewOptions): Promise<RenewResult>;
  /**
   * Which part of the store holds `sid` now (Redis Cluster: the node primary for its slot), so an
   * outage of one node opens only that node's breaker. Absent or '': the store is one unit.
   */
  shardOf?(sid: string): string;
  close(): Promise<void>;
}

/** sid charset: base64url, bounded; anything else is a caller bug (raw keys must be hashed first). */
const SID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;

export function assertSid(sid: string): void {
  if (!SID_PATTERN.test(sid)) throw new TypeError(`invalid session id (hash it with sessionIdFor first): ${JSON.stringify(sid.slice(0, 80))}`);
}

/** Upstream ids are configured identifiers; bound them so a pin stays ~100 bytes. */
const MAX_UPSTREAM_ID_LENGTH = 256;

export function assertUpstreamId(id: string): void {
  if (id.length === 0 || id.length > MAX_UPSTREAM_ID_LENGTH) throw new TypeError(`invalid upstream id length ${id.length}`);
}
