/**
 * Ring-hash minimal disruption as a property over random memberships (ids, weights, sizes): adding an
 * upstream moves keys only to the newcomer; removing one moves only its keys; the ring is the same for
 * any order of the same membership. This is what fixed points per weight unit buy over Envoy's
 * min-ring-size scaling (envoy#22558). Maglev has the same properties only approximately (maglev
 * unit test); its spread property is checked here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MaglevBalancer, RingHashBalancer } from '../../src/balance/index.js';

const membership = fc.uniqueArray(
  fc.record({ id: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,15}$/), weight: fc.integer({ min: 1, max: 3 }) }),
  { selector: (c) => c.id, minLength: 1, maxLength: 15 },
);
const keys = Array.from({ length: 400 }, (_, i) => `key-${i}`);
const opts = { vnodesPerWeight: 30 };

describe('ring-hash derived from the previous ring (property)', () => {
  it('is the same ring a full build makes, for any joins, leaves and weight changes', () => {
    const change = fc.record({ keep: fc.boolean(), weight: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }) });
    const settings = fc.constantFrom({ vnodesPerWeight: 30 }, { vnodesPerWeight: 7, maxRingSize: 200 }, { minRingSize: 500 });
    fc.assert(
      fc.property(membership, fc.array(change, { minLength: 15, maxLength: 15 }), membership, settings, (before, changes, joiners, o) => {
        const next = before.filter((_, i) => changes[i]!.keep).map((c, i) => ({ id: c.id, weight: changes[i]!.weight ?? c.weight }));
        for (const j of joiners) if (!next.some((c) => c.id === j.id)) next.push(j);
        const prev = new RingHashBalancer({ candidates: before }, o);
        const derived = new RingHashBalancer({ candidates: next }, o, prev);
        expect(derived.pointsForTest()).toEqual(new RingHashBalancer({ candidates: next }, o).pointsForTest());
      }),
      { numRuns: 200 },
    );
  });
});

describe('ring-hash disruption (property)', () => {
  it('adding an upstream moves keys only to it; removing one moves only its keys', () => {
    fc.assert(
      fc.property(membership, fc.nat(), (cands, which) => {
        const [newcomer, ...rest] = cands;
        if (rest.length === 0) return;
        const before = new RingHashBalancer({ candidates: rest }, opts);
        const after = new RingHashBalancer({ candidates: [...rest].reverse().concat(newcomer!) }, opts);
        for (const k of keys) {
          const a = before.pick({ hashKey: k });
          const b = after.pick({ hashKey: k });
          if (a !== b) expect(b).toBe(newcomer!.id);
        }
        const gone = rest[which % rest.length]!.id;
        const removed = new RingHashBalancer({ candidates: rest.filter((c) => c.id !== gone) }, opts);
        for (const k of keys) {
          const a = before.pick({ hashKey: k });
          if (a !== gone) expect(removed.pick({ hashKey: k })).toBe(a);
          else expect(removed.pick({ hashKey: k })).not.toBe(gone);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('maglev spread (property)', () => {
  // Envoy's weighted fill gives u about one slot per round in proportion w/max w; the fill stops mid-
  // round, so each count is off by < 2 slots from t·w/max, and normalising by M spreads the others'
  // error: |count − M·w/W| ≤ 2 + 2·n·w/W (equal weights: ≤ 4 slots).
  it('slot counts follow weights within a couple of slots', () => {
    fc.assert(
      fc.property(membership, fc.constantFrom(251, 1009, 65537), (cands, m) => {
        if (cands.length > m) return;
        const b = new MaglevBalancer({ candidates: cands }, { tableSize: m });
        const W = cands.reduce((a, c) => a + c.weight, 0);
        const shares = b.shares();
        for (const c of cands) {
          const count = Math.round(shares.get(c.id)! * m);
          expect(Math.abs(count - (m * c.weight) / W)).toBeLessThanOrEqual(2 + (2 * cands.length * c.weight) / W);
        }
      }),
      { numRuns: 100 },
    );
  });
});
