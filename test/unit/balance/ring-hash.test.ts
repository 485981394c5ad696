/**
 * ring-hash: conformance, golden ring positions with edge probes (Envoy ring_hash_lb_test.cc style),
 * the spread and minimal-disruption promises at default settings, exclusions, fallback reporting.
 */
import { describe, expect, it } from 'vitest';
import { RingHashBalancer, createBalancer, DEFAULT_VNODES_PER_WEIGHT } from '../../../src/balance/index.js';
import { runConformance } from './conformance.js';
import { equalCandidates, keyShares, maxRelativeDeviation, movement, randomKeys } from './hash-metrics.js';

runConformance({ name: 'ring-hash', keyed: true });
runConformance({ name: 'ring-hash', keyed: true, opts: { boundedLoad: 1.25 } });

const KEYS = randomKeys(100_000, 7);

describe('ring-hash golden ring', () => {
  // Fixed inputs → fixed positions. These are a wire format between peers (and versions): if this
  // test fails, every key in every deployment moves. Change only on purpose, with a release note.
  const ring = new RingHashBalancer({ candidates: [{ id: 'b', weight: 1 }, { id: 'a', weight: 2 }] }, { vnodesPerWeight: 2 });
  const GOLDEN: Array<[number, string]> = [
    [494696847, 'a'], [1848289256, 'a'], [2486411301, 'b'], [3099691583, 'b'], [4007192586, 'a'], [4016759035, 'a'],
  ];

  it('places round(vnodesPerWeight × weight) points per upstream at the documented positions', () => {
    expect(ring.pointsForTest()).toEqual(GOLDEN);
  });

  it('sends a key at a point to that point, just past it to the next one, past the last to the first', () => {
    expect(ring.ownerAtForTest(0)).toBe('a');
    expect(ring.ownerAtForTest(2486411301)).toBe('b');
    expect(ring.ownerAtForTest(2486411302)).toBe('b');
    expect(ring.ownerAtForTest(3099691584)).toBe('a');
    expect(ring.ownerAtForTest(4016759035)).toBe('a');
    expect(ring.ownerAtForTest(4016759036)).toBe('a'); // wraps to 494696847
    expect(ring.ownerAtForTest(4294967295)).toBe('a');
  });

  it('reports arc shares that sum to 1', () => {
    const shares = ring.shares();
    expect((shares.get('a') ?? 0) + (shares.get('b') ?? 0)).toBeCloseTo(1, 12);
    // b owns (1848289256, 3099691583]
    expect(shares.get('b')).toBeCloseTo((3099691583 - 1848289256) / 2 ** 32, 12);
  });

  it('builds the same ring from the same membership in any order', () => {
    const cands = equalCandidates(20).map((c, i) => ({ ...c, weight: 1 + (i % 4) }));
    const a = new RingHashBalancer({ candidates: cands }, { vnodesPerWeight: 50 });
    const b = new RingHashBalancer({ candidates: [...cands].reverse() }, { vnodesPerWeight: 50 });
    expect(b.pointsForTest()).toEqual(a.pointsForTest());
  });
});

describe('ring-hash spread at default settings', () => {
  it(`uses ${DEFAULT_VNODES_PER_WEIGHT} points per unit weight`, () => {
    const b = new RingHashBalancer({ candidates: equalCandidates(10) });
    expect(b.size).toBe(10 * DEFAULT_VNODES_PER_WEIGHT);
  });

  it('10 equal upstreams, 100k random keys: every share within ±10 % of the mean', () => {
    const cands = equalCandidates(10);
    const b = createBalancer('ring-hash', { candidates: cands }, {});
    const dev = maxRelativeDeviation(keyShares(b, KEYS), new Map(cands.map((c) => [c.id, 0.1])));
    expect(dev).toBeLessThan(0.1);
  });

  it('weights 1:2:3: shares within ±10 % relative of 1:2:3', () => {
    const cands = [{ id: 'w1', weight: 1 }, { id: 'w2', weight: 2 }, { id: 'w3', weight: 3 }];
    const b = createBalancer('ring-hash', { candidates: cands }, {});
    const dev = maxRelativeDeviation(keyShares(b, KEYS), new Map(cands.map((c) => [c.id, c.weight / 6])));
    expect(dev).toBeLessThan(0.1);
  });
});

describe('ring-hash minimal disruption', () => {
  const ten = equalCandidates(10);
  const before = createBalancer('ring-hash', { candidates: ten }, {});

  it('adding an 11th upstream moves at most 1.2 × 1/11 of the keys, all of them to the newcomer', () => {
    const after = createBalancer('ring-hash', { candidates: [...ten, { id: 'api-11', weight: 1 }] }, {});
    const m = movement(before, after, KEYS);
    expect(m.moved).toBeGreaterThan(0);
    expect(m.moved).toBeLessThanOrEqual((1.2 * 1) / 11);
    expect([...m.movedTo.keys()]).toEqual(['api-11']);
  });

  it('removing an upstream moves only its own keys', () => {
    const after = createBalancer('ring-hash', { candidates: ten.filter((c) => c.id !== 'api-4') }, {});
    const m = movement(before, after, KEYS);
    expect([...m.movedFrom.keys()]).toEqual(['api-4']);
    // …and every one of its keys had to move.
    expect(m.moved).toBeCloseTo(keyShares(before, KEYS).get('api-4')!, 12);
  });

  it('changing one upstream weight moves keys only to or from that upstream', () => {
    const after = createBalancer('ring-hash', { candidates: ten.map((c) => (c.id === 'api-2' ? { ...c, weight: 2 } : c)) }, {});
    const m = movement(before, after, KEYS.slice(0, 20_000));
    expect([...m.movedTo.keys()]).toEqual(['api-2']);
  });
});

describe('ring-hash picks', () => {
  const cands = equalCandidates(6);
  const b = new RingHashBalancer({ candidates: cands }, { vnodesPerWeight: 100 });

  it('an excluded home sends the key where it would go if that upstream were removed', () => {
    for (const key of KEYS.slice(0, 2000)) {
      const home = b.pick({ hashKey: key })!;
      const without = new RingHashBalancer({ candidates: cands.filter((c) => c.id !== home) }, { vnodesPerWeight: 100 });
      expect(b.pick({ hashKey: key, exclude: new Set([home]) })).toBe(without.pick({ hashKey: key }));
    }
  }, 30_000);

  it('reports a fallback when the request has no hash key, and none when it has one', () => {
    expect(b.pickDetailed({ random: () => 0.3 })).toMatchObject({ fallback: true });
    expect(b.pickDetailed({ hashKey: 'user-1' }).fallback).toBe(false);
  });

  it('keeps the key on its home regardless of load when bounded loads are off', () => {
    const home = b.pick({ hashKey: 'hot' })!;
    const load = (id: string) => ({ inFlight: id === home ? 1000 : 0, latencyEwmaMs: 0 });
    expect(b.pickDetailed({ hashKey: 'hot', load })).toEqual({ id: home, fallback: false });
  });

  it('with bounded loads, moves a key off an overloaded home onward and reports the overflow', () => {
    const bounded = new RingHashBalancer({ candidates: cands }, { vnodesPerWeight: 100, boundedLoad: 1.25 });
    const home = bounded.pick({ hashKey: 'hot' })!;
    const load = (id: string) => ({ inFlight: id === home ? 10 : 0, latencyEwmaMs: 0 });
    const r = bounded.pickDetailed({ hashKey: 'hot', load });
    expect(r.id).not.toBe(home);
    expect(r.overflowed).toBe(true);
    // Same as excluding the home: overflow goes to the next upstream onward.
    expect(r.id).toBe(bounded.pick({ hashKey: 'hot', exclude: new Set([home]) }));
    // totalInFlight from the proxy gives the same answer as summing.
    expect(bounded.pickDetailed({ hashKey: 'hot', load, totalInFlight: 10 })).toEqual(r);
  });

  it('scales point counts down to maxRingSize and up to minRingSize', () => {
    expect(new RingHashBalancer({ candidates: cands }, { maxRingSize: 600 }).size).toBe(600);
    expect(new RingHashBalancer({ candidates: cands }, { vnodesPerWeight: 10, minRingSize: 1200 }).size).toBe(1200);
  });
});
