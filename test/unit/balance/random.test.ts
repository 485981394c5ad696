/** random (weighted): conformance plus slow start and exclusions. */
import { describe, expect, it } from 'vitest';
import { RandomBalancer } from '../../../src/balance/index.js';
import { createSeededRandom } from '../../../src/lib/rng.js';
import { runConformance } from './conformance.js';

runConformance({ name: 'random', keyed: false });

function shares(b: RandomBalancer, n: number, extra: { nowMs?: number; exclude?: Set<string> } = {}): Map<string, number> {
  const random = createSeededRandom(11);
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = b.pick({ ...extra, random })!;
    m.set(id, (m.get(id) ?? 0) + 1 / n);
  }
  return m;
}

describe('random', () => {
  it('slow start with aggression 2 ramps as √(time factor), floored at min_weight_percent', () => {
    const b = new RandomBalancer(
      { candidates: [{ id: 'old', weight: 3 }, { id: 'new', weight: 3, eligibleSinceMs: 0 }] },
      { slowStartMs: 100_000, slowStartAggression: 2, slowStartMinWeightPercent: 20 },
    );
    // t = 1 % of the window: √0.01 = 0.1 < 0.2 floor → weight 0.6 vs 3.
    expect(shares(b, 50_000, { nowMs: 1_000 }).get('new')).toBeCloseTo(0.6 / 3.6, 2);
    // t = 25 %: √0.25 = 0.5 → weight 1.5 vs 3.
    expect(shares(b, 50_000, { nowMs: 25_000 }).get('new')).toBeCloseTo(1.5 / 4.5, 2);
    // No clock in the context: configured weights.
    expect(shares(b, 50_000).get('new')).toBeCloseTo(0.5, 2);
  });

  it('redistributes an excluded upstream’s share over the others by weight', () => {
    const b = new RandomBalancer({ candidates: [{ id: 'a', weight: 1 }, { id: 'b', weight: 3 }, { id: 'c', weight: 6 }] });
    const s = shares(b, 50_000, { exclude: new Set(['c']) });
    expect(s.get('c')).toBeUndefined();
    expect(s.get('b')).toBeCloseTo(0.75, 2);
  });
});
