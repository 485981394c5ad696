/**
 * Shared conformance suite for PinStore implementations (hono's common-case pattern): memory runs it
 * as a unit test, Redis in test/integration/sticky-redis-store.test.ts against a real redis-server.
 * Each case states one sentence of the contract in pin-store.ts.
 */
import { describe, expect, it } from 'vitest';
import type { PinStore } from '../../../src/sticky/index.js';
import { sessionIdFor } from '../../../src/sticky/index.js';

let n = 0;
const sid = (): string => sessionIdFor('svc', `conformance-${process.pid}-${n++}-${Math.random()}`);
const opts = { ttlMs: 60_000, renewBelowMs: 40_000, minFence: 0 };

export function pinStoreConformance(name: string, make: () => PinStore, expire: (store: PinStore, sid: string) => Promise<void>): void {
  describe(`PinStore conformance: ${name}`, () => {
    it('creates a pin once; later creates adopt the first writer', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', opts);
      const b = await s.createIfAbsent(id, 'u2', opts);
      expect(a.outcome).toBe('created');
      expect(b).toMatchObject({ outcome: 'existing', upstream: 'u1', fence: a.fence });
      expect(await s.get(id)).toMatchObject({ outcome: 'found', upstream: 'u1', fence: a.fence });
    });

    it('racing creates all agree on one upstream and fence', async () => {
      const s = make();
      const id = sid();
      const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => s.createIfAbsent(id, `u${i}`, opts)));
      expect(rs.filter((r) => r.outcome === 'created')).toHaveLength(1);
      expect(new Set(rs.map((r) => `${r.upstream}/${r.fence}`)).size).toBe(1);
    });

    it('a fresh fence is above minFence', async () => {
      const s = make();
      const big = 8_000_000_000_000_000; // above any µs timestamp until year 2223, below 2^53
      const r = await s.createIfAbsent(sid(), 'u1', { ...opts, minFence: big });
      expect(r.fence).toBe(big + 1);
    });

    it('compareAndMove with the current (upstream, fence) moves and raises the fence by exactly 1', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', opts);
      const m = await s.compareAndMove(id, { upstream: 'u1', fence: a.fence }, 'u2', { ttlMs: 60_000, minFence: 0 });
      expect(m).toMatchObject({ outcome: 'moved', upstream: 'u2', fence: a.fence + 1 });
    });

    it('a stale or replayed compareAndMove changes nothing and returns the current pin', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', opts);
      await s.compareAndMove(id, { upstream: 'u1', fence: a.fence }, 'u2', { ttlMs: 60_000, minFence: 0 });
      const replay = await s.compareAndMove(id, { upstream: 'u1', fence: a.fence }, 'u3', { ttlMs: 60_000, minFence: 0 });
      expect(replay).toMatchObject({ outcome: 'conflict', upstream: 'u2', fence: a.fence + 1 });
      expect(await s.get(id)).toMatchObject({ upstream: 'u2', fence: a.fence + 1 });
    });

    it('racing moves: exactly one wins, fence +1 once', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', opts);
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => s.compareAndMove(id, { upstream: 'u1', fence: a.fence }, `t${i}`, { ttlMs: 60_000, minFence: 0 })));
      expect(rs.filter((r) => r.outcome === 'moved')).toHaveLength(1);
      const final = await s.get(id);
      expect(final).toMatchObject({ fence: a.fence + 1 });
    });

    it('renew extends only with the current fence', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', { ...opts, ttlMs: 10_000 });
      expect(await s.renew(id, a.fence - 1, { ttlMs: 60_000 })).toMatchObject({ outcome: 'conflict', upstream: 'u1', fence: a.fence });
      const r = await s.renew(id, a.fence, { ttlMs: 60_000 });
      expect(r).toMatchObject({ outcome: 'renewed', upstream: 'u1', fence: a.fence });
      expect(r.outcome === 'renewed' && r.ttlRemainingMs > 10_000).toBe(true);
      expect(await s.renew(sid(), 1, { ttlMs: 60_000 })).toEqual({ outcome: 'absent' });
    });

    it('createIfAbsent renews an existing pin only when its remaining TTL is below renewBelowMs', async () => {
      const s = make();
      const id = sid();
      await s.createIfAbsent(id, 'u1', { ...opts, ttlMs: 30_000 });
      const noRenew = await s.createIfAbsent(id, 'u1', { ...opts, ttlMs: 60_000, renewBelowMs: 20_000 });
      expect(noRenew.renewed).toBe(false);
      const renew = await s.createIfAbsent(id, 'u1', { ...opts, ttlMs: 60_000, renewBelowMs: 40_000 });
      expect(renew.renewed).toBe(true);
      expect(renew.ttlRemainingMs).toBeGreaterThan(30_000);
    });

    it('after expiry the re-created pin has a higher fence; a move of an expired pin creates it above the old fence', async () => {
      const s = make();
      const id = sid();
      const a = await s.createIfAbsent(id, 'u1', opts);
      const m = await s.compareAndMove(id, { upstream: 'u1', fence: a.fence }, 'u2', { ttlMs: 60_000, minFence: 0 });
      await expire(s, id);
      expect(await s.get(id)).toEqual({ outcome: 'absent' });
      const b = await s.createIfAbsent(id, 'u3', opts);
      expect(b.outcome).toBe('created');
      expect(b.fence).toBeGreaterThan(m.fence);
      await expire(s, id);
      const c = await s.compareAndMove(id, { upstream: 'u3', fence: b.fence }, 'u4', { ttlMs: 60_000, minFence: 0 });
      expect(c).toMatchObject({ outcome: 'created', upstream: 'u4' });
      expect(c.fence).toBeGreaterThan(b.fence);
    });

    it('rejects raw (unhashed) session keys', async () => {
      const s = make();
      await expect(s.get('not a hashed id!')).rejects.toThrow(TypeError);
    });
  });
}
