/**
 * maglev: conformance, golden table, the balance and disruption properties Maglev promises
 * (Eisenbud et al., NSDI 2016: §3.4 "near-perfect balance", "minimal disruption is slightly weaker"
 * than a ring's; §5.3 measures both with M = 65537), exclusions and fallback reporting.
 */
import { describe, expect, it } from 'vitest';
import { MaglevBalancer, createBalancer, DEFAULT_MAGLEV_TABLE_SIZE, BalanceInvalidError } from '../../../src/balance/index.js';
import { runConformance } from './conformance.js';
import { equalCandidates, keyShares, maxRelativeDeviation, movement, randomKeys } from './hash-metrics.js';

runConformance({ name: 'maglev', keyed: true });
runConformance({ name: 'maglev', keyed: true, opts: { boundedLoad: 1.25 } });

const KEYS = randomKeys(100_000, 7);

describe('maglev table', () => {
  it('golden: fixed membership → fixed table (a wire format between peers; change only on purpose)', () => {
    const m = new MaglevBalancer({ candidates: [{ id: 'c', weight: 1 }, { id: 'a', weight: 1 }, { id: 'b', weight: 2 }] }, { tableSize: 13 });
    expect(m.tableForTest()).toEqual(['c', 'b', 'c', 'a', 'b', 'b', 'a', 'a', 'b', 'b', 'b', 'c', 'a']);
  });

  it(`defaults to a ${DEFAULT_MAGLEV_TABLE_SIZE}-slot table and rejects sizes that are not usable primes`, () => {
    expect(new MaglevBalancer({ candidates: equalCandidates(3) }).tableSize).toBe(65537);
    for (const tableSize of [65536, 1, 0, -7, 12.5, 67_108_879]) {
      expect(() => new MaglevBalancer({ candidates: equalCandidates(3) }, { tableSize })).toThrow(BalanceInvalidError);
    }
    expect(() => new MaglevBalancer({ candidates: equalCandidates(5) }, { tableSize: 3 })).toThrow(/smaller than/);
  });

  it('equal weights: slot counts differ by at most one (each upstream takes one slot per round)', () => {
    const m = new MaglevBalancer({ candidates: equalCandidates(10) });
    const counts = [...m.shares().values()].map((s) => Math.round(s * 65537));
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('builds the same table from the same membership in any order', () => {
    const cands = equalCandidates(30).map((c, i) => ({ ...c, weight: 1 + (i % 3) }));
    const a = new MaglevBalancer({ candidates: cands }, { tableSize: 1009 });
    const b = new MaglevBalancer({ candidates: [...cands].reverse() }, { tableSize: 1009 });
    expect(b.tableForTest()).toEqual(a.tableForTest());
  });
});

describe('maglev spread and disruption at default settings', () => {
  const ten = equalCandidates(10);
  const before = createBalancer('maglev', { candidates: ten }, {});

  it('10 equal upstreams, 100k random keys: every share within ±10 % of the mean (table: within 0.1 %)', () => {
    const mean = new Map(ten.map((c) => [c.id, 0.1]));
    expect(maxRelativeDeviation(keyShares(before, KEYS), mean)).toBeLessThan(0.1);
    expect(maxRelativeDeviation(before.shares!()!, mean)).toBeLessThan(0.001);
  });

  it('weights 1:2:3: shares within ±10 % relative (table: within 0.1 %)', () => {
    const cands = [{ id: 'w1', weight: 1 }, { id: 'w2', weight: 2 }, { id: 'w3', weight: 3 }];
    const b = createBalancer('maglev', { candidates: cands }, {});
    const expected = new Map(cands.map((c) => [c.id, c.weight / 6]));
    expect(maxRelativeDeviation(keyShares(b, KEYS), expected)).toBeLessThan(0.1);
    expect(maxRelativeDeviation(b.shares!()!, expected)).toBeLessThan(0.001);
  });

  // Maglev trades a little disruption for balance (§3.4): a few keys move between upstreams that
  // did not change. Measured here: adding an 11th moves 9.25 % of keys (minimal: 9.09 %), 0.26 % of
  // all keys between old upstreams; removing one moves 0.32 % of the others' keys. The bounds below
  // allow ~3× that.
  it('adding an 11th moves at most 1.2 × 1/11 of keys, and under 1 % of all keys move between old upstreams', () => {
    const after = createBalancer('maglev', { candidates: [...ten, { id: 'api-11', weight: 1 }] }, {});
    const m = movement(before, after, KEYS);
    expect(m.moved).toBeLessThanOrEqual(1.2 / 11);
    const toNew = (m.movedTo.get('api-11') ?? 0) / KEYS.length;
    expect(toNew).toBeGreaterThan(0.08);
    expect(m.moved - toNew).toBeLessThan(0.01);
  });

  it('removing one moves all its keys and under 1 % of the other keys', () => {
    const after = createBalancer('maglev', { candidates: ten.filter((c) => c.id !== 'api-4') }, {});
    const m = movement(before, after, KEYS);
    const fromRemoved = (m.movedFrom.get('api-4') ?? 0) / KEYS.length;
    expect(fromRemoved).toBeCloseTo(keyShares(before, KEYS).get('api-4')!, 12);
    expect(m.moved - fromRemoved).toBeLessThan(0.01);
  });
});

describe('maglev picks', () => {
  const b = new MaglevBalancer({ candidates: equalCandidates(6) }, { tableSize: 65537, boundedLoad: 1.5 });

  it('reports a fallback when the request has no hash key', () => {
    expect(b.pickDetailed({ random: () => 0.3 }).fallback).toBe(true);
    expect(b.pickDetailed({ hashKey: 'user-1' }).fallback).toBe(false);
  });

  it('with bounded loads, moves a key off an overloaded home and reports the overflow', () => {
    const home = b.pick({ hashKey: 'hot' })!;
    const load = (id: string) => ({ inFlight: id === home ? 12 : 0, latencyEwmaMs: 0 });
    const r = b.pickDetailed({ hashKey: 'hot', load });
    expect(r.id).not.toBe(home);
    expect(r.overflowed).toBe(true);
  });
});
