/**
 * StickyResolver behaviour with a MemoryPinStore (optionally failing) and a fake clock: cache and
 * staleness bound, renewal rhythm, moves with fence + 1, no flap-back, draining, store outages with
 * both onStoreDown modes, breaker, garbage data, recovery without a second move, metrics hooks.
 */
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/observability/events.js';
import { isValidSessionKey, MemoryPinStore, StickyResolver, type StickyMetric, type StickyResult } from '../../../src/sticky/index.js';
import { FakeClock, FaultyStore, Fleet } from './fixtures.js';

const TTL = 60_000;

function setup(opts: { onStoreDown?: 'hash' | 'reject'; cacheTtlMs?: number; budgetMs?: number; ups?: string[] } = {}) {
  const clock = new FakeClock();
  const store = new FaultyStore(new MemoryPinStore({ clock }));
  const fleet = new Fleet(opts.ups ?? ['a', 'b', 'c']);
  const metrics: StickyMetric[] = [];
  const bus = new EventBus();
  const events: unknown[] = [];
  bus.subscribe((e) => events.push(e));
  const resolver = new StickyResolver({
    store,
    ttlMs: TTL,
    cacheTtlMs: opts.cacheTtlMs ?? 1000,
    onStoreDown: opts.onStoreDown ?? 'hash',
    budgetMs: opts.budgetMs ?? 30,
    clock,
    random: () => 0.5,
    onMetric: (m) => metrics.push(m),
    bus,
  });
  return { clock, store, fleet, resolver, metrics, events };
}

function pinned(r: StickyResult): Extract<StickyResult, { kind: 'pinned' }> {
  if (r.kind !== 'pinned') throw new Error(`expected pinned, got ${JSON.stringify(r)}`);
  return r;
}

describe('StickyResolver', () => {
  it('a new session gets a key and a created pin; its next request is a cache hit with no store call', async () => {
    const { fleet, resolver, store } = setup();
    const first = pinned(await resolver.resolve(fleet.request(undefined)));
    expect(first.event).toBe('created');
    expect(first.newSessionKey && isValidSessionKey(first.newSessionKey)).toBe(true);
    expect(first.fence).toBeGreaterThan(0);
    const calls = store.calls;
    const again = pinned(await resolver.resolve(fleet.request(first.newSessionKey)));
    expect(again).toMatchObject({ upstream: first.upstream, fence: first.fence, event: 'hit' });
    expect(again.newSessionKey).toBeUndefined();
    expect(store.calls).toBe(calls);
  });

  it('malformed or oversized keys start a new session instead of failing', async () => {
    const { fleet, resolver } = setup();
    for (const bad of ['', 'x'.repeat(129), 'has space', 'semi;colon', '\u0000']) {
      const r = pinned(await resolver.resolve(fleet.request(bad)));
      expect(r.event).toBe('created');
      expect(r.newSessionKey).not.toBe(bad);
    }
  });

  it('a cached pin is trusted for cacheTtlMs only, then re-read from the store (adopting another peer\'s move)', async () => {
    const { fleet, resolver, store, clock } = setup();
    const s = pinned(await resolver.resolve(fleet.request(undefined)));
    const key = s.newSessionKey!;
    const other = [...fleet.ups.keys()].find((u) => u !== s.upstream)!;
    // Another peer moves the session (simulated directly on the shared store).
    const { sessionIdFor } = await import('../../../src/sticky/index.js');
    await store.inner.compareAndMove(sessionIdFor('web', key), { upstream: s.upstream, fence: s.fence }, other, { ttlMs: TTL, minFence: 0 });
    clock.advance(500);
    expect(pinned(await resolver.resolve(fleet.request(key))).upstream).toBe(s.upstream); // within the staleness bound
    clock.advance(600);
    const after = pinned(await resolver.resolve(fleet.request(key)));
    expect(after).toMatchObject({ upstream: other, fence: s.fence + 1 });
    expect(resolver.stats().adopted).toBe(1);
  });

  it('renews at most once per TTL/3, never per request, and the pin stays alive across 3×TTL of traffic', async () => {
    const { fleet, resolver, store, clock } = setup();
    const s = pinned(await resolver.resolve(fleet.request(undefined)));
    const writesAfterCreate = store.writes;
    for (let t = 0; t < 3 * TTL; t += 250) {
      clock.advance(250);
      const r = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
      expect(r).toMatchObject({ upstream: s.upstream, fence: s.fence });
    }
    const renewals = store.writes - writesAfterCreate;
    expect(renewals).toBeGreaterThanOrEqual(3 * 3 - 1);
    expect(renewals).toBeLessThanOrEqual(Math.ceil((3 * TTL) / (TTL / 3)) + 1);
    expect(resolver.stats().renewed).toBe(renewals);
  });

  it('moves sessions off an unusable upstream once (fence + 1), leaves others, and never moves them back', async () => {
    const { fleet, resolver } = setup();
    const sessions = [];
    for (let i = 0; i < 30; i++) sessions.push(pinned(await resolver.resolve(fleet.request(undefined))));
    const victim = sessions[0]!.upstream;
    fleet.set(victim, { healthy: false });
    const moved = new Map<string, { upstream: string; fence: number }>();
    for (const s of sessions) {
      const r = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
      if (s.upstream === victim) {
        expect(r.upstream).not.toBe(victim);
        expect(r.fence).toBe(s.fence + 1);
        expect(r.event).toBe('moved');
        moved.set(s.newSessionKey!, r);
      } else {
        expect(r).toMatchObject({ upstream: s.upstream, fence: s.fence });
      }
    }
    expect(moved.size).toBeGreaterThan(0);
    expect(resolver.stats().moved).toBe(moved.size);
    fleet.set(victim, { healthy: true });
    for (const s of sessions) {
      const r = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
      const expected = moved.get(s.newSessionKey!) ?? s;
      expect(r).toMatchObject({ upstream: expected.upstream, fence: expected.fence });
    }
  });

  it('draining keeps existing pins and takes no new sessions; disabled moves them', async () => {
    const { fleet, resolver, clock } = setup({ ups: ['a', 'b'] });
    const sessions = [];
    for (let i = 0; i < 10; i++) sessions.push(pinned(await resolver.resolve(fleet.request(undefined))));
    fleet.set('a', { state: 'draining' });
    clock.advance(5000);
    for (const s of sessions) expect(pinned(await resolver.resolve(fleet.request(s.newSessionKey))).upstream).toBe(s.upstream);
    for (let i = 0; i < 10; i++) expect(pinned(await resolver.resolve(fleet.request(undefined))).upstream).toBe('b');
    fleet.set('a', { state: 'disabled' });
    for (const s of sessions) expect(pinned(await resolver.resolve(fleet.request(s.newSessionKey))).upstream).toBe('b');
  });

  it('answers none when nothing is eligible', async () => {
    const { fleet, resolver } = setup({ ups: ['a'] });
    const s = pinned(await resolver.resolve(fleet.request(undefined)));
    fleet.set('a', { healthy: false });
    expect(await resolver.resolve(fleet.request(s.newSessionKey))).toEqual({ kind: 'none' });
    expect(await resolver.resolve(fleet.request(undefined))).toEqual({ kind: 'none' });
  });

  it('store down (hash mode): last-known pin with its fence, else the hash; breaker opens and stops store calls', async () => {
    const { fleet, resolver, store, clock, events } = setup();
    const known = pinned(await resolver.resolve(fleet.request(undefined)));
    store.mode = 'down';
    clock.advance(2000); // cache entry stale: a store call is due
    const r1 = pinned(await resolver.resolve(fleet.request(known.newSessionKey)));
    expect(r1).toMatchObject({ upstream: known.upstream, fence: known.fence, event: 'fallback-last-known' });
    const stranger = pinned(await resolver.resolve(fleet.request('unknown-session-key')));
    expect(stranger).toMatchObject({ upstream: fleet.hashPick('unknown-session-key'), fence: 0, event: 'fallback-hash' });
    for (let i = 0; i < 10; i++) await resolver.resolve(fleet.request(`k${i}`));
    expect(resolver.stats().breaker).toBe('open');
    const callsWhileOpen = store.calls;
    for (let i = 0; i < 50; i++) expect((await resolver.resolve(fleet.request(`k${i}`))).kind).toBe('pinned');
    expect(store.calls).toBe(callsWhileOpen);
    expect(events.some((e) => (e as { type: string; data: { up: boolean } }).type === 'sticky:store' && !(e as { data: { up: boolean } }).data.up)).toBe(true);
    const st = resolver.stats();
    expect(st.storeErrors.unavailable).toBe(5);
    expect(st.fallbackLastKnown + st.fallbackHash).toBe(st.resolves - 1);
  });

  it('new sessions while the breaker is open are served on the hash and keep that upstream when pins re-form', async () => {
    const { fleet, resolver, store, clock } = setup();
    store.mode = 'down';
    for (let i = 0; i < 5; i++) await resolver.resolve(fleet.request(`open-${i}`));
    expect(resolver.stats().breaker).toBe('open');
    const r = pinned(await resolver.resolve(fleet.request(undefined)));
    expect(r.event).toBe('fallback-hash');
    expect(r.upstream).toBe(fleet.hashPick(r.newSessionKey!));
    store.mode = 'ok';
    clock.advance(5000); // past the breaker cool-down
    const after = pinned(await resolver.resolve(fleet.request(r.newSessionKey)));
    expect(after).toMatchObject({ upstream: r.upstream, event: 'created' });
  });

  it('a write that times out but lands later (ghost write) pins the session where it was routed', async () => {
    const { fleet, resolver, store, clock } = setup({ budgetMs: 20, ups: ['a', 'b', 'c', 'd', 'e'] });
    store.mode = 'ghost';
    const routed: { key: string; upstream: string }[] = [];
    for (let i = 0; i < 4; i++) {
      const r = pinned(await resolver.resolve(fleet.request(undefined)));
      expect(r.fence).toBe(0);
      routed.push({ key: r.newSessionKey!, upstream: r.upstream });
    }
    await Promise.all(store.ghosts);
    store.mode = 'ok';
    clock.advance(5000);
    for (const s of routed) {
      const r = pinned(await resolver.resolve(fleet.request(s.key)));
      expect(r.upstream).toBe(s.upstream);
      expect(r.fence).toBeGreaterThan(0);
    }
  });

  it('a move that times out but lands later leaves the session where it was routed (one move in total)', async () => {
    const { fleet, resolver, store, clock } = setup({ budgetMs: 20 });
    const s = pinned(await resolver.resolve(fleet.request(undefined)));
    fleet.set(s.upstream, { healthy: false });
    clock.advance(2000);
    store.mode = 'ghost';
    const during = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
    expect(during.upstream).not.toBe(s.upstream);
    await Promise.all(store.ghosts);
    store.mode = 'ok';
    clock.advance(5000);
    const after = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
    expect(after).toMatchObject({ upstream: during.upstream, fence: s.fence + 1 });
  });

  it('recovery: after the store lost every pin, sessions re-pin where they were (at most one move) with higher fences', async () => {
    const { fleet, resolver, store, clock } = setup();
    const sessions = [];
    for (let i = 0; i < 20; i++) sessions.push(pinned(await resolver.resolve(fleet.request(undefined))));
    store.mode = 'down';
    clock.advance(2000);
    for (const s of sessions) expect(pinned(await resolver.resolve(fleet.request(s.newSessionKey))).upstream).toBe(s.upstream);
    // Redis restarted empty.
    for (const s of sessions) {
      const { sessionIdFor } = await import('../../../src/sticky/index.js');
      store.inner.deleteForTest(sessionIdFor('web', s.newSessionKey!));
    }
    store.mode = 'ok';
    clock.advance(5000);
    for (const s of sessions) {
      const r = pinned(await resolver.resolve(fleet.request(s.newSessionKey)));
      expect(r.upstream).toBe(s.upstream);
      expect(r.fence).toBeGreaterThan(s.fence);
    }
    expect(resolver.stats().breaker).toBe('closed');
  });

  it('reject mode: known sessions get reject while the store is down; keyless requests are still served', async () => {
    const { fleet, resolver, store, clock } = setup({ onStoreDown: 'reject' });
    const known = pinned(await resolver.resolve(fleet.request(undefined)));
    store.mode = 'down';
    clock.advance(2000);
    expect((await resolver.resolve(fleet.request(known.newSessionKey))).kind).toBe('reject');
    const fresh = pinned(await resolver.resolve(fleet.request(undefined)));
    expect(fresh.event).toBe('fallback-hash');
    expect(fresh.newSessionKey).toBeDefined();
    expect(resolver.stats().rejects).toBe(1);
  });

  it('a hanging store is cut off at the budget; each resolve still answers', async () => {
    const { fleet, resolver, store, clock } = setup({ budgetMs: 20 });
    const known = pinned(await resolver.resolve(fleet.request(undefined)));
    store.mode = 'hang';
    clock.advance(2000);
    const r = pinned(await resolver.resolve(fleet.request(known.newSessionKey)));
    expect(r.event).toBe('fallback-last-known');
    expect(resolver.stats().storeErrors.timeout).toBe(1);
  });

  it('garbage in the store is counted, routed by fallback, and does not open the breaker', async () => {
    const { fleet, resolver, store } = setup();
    store.mode = 'garbage';
    for (let i = 0; i < 20; i++) expect((await resolver.resolve(fleet.request(`g${i}`))).kind).toBe('pinned');
    const st = resolver.stats();
    expect(st.storeErrors.badData).toBe(20);
    expect(st.breaker).toBe('closed');
  });

  it('concurrent misses for one session on one peer share one store call', async () => {
    const { fleet, resolver, store } = setup();
    const before = store.calls;
    const rs = await Promise.all(Array.from({ length: 20 }, () => resolver.resolve(fleet.request('same-key'))));
    expect(store.calls - before).toBe(1);
    expect(new Set(rs.map((r) => pinned(r).upstream)).size).toBe(1);
  });

  it('reports metrics through onMetric and stats(), and survives a throwing hook', async () => {
    const clock = new FakeClock();
    const fleet = new Fleet(['a']);
    const resolver = new StickyResolver({ store: new MemoryPinStore({ clock }), clock, onMetric: () => { throw new Error('boom'); } });
    expect((await resolver.resolve(fleet.request(undefined))).kind).toBe('pinned');
    const { metrics, resolver: r2, fleet: f2 } = setup();
    await r2.resolve(f2.request(undefined));
    expect(metrics.some((m) => m.type === 'store' && m.op === 'create' && m.ok)).toBe(true);
    expect(metrics.some((m) => m.type === 'resolve' && m.outcome === 'created')).toBe(true);
    const st = r2.stats();
    expect(st).toMatchObject({ resolves: 1, created: 1, storeCalls: 1, breaker: 'closed', cacheSize: 1 });
    expect(st.storeLatencyMs.samples).toBe(1);
  });

  it('renew() extends a pin for long-lived connections and reports a moved pin', async () => {
    const { fleet, resolver, store } = setup();
    const s = pinned(await resolver.resolve(fleet.request(undefined)));
    expect(await resolver.renew('web', s.newSessionKey!)).toBe(true);
    const { sessionIdFor } = await import('../../../src/sticky/index.js');
    const other = [...fleet.ups.keys()].find((u) => u !== s.upstream)!;
    await store.inner.compareAndMove(sessionIdFor('web', s.newSessionKey!), { upstream: s.upstream, fence: s.fence }, other, { ttlMs: TTL, minFence: 0 });
    expect(await resolver.renew('web', s.newSessionKey!)).toBe(false);
    expect(await resolver.renew('web', 'never seen')).toBe(false);
  });
});
