/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016, §2), as a property:
 * under any key skew (one hot key, a few warm ones, a long tail) and any interleaving of arrivals and
 * completions, for ring-hash and Maglev, with equal or different weights and any factor c ≥ 1:
 *   1. after each placement the chosen upstream's load ≤ ceil(c × (total + 1) × w / W), which for
 *      equal weights is the paper's ceil(c × mean) with the new request counted;
 *   2. a key whose home (its unbounded pick) is under that bound stays home and is not flagged;
 *      one whose home is at the bound is flagged `overflowed`.
 * fast-check prints the seed and the shrunk counter-example on failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boundedLoadCapacity, createBalancer, type BalancerName } from '../../src/balance/index.js';

type Op = { kind: 'arrive'; key: string } | { kind: 'leave'; which: number };

const keyArb = fc.oneof(
  { arbitrary: fc.constant('hot'), weight: 6 },
  { arbitrary: fc.integer({ min: 0, max: 4 }).map((i) => `warm-${i}`), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 100_000 }).map((i) => `tail-${i}`), weight: 2 },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: keyArb.map((key) => ({ kind: 'arrive' as const, key })), weight: 3 },
  { arbitrary: fc.nat().map((which) => ({ kind: 'leave' as const, which })), weight: 1 },
);

function check(name: BalancerName): void {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 12 }),
      fc.boolean(),
      fc.double({ min: 1, max: 3, noNaN: true }),
      fc.array(opArb, { minLength: 1, maxLength: 250 }),
      (rawWeights, weighted, c, ops) => {
        const candidates = rawWeights.map((w, i) => ({ id: `u${i}`, weight: weighted ? w : 1 }));
        const small = { vnodesPerWeight: 40, tableSize: 251 };
        const bounded = createBalancer(name, { candidates }, { ...small, boundedLoad: c });
        const unbounded = createBalancer(name, { candidates }, small);
        const W = candidates.reduce((a, x) => a + x.weight, 0);
        const weightOf = new Map(candidates.map((x) => [x.id, x.weight]));
        const loadOf = new Map<string, number>();
        const inFlight: string[] = [];
        const load = (id: string) => ({ inFlight: loadOf.get(id) ?? 0, latencyEwmaMs: 0 });
        for (const op of ops) {
          if (op.kind === 'leave') {
            if (inFlight.length === 0) continue;
            const [id] = inFlight.splice(op.which % inFlight.length, 1);
            loadOf.set(id!, loadOf.get(id!)! - 1);
            continue;
          }
          const total = inFlight.length;
          const r = bounded.pickDetailed!({ hashKey: op.key, load });
          const id = r.id!;
          const home = unbounded.pick({ hashKey: op.key })!;
          const cap = (u: string) => boundedLoadCapacity(c, total, weightOf.get(u)!, W);
          // 1. the bound holds after placement
          expect((loadOf.get(id) ?? 0) + 1).toBeLessThanOrEqual(cap(id));
          if (!weighted) expect((loadOf.get(id) ?? 0) + 1).toBeLessThanOrEqual(Math.ceil((c * (total + 1)) / candidates.length));
          // 2. affinity while under the bound; overflow reported otherwise
          if ((loadOf.get(home) ?? 0) < cap(home)) {
            expect(id).toBe(home);
            expect(r.overflowed).toBeUndefined();
          } else {
            expect(id).not.toBe(home);
            expect(r.overflowed).toBe(true);
          }
          loadOf.set(id, (loadOf.get(id) ?? 0) + 1);
          inFlight.push(id);
        }
      },
    ),
    { numRuns: 150 },
  );
}

describe('bounded loads (property)', () => {
  it('ring-hash: no upstream exceeds ceil(c × mean); keys stay home while home is under the bound', () => check('ring-hash'), 60_000);
  it('maglev: no upstream exceeds ceil(c × mean); keys stay home while home is under the bound', () => check('maglev'), 60_000);

  it('capacity is the paper’s ceil(c × (total + 1) / n) for equal weights', () => {
    expect(boundedLoadCapacity(1.25, 0, 1, 4)).toBe(1); // ceil(0.3125)
    expect(boundedLoadCapacity(1.25, 15, 1, 4)).toBe(5); // ceil(1.25 × 16 / 4) = 5
    expect(boundedLoadCapacity(1.25, 16, 1, 4)).toBe(6); // ceil(5.3125)
    expect(boundedLoadCapacity(1, 9, 2, 4)).toBe(5); // weight 2 of 4: ceil(10 × 0.5)
  });
});
