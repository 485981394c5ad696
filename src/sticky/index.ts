/**
 * Public surface of src/sticky (style.md: other folders import this file only).
 *
 * Sticky sessions (DESIGN.md §5, §12):
 *   const store = redis ? new RedisPinStore({ topology, keyPrefix }) : new MemoryPinStore();
 *     // topology: {kind:'single', url} | {kind:'sentinel', sentinels, name} | {kind:'cluster', nodes}
 *     // store.connection.topology(): primaries (Cluster: slot ranges), failovers seen, last error
 *   const resolver = new StickyResolver({ store, ttlMs, onStoreDown, bus, onMetric });
 *   // per request of a sticky service:
 *   const key = sessionKeyFrom(req.headers, { cookie: 'mg_session' });
 *   const r = await resolver.resolve({ service, sessionKey: key, usable, pickable, pick, hashPick });
 *   r.kind === 'pinned' → forward to r.upstream with `${FENCE_HEADER}: ${r.fence}` (strip the client's
 *     copy first); if r.newSessionKey, add Set-Cookie: sessionCookie(name, r.newSessionKey, { secure })
 *   r.kind === 'reject' → 503 + Retry-After: 1 (onStoreDown: reject and the store is down)
 *   r.kind === 'none'   → 503 (no eligible upstream)
 *   Long-lived connections: call resolver.renew(service, key) every ttl/3 while open.
 *
 * Locks (operators' jobs; efficiency-grade — see lock.ts):
 *   const locks = new LockManager({ backend: new RedisLockBackend({ url }) });
 *   await locks.runWhileHeld('nightly-report', 30_000, async (signal, lease) => { ... lease.fence ... });
 *
 * Defaults and why: resolver.ts (ttl 30 min, cache 1 s, renew at 1/3, budget 50 ms, breaker 5 / 2 s),
 * redis-connection.ts (ioredis safety options), lock.ts (lease 30 s, extend every 10 s, 10 retries of
 * 200 ± 100 ms). Narrative and trade-offs: docs/sticky.md.
 */
export { FENCE_HEADER, MAX_SESSION_KEY_LENGTH, isValidSessionKey, newSessionKey, sessionCookie, sessionIdFor, sessionKeyFrom } from './session-key.js';
export type { CreateOptions, CreateResult, GetResult, MoveOptions, MoveResult, Pin, PinStore, RenewOptions, RenewResult, StoreCallOptions } from './pin-store.js';
export { MemoryPinStore, type MemoryPinStoreOptions } from './memory-pin-store.js';
export { REMOTE_PIN_BUDGET_MS, RemotePinStore, servePinCall, type RemotePinCall } from './remote-pin-store.js';
export { RedisPinStore, type RedisPinStoreOptions } from './redis-pin-store.js';
export { RedisConnection, DEFAULT_BUDGET_MS, type RedisConnectionOptions } from './redis-connection.js';
export { CLUSTER_SLOTS, failoversBetween, primariesOf, slotOf, slotRanges, type HostPort, type PrimaryView, type RedisTopology, type TopologyKind, type TopologyStatus } from './redis-topology.js';
export {
  StickyResolver,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_RENEW_FRACTION,
  DEFAULT_TTL_MS,
  type StickyEvent,
  type StickyMetric,
  type StickyRequest,
  type StickyResolverOptions,
  type StickyResult,
  type StickyStats,
  type StoreOp,
} from './resolver.js';
export { Breaker, type BreakerState } from './breaker.js';
export { LockManager, MemoryLockBackend, DEFAULT_LOCK_BUDGET_MS, DEFAULT_LOCK_TTL_MS, lockKeyOf, type AcquireOptions, type Lease, type LockBackend, type LockManagerOptions } from './lock.js';
export { RedisLockBackend } from './redis-lock-backend.js';
export {
  LockArgumentError,
  LockContendedError,
  LockLostError,
  LockUnavailableError,
  StickyError,
  StoreDataError,
  StoreTimeoutError,
  StoreUnavailableError,
  type StickyErrorCode,
} from './errors.js';
export { monotonicClock } from './monotonic-clock.js';
