/**
 * R-A3: replaying a seed yields the identical event trace (hash over every event, its time and the
 * final state of every node). This is what makes "MESHGATE_SIM_SEED=<n>" a faithful replay.
 */
import { expect, it } from 'vitest';
import { runSeed } from './sim.js';

it('replaying any of 20 seeds twice yields an identical trace', () => {
  for (const voters of [3, 5]) {
    for (let seed = 1; seed <= 10; seed++) {
      const a = runSeed({ seed, voters });
      const b = runSeed({ seed, voters });
      expect(a.ok && b.ok, `seed ${seed}`).toBe(true);
      if (a.ok && b.ok) expect(b.result).toEqual(a.result);
    }
  }
  const x = runSeed({ seed: 1, voters: 3 });
  const y = runSeed({ seed: 2, voters: 3 });
  if (x.ok && y.ok) expect(x.result.traceHash).not.toBe(y.result.traceHash);
});
