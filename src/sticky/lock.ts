/**
 * General lock facility (DESIGN.md §5): acquire / extend / release / runWhileHeld, each lease with a
 * strictly rising fencing token. For operators' own coordination jobs, not for the request path.
 *
 * EFFICIENCY-GRADE, NOT CORRECTNESS-GRADE (Kleppmann, "How to do distributed locking", 2016). The
 * lock lives on one Redis primary with an expiring lease. It keeps two holders apart as long as
 * (a) Redis keeps its data (no failover that loses the last writes, no restart without persistence),
 * (b) the holder is not paused (GC, SIGSTOP, swapped out) past its lease, and (c) the Redis host's
 * clock does not jump. When any of these fails, two holders can overlap. That is fine when the lock
 * only saves duplicate work. When overlap would corrupt data, the protected resource must check the
 * fencing token: remember the highest token seen and refuse lower ones. Redlock would not fix this
 * (it has no fencing tokens and assumes bounded pauses and clock drift; research §1.3–1.4), so we do
 * not implement it.
 *
 * Invariants:
 * - Owner-only extend/release: each acquisition has a fresh 128-bit random owner token checked in Lua.
 * - Fences rise strictly per lock name: max(stored + 1, Redis TIME µs), so also across a Redis
 *   restart that lost the counter (while the host clock does not step back).
 * - A lease's validity is measured on a monotonic clock from *before* the acquire was sent, minus a
 *   drift of driftFactor·ttl + 2 ms (node-redlock; Redis expiry has 1 ms precision). A lease whose
 *   validity is already over when the reply arrives is released and never returned (node-redlock #296).
 * - runWhileHeld aborts its signal (reason: LockLostError) at validUntil − guard if no extension
 *   succeeded by then, so the holder hears "lost" while the lease is still valid; its timers are all
 *   cleared when it returns; fn's error is never masked by a release error.
 * - Store outages fail fast as LockUnavailableError (no 10 s ioredis wait, no retry window).
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { LockArgumentError, LockContendedError, LockLostError, LockUnavailableError, StoreDataError } from './errors.js';
import { monotonicClock } from './monotonic-clock.js';
import { FENCE_FLOOR_CAP } from './pin-store.js';

/** The primitive operations a lock store offers (Redis or memory). Failures throw Store*Error. */
export interface LockBackend {
  /**
   * `seedFloor`: the highest fence this caller has seen for any name; a granted fence is above it, so a
   * failover to a host whose clock is behind (and lost the fence counter) cannot hand out a lower one.
   */
  acquire(name: string, owner: string, ttlMs: number, budgetMs: number, seedFloor?: number): Promise<{ acquired: true; fence: number } | { acquired: false; retryAfterMs: number }>;
  extend(name: string, owner: string, ttlMs: number, budgetMs: number): Promise<boolean>;
  release(name: string, owner: string, budgetMs: number): Promise<boolean>;
}

export interface AcquireOptions {
  /** Extra attempts after the first while someone else holds it. Default 10 (node-redlock). */
  readonly retries?: number;
  /** Base delay between attempts (ms). Default 200 (node-redlock). */
  readonly retryDelayMs?: number;
  /** Uniform ± jitter on that delay (ms), to desynchronise contenders. Default 100 (node-redlock code). */
  readonly jitterMs?: number;
}

export interface LockManagerOptions extends AcquireOptions {
  readonly backend: LockBackend;
  /** Default lease (ms). 30 000: Redisson lockWatchdogTimeout. */
  readonly ttlMs?: number;
  /** Drift allowance as a fraction of the TTL (plus 2 ms). Default 0.01 (node-redlock driftFactor). */
  readonly driftFactor?: number;
  /** Bound on one store call (ms). Default DEFAULT_LOCK_BUDGET_MS. */
  readonly budgetMs?: number;
  /** Monotonic clock (ms). Default performance.now. */
  readonly clock?: Clock;
  readonly random?: () => number;
}

export const DEFAULT_LOCK_TTL_MS = 30_000;
export const DEFAULT_LOCK_RETRIES = 10;
export const DEFAULT_LOCK_RETRY_DELAY_MS = 200;
export const DEFAULT_LOCK_JITTER_MS = 100;
export const DEFAULT_DRIFT_FACTOR = 0.01;
/**
 * Bound on one lock call (ms). Larger than the request path's 50 ms: locks are taken by background
 * jobs, where a slow-but-working Redis should still grant them, and a timed-out acquire is ambiguous
 * (it may have succeeded) so we would rather wait a little than fail. Still far below the 30 s lease
 * and the 0.2·TTL abort guard, so a stalled Redis is detected while the lease is valid.
 */
export const DEFAULT_LOCK_BUDGET_MS = 250;
/** Redis expires keys with 1 ms precision; node-redlock adds 2 ms on top of the drift factor. */
const DRIFT_FLOOR_MS = 2;
/**
 * runWhileHeld gives up this share of the TTL before the lease ends, so the abort reaches the holder
 * while the lease is still valid even if our timer fires late on a busy event loop. With extensions
 * every TTL/3, a holder has from TTL/3 to 0.8·TTL (≈ 15 s for 30 s leases) to get an extension through.
 */
const LOST_GUARD_FRACTION = 0.2;
/** Extension period: TTL/3, Redisson's watchdog rhythm. */
const EXTEND_FRACTION = 1 / 3;
/** Between failed extension attempts, wait TTL/20 (≥ 10 ms) so a short outage is ridden out. */
const EXTEND_RETRY_FRACTION = 1 / 20;
/** Lock names appear in Redis keys inside a {hash tag}; braces and spaces are not allowed. */
const LOCK_NAME = /^[A-Za-z0-9._:/-]{1,128}$/;
/** Shortest TTL accepted: below this the drift and the timers eat the lease. */
const MIN_TTL_MS = 50;

export interface Lease {
  readonly name: string;
  readonly owner: string;
  readonly fence: number;
  readonly ttlMs: number;
  /** Monotonic ms (the manager's clock) until which the lease is safe to rely on. */
  readonly validUntilMs: number;
  /** False once released or known lost. */
  readonly held: boolean;
  /** Extend to `ttlMs` (default the lease's TTL) from now. Throws LockLostError / LockUnavailableError. */
  extend(ttlMs?: number): Promise<void>;
  /** Owner-only release; idempotent. true if this call deleted the lock. Throws LockUnavailableError. */
  release(): Promise<boolean>;
}

export class LockManager {
  private readonly backend: LockBackend;
  private readonly ttlMs: number;
  private readonly driftFactor: number;
  private readonly budgetMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly defaults: Required<AcquireOptions>;
  private readonly running = new Set<() => void>();
  /** Highest fence this manager was granted (any name): the seedFloor of every acquire. */
  private highestFence = 0;

  constructor(opts: LockManagerOptions) {
    this.backend = opts.backend;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    this.driftFactor = opts.driftFactor ?? DEFAULT_DRIFT_FACTOR;
    this.budgetMs = opts.budgetMs ?? DEFAULT_LOCK_BUDGET_MS;
    this.clock = opts.clock ?? monotonicClock;
    this.random = opts.random ?? Math.random;
    this.defaults = {
      retries: opts.retries ?? DEFAULT_LOCK_RETRIES,
      retryDelayMs: opts.retryDelayMs ?? DEFAULT_LOCK_RETRY_DELAY_MS,
      jitterMs: opts.jitterMs ?? DEFAULT_LOCK_JITTER_MS,
    };
  }

  /** Acquire `name` for `ttlMs`. Throws LockContendedError, LockUnavailableError or LockArgumentError. */
  async acquire(name: string, ttlMs: number = this.ttlMs, opts: AcquireOptions = {}): Promise<Lease> {
    checkArgs(name, ttlMs);
    const retries = Math.max(0, opts.retries ?? this.defaults.retries);
    const delay = opts.retryDelayMs ?? this.defaults.retryDelayMs;
    const jitter = opts.jitterMs ?? this.defaults.jitterMs;
    const owner = randomBytes(16).toString('hex');
    for (let attempt = 0; ; attempt++) {
      const start = this.clock.nowMs();
      let r: Awaited<ReturnType<LockBackend['acquire']>>;
      try {
        r = await this.backend.acquire(name, owner, ttlMs, this.budgetMs, this.highestFence);
      } catch (err) {
        // The acquire may still run on the server after our timeout: release it in the background so
        // a ghost lease does not block everyone for a whole TTL.
        this.backend.release(name, owner, this.budgetMs).catch(() => undefined);
        throw new LockUnavailableError(name, { cause: err });
      }
      if (r.acquired) {
        if (r.fence < FENCE_FLOOR_CAP) this.highestFence = Math.max(this.highestFence, r.fence);
        const validUntil = start + ttlMs - this.drift(ttlMs);
        if (validUntil > this.clock.nowMs()) return this.lease(name, owner, r.fence, ttlMs, validUntil);
        this.backend.release(name, owner, this.budgetMs).catch(() => undefined); // already expired: never hand it out
      }
      if (attempt >= retries) throw new LockContendedError(name, attempt + 1);
      await sleep(Math.max(0, delay + (2 * this.random() - 1) * jitter));
    }
  }

  /**
   * Run `fn` while holding `name`: the lease is extended every TTL/3; if no extension succeeds before
   * validUntil − 0.2·TTL the signal aborts with LockLostError. The lock is released when fn settles.
   * If fn resolves after the signal fired, runWhileHeld throws that LockLostError instead of returning,
   * because fn did not run under the lock the whole time. fn's own errors are rethrown unchanged.
   */
  async runWhileHeld<T>(name: string, ttlMs: number, fn: (signal: AbortSignal, lease: Lease) => Promise<T>, opts: AcquireOptions = {}): Promise<T> {
    const lease = (await this.acquire(name, ttlMs, opts)) as LeaseImpl;
    const controller = new AbortController();
    let extendTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let stopped = false;
    const guard = Math.max(this.drift(ttlMs), Math.floor(ttlMs * LOST_GUARD_FRACTION));
    const clear = (): void => {
      clearTimeout(extendTimer);
      clearTimeout(deadlineTimer);
    };
    const lose = (err: LockLostError): void => {
      if (controller.signal.aborted) return;
      clear();
      controller.abort(err);
    };
    const armDeadline = (): void => {
      clearTimeout(deadlineTimer);
      const wait = Math.max(0, lease.validUntilMs - guard - this.clock.nowMs());
      deadlineTimer = setTimeout(() => lose(new LockLostError(name, 'no extension succeeded before the lease ran out')), wait);
    };
    const scheduleExtend = (wait: number): void => {
      extendTimer = setTimeout(() => {
        lease.extend(ttlMs).then(
          () => {
            if (stopped || controller.signal.aborted) return;
            armDeadline();
            scheduleExtend(Math.floor(ttlMs * EXTEND_FRACTION));
          },
          (err: unknown) => {
            if (stopped || controller.signal.aborted) return;
            if (err instanceof LockLostError) lose(err);
            else scheduleExtend(Math.max(10, Math.floor(ttlMs * EXTEND_RETRY_FRACTION)));
          },
        );
      }, wait);
    };
    const stop = (): void => {
      stopped = true;
      clear();
    };
    this.running.add(stop);
    armDeadline();
    scheduleExtend(Math.floor(ttlMs * EXTEND_FRACTION));
    let result: T;
    try {
      result = await fn(controller.signal, lease);
    } finally {
      stop();
      this.running.delete(stop);
      if (lease.held) await lease.release().catch(() => false);
    }
    if (controller.signal.aborted) throw controller.signal.reason as LockLostError;
    return result;
  }

  /** runWhileHeld calls in progress (each owns at most two timers, cleared when it returns). */
  get activeRuns(): number {
    return this.running.size;
  }

  /** Stop every runWhileHeld extension loop (shutdown); their leases then run out on their own. */
  close(): void {
    for (const stop of this.running) stop();
    this.running.clear();
  }

  private drift(ttlMs: number): number {
    return Math.round(this.driftFactor * ttlMs) + DRIFT_FLOOR_MS;
  }

  private lease(name: string, owner: string, fence: number, ttlMs: number, validUntil: number): LeaseImpl {
    return new LeaseImpl(this.backend, this.clock, this.budgetMs, (t) => this.drift(t), name, owner, fence, ttlMs, validUntil);
  }
}

class LeaseImpl implements Lease {
  held = true;
  constructor(
    private readonly backend: LockBackend,
    private readonly clock: Clock,
    private readonly budgetMs: number,
    private readonly driftOf: (ttlMs: number) => number,
    readonly name: string,
    readonly owner: string,
    readonly fence: number,
    readonly ttlMs: number,
    public validUntilMs: number,
  ) {}

  async extend(ttlMs: number = this.ttlMs): Promise<void> {
    checkArgs(this.name, ttlMs);
    if (!this.held) throw new LockLostError(this.name, 'lease no longer held');
    const start = this.clock.nowMs();
    let ok: boolean;
    try {
      ok = await this.backend.extend(this.name, this.owner, ttlMs, this.budgetMs);
    } catch (err) {
      if (err instanceof StoreDataError) {
        this.held = false;
        throw new LockLostError(this.name, 'lock key holds unexpected data', { cause: err });
      }
      throw new LockUnavailableError(this.name, { cause: err });
    }
    if (!ok) {
      this.held = false;
      throw new LockLostError(this.name, 'another owner holds it, or it expired');
    }
    this.validUntilMs = start + ttlMs - this.driftOf(ttlMs);
  }

  async release(): Promise<boolean> {
    if (!this.held) return false;
    let ok: boolean;
    try {
      ok = await this.backend.release(this.name, this.owner, this.budgetMs);
    } catch (err) {
      throw new LockUnavailableError(this.name, { cause: err });
    }
    this.held = false;
    return ok;
  }
}

function checkArgs(name: string, ttlMs: number): void {
  if (!LOCK_NAME.test(name)) throw new LockArgumentError(`invalid lock name ${JSON.stringify(name.slice(0, 140))}`);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS) throw new LockArgumentError(`lock ttlMs must be an integer ≥ ${MIN_TTL_MS}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Redis key of a lock name (inside a hash tag, shared with its fence counter). */
export function lockKeyOf(name: string): { lock: string; fence: string } {
  return { lock: `lock:{${name}}`, fence: `lock:{${name}}:fence` };
}

/**
 * MemoryLockBackend: locks in process memory (single peer, and unit tests). Same contract as Redis:
 * owner-only extend/release, fences max(stored + 1, wall µs).
 */
export class MemoryLockBackend implements LockBackend {
  private readonly locks = new Map<string, { owner: string; expiresAt: number }>();
  private readonly fences = new Map<string, number>();
  constructor(
    private readonly clock: Clock = monotonicClock,
    private readonly wallClock: Clock = { nowMs: () => Date.now() },
  ) {}

  async acquire(name: string, owner: string, ttlMs: number, _budgetMs?: number, seedFloor = 0): Promise<{ acquired: true; fence: number } | { acquired: false; retryAfterMs: number }> {
    const now = this.clock.nowMs();
    const cur = this.locks.get(name);
    if (cur && cur.expiresAt > now) return { acquired: false, retryAfterMs: cur.expiresAt - now };
    this.locks.set(name, { owner, expiresAt: now + ttlMs });
    const fence = Math.max((this.fences.get(name) ?? 0) + 1, Math.floor(this.wallClock.nowMs() * 1000), seedFloor + 1);
    this.fences.set(name, fence);
    return { acquired: true, fence };
  }

  async extend(name: string, owner: string, ttlMs: number, _budgetMs?: number): Promise<boolean> {
    const cur = this.locks.get(name);
    if (!cur || cur.owner !== owner || cur.expiresAt <= this.clock.nowMs()) return false;
    cur.expiresAt = this.clock.nowMs() + ttlMs;
    return true;
  }

  async release(name: string, owner: string, _budgetMs?: number): Promise<boolean> {
    const cur = this.locks.get(name);
    if (!cur || cur.owner !== owner || cur.expiresAt <= this.clock.nowMs()) return false;
    this.locks.delete(name);
    return true;
  }
}
