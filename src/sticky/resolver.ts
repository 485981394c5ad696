/**
 * StickyResolver: what the proxy calls once per request of a sticky service (DESIGN.md §5).
 *
 * Per request: a fresh local cache entry whose upstream is usable → answer at once (no store call).
 * Otherwise one store round trip (get-or-create + conditional renewal, single-flighted per session on
 * this peer); if the pinned upstream is not usable, one compare-and-set move (fence + 1) and adopt
 * whatever the store says won. If the store is down, slow, or returned garbage, fall back without
 * waiting: `hash` → last pin this peer knew, else the upstream a just-failed write proposed (it may
 * still land), else `hashPick(key)`; `reject` → {kind:'reject'} (keyless requests are still served).
 *
 * Invariants:
 * - A resolve never waits on the store longer than `budgetMs` in total (every call gets the budget
 *   that remains), and never throws: expected outcomes are results (style.md "Errors at runtime").
 * - Staleness bound: a cached pin is trusted for at most `cacheTtlMs` after the store confirmed it.
 *   So after another peer moves a session, this peer may route it to the old (still usable)
 *   upstream for up to cacheTtlMs; an unusable cached upstream is never trusted.
 * - No write per request: a pin is renewed only inside the cache-miss call, when its remaining TTL
 *   fell below (1 − renewFraction)·ttl, so at most once per renewFraction·ttl per session for the
 *   whole fleet (the TTL is shared). cacheTtlMs is clamped to ≤ renewFraction·ttl so a busy session
 *   always reaches the store before its renewal window ends.
 * - No flap-back: pins only move away from an unusable upstream; a recovered upstream gets nobody back.
 * - After an outage, a session's create proposes the upstream it was routed to during the outage
 *   (last-known pin, else the same hash), so it moves at most once when pins re-form, and minFence
 *   (the highest fence this peer saw) keeps new fences above old ones.
 * - Fence 0 means "no lease" (degraded routing without a confirmed pin). Backends that check fences
 *   see 0 as unfenced.
 */
import type { Clock } from '../lib/clock.js';
import type { EventBus } from '../observability/events.js';
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.js';
import { StoreDataError, StoreTimeoutError } from './errors.js';
import { monotonicClock } from './monotonic-clock.js';
import { FENCE_FLOOR_CAP, type PinStore } from './pin-store.js';
import { isValidSessionKey, newSessionKey, sessionIdFor } from './session-key.js';

export interface StickyRequest {
  readonly service: string;
  /** Raw cookie/header value (from sessionKeyFrom); undefined → new session. */
  readonly sessionKey: string | undefined;
  /** Existing pins may stay here: upstream present, state active|draining, healthy (this peer's view). */
  usable(id: string): boolean;
  /** New pins may go here: active and healthy. */
  pickable(id: string): boolean;
  /** The balancer's pick among pickable upstreams (for new and moved pins). */
  pick(): string | undefined;
  /** Stateless fallback: a hash of the session key every peer computes alike (e.g. ring-hash). */
  hashPick(key: string): string | undefined;
}

export type StickyEvent = 'hit' | 'created' | 'moved' | 'renewed' | 'fallback-last-known' | 'fallback-hash';

export type StickyResult =
  | { readonly kind: 'pinned'; readonly upstream: string; readonly fence: number; readonly newSessionKey?: string; readonly event: StickyEvent }
  | { readonly kind: 'reject'; readonly reason: string }
  | { readonly kind: 'none' };

export type StoreOp = 'get' | 'create' | 'move' | 'renew';

export type StickyMetric =
  | { readonly type: 'resolve'; readonly service: string; readonly outcome: StickyEvent | 'reject' | 'none'; readonly cached: boolean }
  | { readonly type: 'store'; readonly op: StoreOp; readonly ms: number; readonly ok: boolean; readonly error?: 'timeout' | 'unavailable' | 'bad-data' }
  | { readonly type: 'breaker'; readonly state: BreakerState };

export interface StickyResolverOptions {
  readonly store: PinStore;
  /** Idle TTL of a pin (ms). Default 30 min, the config's `sticky.ttl` default (config/schema.ts). */
  readonly ttlMs?: number;
  /** Local cache trust window (ms). Default 1 s: NGINX zone_sync's 1 s inconsistency window. */
  readonly cacheTtlMs?: number;
  /** Renew when less than (1 − f)·ttl remains, i.e. at most once per f·ttl. Default 1/3 (Redisson watchdog rhythm). */
  readonly renewFraction?: number;
  readonly onStoreDown?: 'hash' | 'reject';
  /** Total store time one resolve may spend (ms). Default 50 (see redis-connection.ts DEFAULT_BUDGET_MS). */
  readonly budgetMs?: number;
  /** Monotonic clock (ms). Default performance.now. */
  readonly clock?: Clock;
  /** [0,1) source (breaker jitter). Default Math.random. */
  readonly random?: () => number;
  readonly breaker?: { readonly failureThreshold?: number; readonly coolDownMs?: number };
  /** Most cached pins (LRU). Default 100 000 (~10 MB). */
  readonly cacheMax?: number;
  readonly onMetric?: (m: StickyMetric) => void;
  readonly bus?: EventBus;
  /** Mints new session keys. Default newSessionKey (128 CSPRNG bits). */
  readonly newKey?: () => string;
}

export interface StickyStats {
  readonly resolves: number;
  readonly cacheHits: number;
  readonly hits: number;
  readonly created: number;
  readonly renewed: number;
  /** Moves this peer won by CAS (fence + 1). */
  readonly moved: number;
  /** Moves done by another peer (or a lost CAS race) that this peer adopted. */
  readonly adopted: number;
  readonly fallbackLastKnown: number;
  readonly fallbackHash: number;
  readonly rejects: number;
  readonly none: number;
  readonly storeCalls: number;
  readonly storeErrors: { readonly timeout: number; readonly unavailable: number; readonly badData: number };
  readonly breaker: BreakerState;
  readonly breakerOpens: number;
  readonly cacheSize: number;
  /** Recent store call latencies (last LATENCY_WINDOW calls). */
  readonly storeLatencyMs: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number };
}

/** The config schema's defaults for `sticky.ttl` and `sticky.cacheTtl` (test/unit/sticky/defaults.test.ts keeps them equal). */
export const DEFAULT_TTL_MS = 30 * 60_000;
export const DEFAULT_CACHE_TTL_MS = 1000;
export const DEFAULT_RENEW_FRACTION = 1 / 3;
export const DEFAULT_CACHE_MAX = 100_000;
/** A move whose CAS lost may find the winner's upstream unusable too; bounded so a flapping fleet cannot loop. */
const MAX_MOVE_ATTEMPTS = 3;
/** Shard breakers kept at most (closed ones are dropped past it): a Cluster has a handful of primaries. */
const MAX_SHARD_BREAKERS = 64;

function worstState(breakers: readonly Breaker[]): BreakerState {
  if (breakers.some((b) => b.state === 'open')) return 'open';
  return breakers.some((b) => b.state === 'half-open') ? 'half-open' : 'closed';
}

/** Store latency samples kept for stats() percentiles. */
const LATENCY_WINDOW = 512;

interface CacheEntry {
  upstream: string;
  /** Highest fence confirmed by the store (0 if never confirmed); the minFence of the next call. */
  fence: number;
  /** When the store confirmed this pin, or when degraded routing chose it (clock ms). */
  at: number;
  /** True when `upstream` is the store's answer; false when it was a degraded-mode choice. */
  confirmed: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class StickyResolver {
  private readonly store: PinStore;
  private readonly ttlMs: number;
  private readonly cacheTtlMs: number;
  private readonly renewBelowMs: number;
  private readonly onStoreDown: 'hash' | 'reject';
  private readonly budgetMs: number;
  private readonly clock: Clock;
  private readonly cacheMax: number;
  /** The breaker of a store of one unit (and of keys whose shard is not known yet). */
  private readonly breaker: Breaker;
  private readonly shardBreakers = new Map<string, Breaker>();
  private readonly breakerOpts: Omit<BreakerOptions, 'onChange'>;
  private readonly bus: StickyResolverOptions['bus'];
  private readonly newKey: () => string;
  private readonly onMetric: ((m: StickyMetric) => void) | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<StickyResult>>();
  /** Highest fence the store confirmed for any session: the seedFloor of every create (docs/sticky.md). */
  private highestFence = 0;
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private readonly counters: Mutable<Omit<StickyStats, 'storeErrors' | 'breaker' | 'breakerOpens' | 'cacheSize' | 'storeLatencyMs'>> = {
    resolves: 0, cacheHits: 0, hits: 0, created: 0, renewed: 0, moved: 0, adopted: 0,
    fallbackLastKnown: 0, fallbackHash: 0, rejects: 0, none: 0, storeCalls: 0,
  };
  private readonly errors = { timeout: 0, unavailable: 0, badData: 0 };

  constructor(opts: StickyResolverOptions) {
    this.store = opts.store;
    this.ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
    if (!(this.ttlMs >= 10)) throw new RangeError('ttlMs must be at least 10 ms');
    const fraction = opts.renewFraction ?? DEFAULT_RENEW_FRACTION;
    if (!(fraction > 0 && fraction < 1)) throw new RangeError('renewFraction must be in (0, 1)');
    this.renewBelowMs = Math.floor(this.ttlMs * (1 - fraction));
    this.cacheTtlMs = Math.max(0, Math.min(opts.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS, Math.floor(this.ttlMs * fraction)));
    this.onStoreDown = opts.onStoreDown ?? 'hash';
    this.budgetMs = opts.budgetMs ?? 50;
    this.clock = opts.clock ?? monotonicClock;
    this.cacheMax = opts.cacheMax ?? DEFAULT_CACHE_MAX;
    this.newKey = opts.newKey ?? newSessionKey;
    this.onMetric = opts.onMetric;
    this.bus = opts.bus;
    this.breakerOpts = { clock: this.clock, random: opts.random ?? Math.random, ...(opts.breaker ?? {}) };
    this.breaker = this.newBreaker('');
  }

  /**
   * One breaker per store shard (Redis Cluster: per primary node), so one dead node opens the breaker
   * of its own slots only; sessions on the other nodes keep resolving in Redis. A store of one unit
   * has the one breaker. The store is "up" (event `sticky:store`) while no breaker is open.
   */
  private newBreaker(shard: string): Breaker {
    return new Breaker({
      ...this.breakerOpts,
      onChange: (state, reason) => {
        const up = state === 'closed' && this.allBreakers().every((b) => b.state === 'closed');
        this.bus?.emit('sticky:store', { up, reason: `breaker ${state}${shard ? ` (${shard})` : ''}: ${reason}` });
        this.emit({ type: 'breaker', state });
      },
    });
  }

  private breakerFor(sid: string): Breaker {
    const shard = this.store.shardOf?.(sid) ?? '';
    if (shard === '') return this.breaker;
    let b = this.shardBreakers.get(shard);
    if (b === undefined) {
      // Nodes come and go with failovers; keep the table bounded (a closed breaker holds no state worth keeping).
      if (this.shardBreakers.size >= MAX_SHARD_BREAKERS) {
        for (const [k, v] of this.shardBreakers) if (v.state === 'closed') this.shardBreakers.delete(k);
      }
      b = this.newBreaker(shard);
      this.shardBreakers.set(shard, b);
    }
    return b;
  }

  private allBreakers(): Breaker[] {
    return [this.breaker, ...this.shardBreakers.values()];
  }

  async resolve(req: StickyRequest): Promise<StickyResult> {
    this.counters.resolves++;
    const deadline = this.clock.nowMs() + this.budgetMs;
    let key = req.sessionKey;
    let isNew = false;
    if (key === undefined || !isValidSessionKey(key)) {
      key = this.newKey();
      isNew = true;
    }
    const sid = sessionIdFor(req.service, key);
    const cached = this.cache.get(sid);
    if (!isNew && cached?.confirmed && this.clock.nowMs() - cached.at < this.cacheTtlMs && req.usable(cached.upstream)) {
      this.counters.cacheHits++;
      return this.finish(req, { kind: 'pinned', upstream: cached.upstream, fence: cached.fence, event: 'hit' }, true);
    }
    // Single flight: concurrent misses for one session on this peer share one store round trip.
    const pending = this.inflight.get(sid);
    if (pending) return pending;
    const p = this.resolveViaStore(req, key, sid, isNew, deadline).finally(() => this.inflight.delete(sid));
    this.inflight.set(sid, p);
    return p;
  }

  /**
   * Extend a session's pin without a request (long-lived connections: call every renewFraction·ttl
   * while the connection is open). Returns false when the pin is gone, moved, or the store is down.
   */
  async renew(service: string, sessionKey: string): Promise<boolean> {
    if (!isValidSessionKey(sessionKey)) return false;
    const sid = sessionIdFor(service, sessionKey);
    const cached = this.cache.get(sid);
    const breaker = this.breakerFor(sid);
    if (!cached?.confirmed || !breaker.allow()) return false;
    const r = await this.call(breaker, 'renew', () => this.store.renew(sid, cached.fence, { ttlMs: this.ttlMs, budgetMs: this.budgetMs }), this.budgetMs);
    if (r instanceof Error) return false;
    if (r.outcome === 'renewed') this.counters.renewed++;
    if (r.outcome === 'absent') return false;
    this.remember(sid, { upstream: r.upstream, fence: r.fence, at: this.clock.nowMs(), confirmed: true });
    return r.outcome === 'renewed';
  }

  stats(): StickyStats {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const q = (p: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(p * n))]!);
    return {
      ...this.counters,
      storeErrors: { ...this.errors },
      // The worst shard's state: open if any is, else half-open if any is.
      breaker: worstState(this.allBreakers()),
      breakerOpens: this.allBreakers().reduce((n, b) => n + b.openCount, 0),
      cacheSize: this.cache.size,
      storeLatencyMs: { samples: n, p50: q(0.5), p99: q(0.99), max: n === 0 ? 0 : sorted[n - 1]! },
    };
  }

  /** Drop local state (the store is owned by the caller and closed separately). */
  close(): void {
    this.cache.clear();
    this.inflight.clear();
  }

  private async resolveViaStore(req: StickyRequest, key: string, sid: string, isNew: boolean, deadline: number): Promise<StickyResult> {
    const known = this.cache.get(sid);
    const breaker = this.breakerFor(sid);
    if (!breaker.allow()) return this.degraded(req, key, sid, known, isNew, 'store breaker open');
    const candidate = this.candidate(req, key, known, isNew);
    if (candidate === undefined && isNew) return this.finish(req, { kind: 'none' }, false);
    const minFence = known?.fence ?? 0;
    const seedFloor = this.highestFence;

    let pin: { upstream: string; fence: number };
    let event: StickyEvent;
    if (candidate === undefined) {
      const budgetMs = this.remaining(deadline);
      const g = await this.call(breaker, 'get', () => this.store.get(sid, { budgetMs }), budgetMs);
      if (g instanceof Error) return this.degraded(req, key, sid, known, isNew, g.message);
      if (g.outcome === 'absent') return this.finish(req, { kind: 'none' }, false);
      pin = g;
      event = 'hit';
    } else {
      const budgetMs = this.remaining(deadline);
      const c = await this.call(
        breaker,
        'create',
        () => this.store.createIfAbsent(sid, candidate, { ttlMs: this.ttlMs, renewBelowMs: this.renewBelowMs, minFence, seedFloor, budgetMs }),
        budgetMs,
      );
      if (c instanceof Error) return this.degraded(req, key, sid, known, isNew, c.message, candidate);
      pin = c;
      event = c.outcome === 'created' ? 'created' : c.renewed ? 'renewed' : 'hit';
    }
    if (known?.confirmed && (pin.upstream !== known.upstream || pin.fence !== known.fence) && event !== 'created') {
      this.counters.adopted++; // another peer moved it since we last looked
    }

    for (let attempt = 0; attempt < MAX_MOVE_ATTEMPTS && !req.usable(pin.upstream); attempt++) {
      const from: { upstream: string; fence: number } = pin;
      const target = this.moveTarget(req, key, this.cache.get(sid), from.upstream);
      if (target === undefined) {
        this.remember(sid, { upstream: from.upstream, fence: from.fence, at: this.clock.nowMs(), confirmed: true });
        return this.finish(req, { kind: 'none' }, false);
      }
      const budgetMs = this.remaining(deadline);
      const m = await this.call(
        breaker,
        'move',
        () => this.store.compareAndMove(sid, from, target, { ttlMs: this.ttlMs, minFence: Math.max(minFence, from.fence), seedFloor, budgetMs }),
        budgetMs,
      );
      if (m instanceof Error) return this.degraded(req, key, sid, known, isNew, m.message, target);
      pin = m;
      if (m.outcome === 'moved') {
        this.counters.moved++;
        event = 'moved';
      } else if (m.outcome === 'created') {
        event = 'created';
      } else {
        this.counters.adopted++;
        event = 'moved';
      }
    }
    if (pin.fence < FENCE_FLOOR_CAP) this.highestFence = Math.max(this.highestFence, pin.fence);
    if (!req.usable(pin.upstream)) return this.finish(req, { kind: 'none' }, false);
    this.remember(sid, { upstream: pin.upstream, fence: pin.fence, at: this.clock.nowMs(), confirmed: true });
    const result: StickyResult = isNew
      ? { kind: 'pinned', upstream: pin.upstream, fence: pin.fence, newSessionKey: key, event }
      : { kind: 'pinned', upstream: pin.upstream, fence: pin.fence, event };
    return this.finish(req, result, false);
  }

  /**
   * Upstream to propose when creating: a new session takes the balancer's pick; a known session
   * keeps what this peer last routed it to (confirmed or degraded) if still usable, else the hash
   * every peer computes alike, so racing peers and post-outage recovery propose the same upstream.
   */
  private candidate(req: StickyRequest, key: string, known: CacheEntry | undefined, isNew: boolean): string | undefined {
    if (isNew) return req.pick();
    if (known && this.clock.nowMs() - known.at < this.ttlMs && req.usable(known.upstream)) return known.upstream;
    const h = req.hashPick(key);
    if (h !== undefined && req.pickable(h)) return h;
    return req.pick();
  }

  /**
   * Where a pin moves when its upstream is not usable. Deterministic first, so racing peers propose
   * the same target and it matches where degraded peers already send the session: the upstream this
   * peer routed the session to without a pin (during an outage), else hashPick(key); the balancer's
   * pick only when neither is pickable.
   */
  private moveTarget(req: StickyRequest, key: string, known: CacheEntry | undefined, from: string): string | undefined {
    const ok = (id: string | undefined): id is string => id !== undefined && id !== from && req.pickable(id);
    if (known && !known.confirmed && ok(known.upstream)) return known.upstream;
    const h = req.hashPick(key);
    if (ok(h)) return h;
    const p = req.pick();
    return ok(p) ? p : undefined;
  }

  /**
   * Route without the store. `proposed` is the upstream a write that just failed proposed: a timed-out
   * write may still run later (a ghost write), and then it is the pin, so we route there rather than
   * to the hash, and remember it so this peer proposes it again when the store is back.
   */
  private degraded(req: StickyRequest, key: string, sid: string, known: CacheEntry | undefined, isNew: boolean, reason: string, proposed?: string): StickyResult {
    // Fail-closed mode rejects sessions it cannot confirm; requests without a key are still served
    // (research SL-16), on the hash so their next requests land alike on every peer.
    if (this.onStoreDown === 'reject' && !isNew) return this.finish(req, { kind: 'reject', reason }, false);
    const now = this.clock.nowMs();
    if (!isNew && known && now - known.at < this.ttlMs && req.usable(known.upstream)) {
      const r: StickyResult = known.confirmed
        ? { kind: 'pinned', upstream: known.upstream, fence: known.fence, event: 'fallback-last-known' }
        : { kind: 'pinned', upstream: known.upstream, fence: 0, event: 'fallback-hash' };
      return this.finish(req, r, false);
    }
    const h = proposed !== undefined && req.usable(proposed) ? proposed : req.hashPick(key);
    if (h === undefined || !req.usable(h)) return this.finish(req, { kind: 'none' }, false);
    // Remember the degraded choice (keeping the highest confirmed fence for minFence) so the session
    // stays put for the rest of the outage and proposes this upstream when pins re-form.
    this.remember(sid, { upstream: h, fence: known?.fence ?? 0, at: now, confirmed: false });
    const r: StickyResult = isNew
      ? { kind: 'pinned', upstream: h, fence: 0, newSessionKey: key, event: 'fallback-hash' }
      : { kind: 'pinned', upstream: h, fence: 0, event: 'fallback-hash' };
    return this.finish(req, r, false);
  }

  /** Run one store call: time it, feed the breaker, classify errors. Never throws. */
  private async call<T>(breaker: Breaker, op: StoreOp, fn: () => Promise<T>, budgetMs: number): Promise<T | Error> {
    this.counters.storeCalls++;
    const t0 = this.clock.nowMs();
    try {
      const r = await withBudget(fn(), budgetMs);
      this.sample(op, this.clock.nowMs() - t0, true);
      breaker.success();
      return r;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const kind = err instanceof StoreTimeoutError ? 'timeout' : err instanceof StoreDataError ? 'bad-data' : 'unavailable';
      if (kind === 'timeout') this.errors.timeout++;
      else if (kind === 'bad-data') this.errors.badData++;
      else this.errors.unavailable++;
      this.sample(op, this.clock.nowMs() - t0, false, kind);
      // Garbage in one key says nothing about Redis being down; only outages feed the breaker.
      if (kind === 'bad-data') breaker.success();
      else breaker.failure(e.message);
      return e;
    }
  }

  private remaining(deadline: number): number {
    const left = Math.floor(deadline - this.clock.nowMs());
    // Past the deadline: the call fails at once as a timeout (1 ms timer) rather than being skipped,
    // so the breaker learns that the store is slow.
    return Math.max(1, left);
  }

  private sample(op: StoreOp, ms: number, ok: boolean, error?: 'timeout' | 'unavailable' | 'bad-data'): void {
    this.latencies[this.latencyCount % LATENCY_WINDOW] = ms;
    this.latencyCount++;
    if (this.onMetric) this.emit(error ? { type: 'store', op, ms, ok, error } : { type: 'store', op, ms, ok });
  }

  private remember(sid: string, e: CacheEntry): void {
    this.cache.delete(sid);
    if (this.cache.size >= this.cacheMax) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(sid, e);
  }

  private finish(req: StickyRequest, r: StickyResult, cached: boolean): StickyResult {
    if (r.kind === 'reject') this.counters.rejects++;
    else if (r.kind === 'none') this.counters.none++;
    else {
      switch (r.event) {
        case 'hit': this.counters.hits++; break;
        case 'created': this.counters.created++; break;
        case 'renewed': this.counters.renewed++; break;
        case 'fallback-last-known': this.counters.fallbackLastKnown++; break;
        case 'fallback-hash': this.counters.fallbackHash++; break;
        case 'moved': break; // counted as moved/adopted where it happens
      }
    }
    if (this.onMetric) this.emit({ type: 'resolve', service: req.service, outcome: r.kind === 'pinned' ? r.event : r.kind, cached });
    return r;
  }

  private emit(m: StickyMetric): void {
    try {
      this.onMetric?.(m);
    } catch {
      // a metrics hook must never break routing
    }
  }
}

/**
 * The resolver's own bound on a store call, whatever the store does (a custom PinStore may ignore
 * budgetMs). The store's late settlement is swallowed.
 */
function withBudget<T>(p: Promise<T>, budgetMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeoutError(budgetMs)), budgetMs);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
