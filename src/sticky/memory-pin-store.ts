/**
 * MemoryPinStore: pins in process memory, the default when no `redis:` is configured (single peer).
 *
 * Same contract as RedisPinStore (pin-store.ts), minus sharing: it is authoritative only for this
 * process. Operations complete synchronously (wrapped in promises), so budgets never matter.
 *
 * Invariants:
 * - Expiry is lazy (on access) plus an incremental sweep from the oldest entry on every write, like
 *   Redis's active expiry; `maxEntries` bounds memory (the entry closest to expiry is dropped first).
 * - A fresh pin's fence is max(wall-clock µs, last fence issued by this store + 1, minFence + 1), so
 *   fences keep growing across expiry and across a process restart (wall clock, not monotonic: the
 *   monotonic clock restarts at 0 with the process).
 */
import { systemClock, type Clock } from '../lib/clock.js';
import { monotonicClock } from './monotonic-clock.js';
import { assertSid, assertUpstreamId } from './pin-store.js';
import type { CreateOptions, CreateResult, GetResult, MoveOptions, MoveResult, PinStore, RenewOptions, RenewResult, StoreCallOptions } from './pin-store.js';

interface Entry {
  upstream: string;
  fence: number;
  expiresAt: number;
}

export interface MemoryPinStoreOptions {
  /** Monotonic clock for TTLs (ms). Default performance.now. */
  readonly clock?: Clock;
  /** Wall clock that seeds fences (ms). Default Date.now. */
  readonly wallClock?: Clock;
  /** Most pins kept. 1e6 pins ≈ 150 MB worst case; a single peer with more sessions should use Redis. */
  readonly maxEntries?: number;
}

/** Expired entries removed per write at most, so one write never stalls on a huge sweep. */
const SWEEP_PER_WRITE = 16;

export class MemoryPinStore implements PinStore {
  readonly kind = 'memory' as const;
  private readonly pins = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly wallClock: Clock;
  private readonly maxEntries: number;
  private lastFence = 0;

  constructor(opts: MemoryPinStoreOptions = {}) {
    this.clock = opts.clock ?? monotonicClock;
    this.wallClock = opts.wallClock ?? systemClock;
    this.maxEntries = opts.maxEntries ?? 1_000_000;
  }

  get size(): number {
    return this.pins.size;
  }

  async get(sid: string, _opts?: StoreCallOptions): Promise<GetResult> {
    assertSid(sid);
    const e = this.live(sid);
    if (!e) return { outcome: 'absent' };
    return { outcome: 'found', ...this.view(e) };
  }

  async createIfAbsent(sid: string, candidate: string, opts: CreateOptions): Promise<CreateResult> {
    assertSid(sid);
    assertUpstreamId(candidate);
    const now = this.clock.nowMs();
    const e = this.live(sid);
    if (e) {
      let renewed = false;
      if (e.fence < opts.minFence) e.fence = opts.minFence + 1; // same rollback repair as the Lua script
      if (e.expiresAt - now < opts.renewBelowMs) {
        this.touch(sid, e, now + opts.ttlMs);
        renewed = true;
      }
      return { outcome: 'existing', renewed, ...this.view(e) };
    }
    const fresh: Entry = { upstream: candidate, fence: this.seedFence(Math.max(opts.minFence, opts.seedFloor ?? 0)), expiresAt: now + opts.ttlMs };
    this.insert(sid, fresh);
    return { outcome: 'created', renewed: false, ...this.view(fresh) };
  }

  async compareAndMove(sid: string, expected: { upstream: string; fence: number }, to: string, opts: MoveOptions): Promise<MoveResult> {
    assertSid(sid);
    assertUpstreamId(to);
    const now = this.clock.nowMs();
    const e = this.live(sid);
    if (!e) {
      const fresh: Entry = { upstream: to, fence: this.seedFence(Math.max(opts.minFence, expected.fence, opts.seedFloor ?? 0)), expiresAt: now + opts.ttlMs };
      this.insert(sid, fresh);
      return { outcome: 'created', ...this.view(fresh) };
    }
    if (e.upstream !== expected.upstream || e.fence !== expected.fence) return { outcome: 'conflict', ...this.view(e) };
    e.upstream = to;
    e.fence += 1;
    this.lastFence = Math.max(this.lastFence, e.fence);
    this.touch(sid, e, now + opts.ttlMs);
    return { outcome: 'moved', ...this.view(e) };
  }

  async renew(sid: string, expectedFence: number, opts: RenewOptions): Promise<RenewResult> {
    assertSid(sid);
    const e = this.live(sid);
    if (!e) return { outcome: 'absent' };
    if (e.fence !== expectedFence) return { outcome: 'conflict', ...this.view(e) };
    this.touch(sid, e, this.clock.nowMs() + opts.ttlMs);
    return { outcome: 'renewed', ...this.view(e) };
  }

  /** Test/admin helper: drop a pin (as idle expiry would). */
  deleteForTest(sid: string): void {
    this.pins.delete(sid);
  }

  async close(): Promise<void> {
    this.pins.clear();
  }

  private live(sid: string): Entry | undefined {
    const e = this.pins.get(sid);
    if (e && e.expiresAt <= this.clock.nowMs()) {
      this.pins.delete(sid);
      return undefined;
    }
    return e;
  }

  private view(e: Entry): { upstream: string; fence: number; ttlRemainingMs: number } {
    return { upstream: e.upstream, fence: e.fence, ttlRemainingMs: Math.max(0, Math.round(e.expiresAt - this.clock.nowMs())) };
  }

  private seedFence(minFence: number): number {
    const f = Math.max(Math.floor(this.wallClock.nowMs() * 1000), this.lastFence + 1, minFence + 1);
    this.lastFence = f;
    return f;
  }

  /** Re-insert so Map order stays "soonest expiry first" (every pin has the same kind of TTL). */
  private touch(sid: string, e: Entry, expiresAt: number): void {
    e.expiresAt = expiresAt;
    this.pins.delete(sid);
    this.pins.set(sid, e);
  }

  private insert(sid: string, e: Entry): void {
    this.sweep();
    if (this.pins.size >= this.maxEntries) {
      const oldest = this.pins.keys().next();
      if (!oldest.done) this.pins.delete(oldest.value);
    }
    this.pins.set(sid, e);
  }

  private sweep(): void {
    const now = this.clock.nowMs();
    let n = 0;
    for (const [sid, e] of this.pins) {
      if (n++ >= SWEEP_PER_WRITE || e.expiresAt > now) break;
      this.pins.delete(sid);
    }
  }
}
