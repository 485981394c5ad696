/**
 * Seeded simulation of 2- and 4-voter groups (raft.md R-C1…R-C4), where the operator's learners make
 * the member count odd: the case where counting learners in the commit quorum changes the quorum size
 * (a mutant that did so survived 20,000 seeds of 3 and 5 voters). Same checks as the 3/5-voter runs.
 * Default: 200 seeds per size; MESHGATE_SIM_SEEDS / MESHGATE_SIM_SEED widen or replay (see run-seeds.ts).
 */
import { expect, it } from 'vitest';
import { runSeeds, seedsToRun, totals } from './run-seeds.js';

const FILE = 'test/sim/raft/safety-even-voters.test.ts';

const seeds = seedsToRun(200);

for (const voters of [2, 4]) {
  it(`${voters} voters (+ learners): every random schedule keeps Raft safety and converges after faults stop`, async () => {
    const { results, failures } = await runSeeds(voters, seeds, FILE);
    expect(failures, failures.join('\n')).toEqual([]);
    const t = totals(results);
    console.log(`raft sim ${voters} voters: ${JSON.stringify(t)}`);
    if (seeds.length >= 100) {
      expect(t.crashes).toBeGreaterThan(seeds.length);
      expect(t.confChanges).toBeGreaterThan(seeds.length);
      expect(t.committedOk).toBeGreaterThan(10 * seeds.length);
    }
  }, Math.max(300_000, seeds.length * 1_000));
}
