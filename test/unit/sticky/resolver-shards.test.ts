/**
 * One breaker per store shard (Redis Cluster: per primary): a dead node opens the breaker of its own
 * slots only, while sessions held by the other nodes keep being created and read in the store.
 */
import { describe, expect, it } from 'vitest';
import { MemoryPinStore, StickyResolver, type PinStore } from '../../../src/sticky/index.js';
import { StoreUnavailableError } from '../../../src/sticky/errors.js';
import { FakeClock, Fleet } from './fixtures.js';

/** Two shards by the sid's first character; calls for a shard in `down` fail as an outage. */
class ShardedStore implements PinStore {
  readonly kind = 'memory' as const;
  readonly down = new Set<string>();
  readonly callsBy = new Map<string, number>();
  constructor(private readonly inner: MemoryPinStore) {}
  shardOf(sid: string): string {
    return sid.charCodeAt(0) % 2 === 0 ? 'node-a:7000' : 'node-b:7001';
  }
  private gate<T>(sid: string, fn: () => Promise<T>): Promise<T> {
    const shard = this.shardOf(sid);
    this.callsBy.set(shard, (this.callsBy.get(shard) ?? 0) + 1);
    return this.down.has(shard) ? Promise.reject(new StoreUnavailableError(`${shard} down`)) : fn();
  }
  get: PinStore['get'] = (sid, o) => this.gate(sid, () => this.inner.get(sid, o));
  createIfAbsent: PinStore['createIfAbsent'] = (sid, c, o) => this.gate(sid, () => this.inner.createIfAbsent(sid, c, o));
  compareAndMove: PinStore['compareAndMove'] = (sid, e, t, o) => this.gate(sid, () => this.inner.compareAndMove(sid, e, t, o));
  renew: PinStore['renew'] = (sid, f, o) => this.gate(sid, () => this.inner.renew(sid, f, o));
  close = async (): Promise<void> => undefined;
}

describe('StickyResolver with a sharded store', () => {
  it('an outage of one shard opens that shard\'s breaker only; the other shard keeps serving from the store', async () => {
    const clock = new FakeClock();
    const store = new ShardedStore(new MemoryPinStore({ clock }));
    const fleet = new Fleet(['a', 'b', 'c']);
    const resolver = new StickyResolver({ store, ttlMs: 60_000, cacheTtlMs: 0, onStoreDown: 'hash', budgetMs: 30, clock, random: () => 0.5 });
    store.down.add('node-a:7000');
    const events = { created: 0, fallback: 0 };
    for (let i = 0; i < 200; i++) {
      const r = await resolver.resolve(fleet.request(`session-key-${i}`));
      if (r.kind === 'pinned' && r.event === 'created') events.created++;
      if (r.kind === 'pinned' && r.event === 'fallback-hash') events.fallback++;
    }
    // Node a's breaker opened after 5 outages and stopped calling it; node b served every one of its sessions.
    expect(store.callsBy.get('node-a:7000')).toBe(5);
    expect(events.created).toBe(store.callsBy.get('node-b:7001'));
    expect(events.created).toBeGreaterThan(50);
    expect(events.created + events.fallback).toBe(200);
    expect(resolver.stats()).toMatchObject({ breaker: 'open', breakerOpens: 1 });
    // Node a back: after the cool-down its breaker probes, closes, and its sessions form pins again.
    store.down.clear();
    clock.advance(5_000);
    const again = await resolver.resolve(fleet.request('session-key-0'));
    expect(again).toMatchObject({ kind: 'pinned' });
    for (let i = 0; i < 20; i++) await resolver.resolve(fleet.request(`later-${i}`));
    expect(resolver.stats().breaker).toBe('closed');
  });
});
