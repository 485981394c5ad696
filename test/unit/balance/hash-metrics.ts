/**
 * Measurements shared by the ring-hash and Maglev tests (and printed by bench/micro/balance-pick.ts's
 * sibling figures): key shares over random keys, and how many keys move on a membership change.
 * Keys are random strings from a seeded generator, so figures are reproducible.
 */
import type { Balancer, PickCandidate } from '../../../src/balance/index.js';
import { createSeededRandom } from '../../../src/lib/rng.js';

export function randomKeys(count: number, seed: number): string[] {
  const rnd = createSeededRandom(seed);
  return Array.from({ length: count }, () => `k-${Math.floor(rnd() * 2 ** 32).toString(36)}-${Math.floor(rnd() * 2 ** 32).toString(36)}`);
}

export function equalCandidates(n: number, prefix = 'api'): PickCandidate[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}`, weight: 1 }));
}

/** Share of `keys` each upstream receives. */
export function keyShares(b: Balancer, keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keys) {
    const id = b.pick({ hashKey: k })!;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return new Map([...counts].map(([id, c]) => [id, c / keys.length]));
}

/** max |share / expected − 1| over the upstreams. */
export function maxRelativeDeviation(shares: ReadonlyMap<string, number>, expected: ReadonlyMap<string, number>): number {
  let worst = 0;
  for (const [id, e] of expected) worst = Math.max(worst, Math.abs((shares.get(id) ?? 0) / e - 1));
  return worst;
}

export interface Movement {
  /** Fraction of keys whose upstream changed. */
  moved: number;
  /** Destination upstream → number of keys that moved there. */
  movedTo: Map<string, number>;
  /** Source upstream → number of keys that moved away from it. */
  movedFrom: Map<string, number>;
}

export function movement(before: Balancer, after: Balancer, keys: readonly string[]): Movement {
  const movedTo = new Map<string, number>();
  const movedFrom = new Map<string, number>();
  let moved = 0;
  for (const k of keys) {
    const a = before.pick({ hashKey: k })!;
    const b = after.pick({ hashKey: k })!;
    if (a !== b) {
      moved++;
      movedTo.set(b, (movedTo.get(b) ?? 0) + 1);
      movedFrom.set(a, (movedFrom.get(a) ?? 0) + 1);
    }
  }
  return { moved: moved / keys.length, movedTo, movedFrom };
}
