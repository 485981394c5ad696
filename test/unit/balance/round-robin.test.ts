/** round-robin (nginx smooth weighted round robin): conformance, the documented sequence, exclusions, slow start. */
import { describe, expect, it } from 'vitest';
import { RoundRobinBalancer } from '../../../src/balance/index.js';
import { runConformance } from './conformance.js';

runConformance({ name: 'round-robin', keyed: false });

describe('round-robin (SWRR)', () => {
  it('weights 5:1:1 give the smooth sequence nginx documents: a a b a c a a', () => {
    const b = new RoundRobinBalancer({ candidates: [{ id: 'a', weight: 5 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }] });
    expect(Array.from({ length: 14 }, () => b.pick({}))).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a', 'a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it('picks each upstream exactly weight times in every window of Σ weights picks', () => {
    const cands = [{ id: 'x', weight: 3 }, { id: 'y', weight: 2 }, { id: 'z', weight: 4 }];
    const b = new RoundRobinBalancer({ candidates: cands });
    for (let window = 0; window < 5; window++) {
      const picks = Array.from({ length: 9 }, () => b.pick({}));
      for (const c of cands) expect(picks.filter((p) => p === c.id)).toHaveLength(c.weight);
    }
  });

  it('an excluded upstream sits the round out without shifting the others', () => {
    const b = new RoundRobinBalancer({ candidates: [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }] });
    const exclude = new Set(['b']);
    expect(Array.from({ length: 6 }, () => b.pick({ exclude }))).toEqual(['a', 'c', 'a', 'c', 'a', 'c']);
  });

  it('slow start: a just-recovered upstream gets min_weight_percent (10 %) of its weight, then ramps', () => {
    const cands = [{ id: 'old', weight: 1 }, { id: 'new', weight: 1, eligibleSinceMs: 10_000 }];
    const shareOfNew = (nowMs: number): number => {
      const b = new RoundRobinBalancer({ candidates: cands }, { slowStartMs: 60_000 });
      const picks = Array.from({ length: 1100 }, () => b.pick({ nowMs }));
      return picks.filter((p) => p === 'new').length / picks.length;
    };
    expect(shareOfNew(10_000)).toBeCloseTo(0.1 / 1.1, 2); // weight 0.1 vs 1
    expect(shareOfNew(40_000)).toBeCloseTo(0.5 / 1.5, 2); // half the window: linear ramp (aggression 1)
    expect(shareOfNew(70_000)).toBeCloseTo(0.5, 2); // window over
    expect(shareOfNew(10_000 - 5)).toBeCloseTo(0.1 / 1.1, 2); // clock behind eligibleSince: minimum weight
  });

  it('equal weights rotate in id order; after a slow-start ramp ends, rotation resumes evenly', () => {
    const b = new RoundRobinBalancer(
      { candidates: [{ id: 'c', weight: 2 }, { id: 'a', weight: 2 }, { id: 'b', weight: 2, eligibleSinceMs: 0 }] },
      { slowStartMs: 1_000 },
    );
    expect(Array.from({ length: 6 }, () => b.pick({}))).toEqual(['a', 'b', 'c', 'a', 'b', 'c']); // no clock: no ramp
    const ramp = Array.from({ length: 210 }, () => b.pick({ nowMs: 0 }));
    expect(ramp.filter((p) => p === 'b')).toHaveLength(10); // weight 0.2 of 4.2
    const after = Array.from({ length: 300 }, () => b.pick({ nowMs: 5_000 }));
    for (const id of ['a', 'b', 'c']) expect(after.filter((p) => p === id)).toHaveLength(100);
  });
});
