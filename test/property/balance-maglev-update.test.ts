/**
 * A Maglev update — the balancer built from the one it replaces after upstreams join, leave or change
 * weight, taking the permutations it can from it — makes the same lookup table as a full build of the
 * new set, and both equal a reference fill written straight from the paper's Pseudocode 1 with Envoy's
 * weighting (BigInt hashes and plain modulo, so the shared-permutation, integer-arithmetic fill of
 * balance/maglev-table.ts is checked against arithmetic it does not share). Every peer must build the
 * same table, so "the same" means slot for slot.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MaglevBalancer, type PickCandidate } from '../../src/balance/index.js';
import { compareIds } from '../../src/balance/candidates.js';
import { hash64 } from '../../src/balance/hash.js';

/** Maglev §3.4 Pseudocode 1, with Envoy's weighted turns: the table as upstream ids. */
function referenceTable(cands: readonly PickCandidate[], m: number): string[] {
  const ups = [...cands].sort((a, b) => compareIds(a.id, b.id));
  const M = BigInt(m);
  const offset = ups.map((u) => Number(hash64(u.id, 0) % M));
  const skip = ups.map((u) => Number(hash64(u.id, 1) % (M - 1n)) + 1);
  const maxW = Math.max(...ups.map((u) => u.weight));
  const next = ups.map(() => 0); // j: how far along its permutation each upstream is
  const picks = ups.map(() => 0);
  const entry: (string | undefined)[] = new Array<string | undefined>(m).fill(undefined);
  let filled = 0;
  for (let round = 1; filled < m; round++) {
    for (let i = 0; i < ups.length && filled < m; i++) {
      if (round * ups[i]!.weight < picks[i]! * maxW) continue;
      let c = (offset[i]! + next[i]! * skip[i]!) % m;
      while (entry[c] !== undefined) {
        next[i]!++;
        c = (offset[i]! + next[i]! * skip[i]!) % m;
      }
      entry[c] = ups[i]!.id;
      next[i]!++;
      picks[i]!++;
      filled++;
    }
  }
  return entry as string[];
}

const id = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,11}$/);
// At most 20 + 8 joins = 28 upstreams: every table size below (≥ 29) can hold them.
const membership = fc.uniqueArray(fc.record({ id, weight: fc.integer({ min: 1, max: 4 }) }), { selector: (c) => c.id, minLength: 1, maxLength: 20 });
/** One membership change of the kinds a routing refresh sees. */
const change = fc.oneof(
  fc.record({ kind: fc.constant('join' as const), id, weight: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('leave' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('weight' as const), at: fc.nat(), weight: fc.integer({ min: 1, max: 4 }) }),
);
type Change = typeof change extends fc.Arbitrary<infer C> ? C : never;

function apply(set: PickCandidate[], c: Change): PickCandidate[] {
  if (c.kind === 'join') return set.some((x) => x.id === c.id) ? set : [...set, { id: c.id, weight: c.weight }];
  if (set.length === 0) return set;
  const at = c.at % set.length;
  if (c.kind === 'leave') return set.filter((_, i) => i !== at);
  return set.map((x, i) => (i === at ? { ...x, weight: c.weight } : x));
}

describe('maglev update from the table it replaces (property)', () => {
  it('equals a full build and the reference fill after any sequence of joins, leaves and weight changes', () => {
    fc.assert(
      fc.property(membership, fc.array(change, { minLength: 1, maxLength: 8 }), fc.constantFrom(29, 101, 251, 1009), (start, changes, m) => {
        let set: PickCandidate[] = start;
        let b = new MaglevBalancer({ candidates: set }, { tableSize: m });
        for (const c of changes) {
          set = apply(set, c);
          b = new MaglevBalancer({ candidates: set }, { tableSize: m }, b);
          const full = new MaglevBalancer({ candidates: set }, { tableSize: m });
          expect(b.tableForTest()).toEqual(full.tableForTest());
          expect(b.tableForTest()).toEqual(set.length === 0 ? [] : referenceTable(set, m));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('at the default 65,537 slots: one join, leave or weight change gives the reference fill', () => {
    const cands = membership.filter((s) => s.length >= 2);
    fc.assert(
      fc.property(cands, change, (start, c) => {
        const before = new MaglevBalancer({ candidates: start });
        const next = apply(start, c);
        expect(new MaglevBalancer({ candidates: next }, {}, before).tableForTest()).toEqual(referenceTable(next, 65537));
      }),
      { numRuns: 12 },
    );
  });

  it('permutations from a table of another size are not reused', () => {
    const set = [{ id: 'a', weight: 1 }, { id: 'b', weight: 2 }, { id: 'c', weight: 1 }];
    const small = new MaglevBalancer({ candidates: set }, { tableSize: 13 });
    expect(new MaglevBalancer({ candidates: set }, { tableSize: 101 }, small).tableForTest()).toEqual(referenceTable(set, 101));
  });
});
