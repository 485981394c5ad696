/**
 * Seeded simulation of a 3-voter Raft group under network, process and disk faults plus membership
 * churn (raft.md R-C1…R-C4). Every event is followed by the safety checks in sim.ts; after the faults
 * stop the group must elect a leader, resolve every proposal and converge within a bounded time.
 * Default: 500 seeds (about 10 s on one idle core); MESHGATE_SIM_SEEDS / MESHGATE_SIM_SEED widen or replay (see run-seeds.ts).
 */
import { expect, it } from 'vitest';
import { runSeeds, seedsToRun, totals } from './run-seeds.js';

const FILE = 'test/sim/raft/safety-3-voters.test.ts';

const seeds = seedsToRun(500);

it('3 voters: every random schedule keeps Raft safety and converges after faults stop', async () => {
  const { results, failures } = await runSeeds(3, seeds, FILE);
  expect(failures, failures.join('\n')).toEqual([]);
  const t = totals(results);
  console.log(`raft sim 3 voters: ${JSON.stringify(t)}`);
  if (seeds.length >= 100) {
    // The schedules really exercise the faults they claim to (a sim that injects nothing proves nothing).
    expect(t.crashes).toBeGreaterThan(seeds.length);
    expect(t.leaderChanges).toBeGreaterThan(2 * seeds.length);
    expect(t.confChanges).toBeGreaterThan(seeds.length);
    expect(t.reads).toBeGreaterThan(seeds.length);
    expect(t.committedOk).toBeGreaterThan(10 * seeds.length);
    expect(t.events / seeds.length).toBeGreaterThan(2000);
  }
}, Math.max(300_000, seeds.length * 1_000)); // a long run (test:sim:long) gets time per seed
