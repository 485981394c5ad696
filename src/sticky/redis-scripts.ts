/**
 * Lua scripts for pins and locks, registered through ioredis's `scripts` option (EVALSHA with an
 * automatic EVAL on NOSCRIPT, which survives a restart or failover that empties the script cache;
 * ioredis #1081). Described in research/sticky-locks.md §8.3.
 *
 * Invariants every script keeps:
 * - Declares all keys in KEYS and touches only keys sharing one `{hash tag}` (Redis Cluster slot).
 * - O(1); reads everything it needs before its first write, so an error reply (WRONGTYPE, garbage)
 *   leaves nothing half-written (Redis does not roll back a script that fails midway).
 * - Idempotent or compare-and-set guarded: running it late (after a client timeout) or twice cannot
 *   flip a session or lower a fence.
 * - Numbers go to Redis via string.format('%d') and come back as integer replies: Lua 5.1's
 *   tostring() prints µs seeds as 1.7953562266223e+15 (research Appendix A.5). Fences stay below
 *   2^53, so JS numbers hold them exactly (µs since 1970 ≈ 1.8e15 in 2027; 2^53 ≈ 9.0e15).
 * - A fresh fence is seeded from Redis `TIME` in µs, never below minFence + 1 (see docs/sticky.md).
 *
 * Pin reply shape: { status, upstream, fence, pttlMs, renewed? }.
 */

export const PIN_GET = `
local cur = redis.call('HMGET', KEYS[1], 'u', 'f')
if not cur[1] then return {0} end
local f = tonumber(cur[2])
if not f then return redis.error_reply('MGBADPIN fence is not a number') end
return {1, cur[1], f, redis.call('PTTL', KEYS[1])}
`;

/** ARGV: candidate, ttlMs, renewBelowMs, minFence, seedFloor. status 1 = created, 0 = existing. */
export const PIN_RESOLVE = `
local k = KEYS[1]
local ttl = tonumber(ARGV[2])
local minFence = tonumber(ARGV[4])
local cur = redis.call('HMGET', k, 'u', 'f')
if cur[1] then
  local f = tonumber(cur[2])
  if not f then return redis.error_reply('MGBADPIN fence is not a number') end
  local pttl = redis.call('PTTL', k)
  if f < minFence then
    f = minFence + 1
    redis.call('HSET', k, 'f', string.format('%d', f))
  end
  local renewed = 0
  if pttl < tonumber(ARGV[3]) then
    redis.call('PEXPIRE', k, ttl)
    pttl = ttl
    renewed = 1
  end
  return {0, cur[1], f, pttl, renewed}
end
local t = redis.call('TIME')
local f = tonumber(t[1]) * 1000000 + tonumber(t[2])
local floor = math.max(minFence, tonumber(ARGV[5]) or 0)
if f <= floor then f = floor + 1 end
redis.call('HSET', k, 'u', ARGV[1], 'f', string.format('%d', f), 'n', '0')
redis.call('PEXPIRE', k, ttl)
return {1, ARGV[1], f, ttl, 0}
`;

/** ARGV: expectedUpstream, expectedFence, to, ttlMs, minFence, seedFloor. status 1 = moved, 2 = created, 0 = conflict. */
export const PIN_MOVE = `
local k = KEYS[1]
local ttl = tonumber(ARGV[4])
local cur = redis.call('HMGET', k, 'u', 'f')
if not cur[1] then
  local t = redis.call('TIME')
  local f = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local floor = math.max(tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6]) or 0)
  if f <= floor then f = floor + 1 end
  redis.call('HSET', k, 'u', ARGV[3], 'f', string.format('%d', f), 'n', '0')
  redis.call('PEXPIRE', k, ttl)
  return {2, ARGV[3], f, ttl}
end
local f = tonumber(cur[2])
if not f then return redis.error_reply('MGBADPIN fence is not a number') end
if cur[1] ~= ARGV[1] or f ~= tonumber(ARGV[2]) then
  return {0, cur[1], f, redis.call('PTTL', k)}
end
f = f + 1
redis.call('HSET', k, 'u', ARGV[3], 'f', string.format('%d', f))
redis.call('HINCRBY', k, 'n', 1)
redis.call('PEXPIRE', k, ttl)
return {1, ARGV[3], f, ttl}
`;

/** ARGV: expectedFence, ttlMs. status 1 = renewed, 0 = conflict (current pin returned), -1 = absent. */
export const PIN_RENEW = `
local k = KEYS[1]
local cur = redis.call('HMGET', k, 'u', 'f')
if not cur[1] then return {-1} end
local f = tonumber(cur[2])
if not f then return redis.error_reply('MGBADPIN fence is not a number') end
if f ~= tonumber(ARGV[1]) then return {0, cur[1], f, redis.call('PTTL', k)} end
redis.call('PEXPIRE', k, tonumber(ARGV[2]))
return {1, cur[1], f, tonumber(ARGV[2])}
`;

/**
 * KEYS: lock, fence counter. ARGV: owner, ttlMs, fenceTtlMs, seedFloor. Reply {1, fence} or {0, pttl}.
 * fence = max(stored + 1, TIME in µs, seedFloor + 1): strictly rising per name, still rising after a
 * restart that lost the counter (as long as the Redis host's clock does not step back), and above every
 * fence the caller saw even after a failover to a host whose clock is behind (seedFloor).
 */
export const LOCK_ACQUIRE = `
local stored = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') or 0, tonumber(ARGV[4]) or 0)
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local t = redis.call('TIME')
local f = tonumber(t[1]) * 1000000 + tonumber(t[2])
if f <= stored then f = stored + 1 end
redis.call('SET', KEYS[2], string.format('%d', f), 'PX', ARGV[3])
return {1, f}
`;

/** KEYS: lock. ARGV: owner, ttlMs. 1 = extended, 0 = not the owner (or gone). */
export const LOCK_EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`;

/** KEYS: lock. ARGV: owner. 1 = released, 0 = not the owner (or gone). */
export const LOCK_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

export const SCRIPTS = {
  mgPinGet: { lua: PIN_GET, numberOfKeys: 1 },
  mgPinResolve: { lua: PIN_RESOLVE, numberOfKeys: 1 },
  mgPinMove: { lua: PIN_MOVE, numberOfKeys: 1 },
  mgPinRenew: { lua: PIN_RENEW, numberOfKeys: 1 },
  mgLockAcquire: { lua: LOCK_ACQUIRE, numberOfKeys: 2 },
  mgLockExtend: { lua: LOCK_EXTEND, numberOfKeys: 1 },
  mgLockRelease: { lua: LOCK_RELEASE, numberOfKeys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
