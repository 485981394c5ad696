/**
 * Seedable pseudo-random source (mulberry32). Cores take `() => number` so tests control randomness;
 * this is the one implementation used by simulators and by the app (seeded from crypto at start).
 */
export type Random = () => number;

export function createSeededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
