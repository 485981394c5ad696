/**
 * The production driver (RaftNode, DiskStorage, codec.ts) under the driver simulator (cluster-sim.ts):
 * for each configuration, every seeded schedule of crashes, power cuts (also at failpoints inside
 * snapshot writes, compactions and segment rewrites), partitions and message faults
 * keeps Raft safety after every task, the client history is linearizable (no acknowledged write lost)
 * and the group converges once the faults stop. A quarter of the seeds each run the core's legal
 * alternatives (raft/config.ts RaftVariantForTest), which the driver must be correct under as well.
 * Default seeds keep the file under ~60 s on a loaded 2-core machine; MESHGATE_DRIVER_SIM_SEEDS / _SEED widen or replay (run-driver-seeds.ts).
 */
import { expect, it } from 'vitest';
import type { DriverSimOptions } from './cluster-sim.js';
import { driverSeeds, driverTotals, runDriverSeeds } from './run-driver-seeds.js';

const FILE = 'test/sim/driver/safety.test.ts';

const CONFIGS: [string, Omit<DriverSimOptions, 'seed'>, number][] = [
  ['3 voters', { voters: 3 }, 24],
  // One voter: every commit counts only the leader's own disk, so a power cut is all that tests it.
  ['1 voter', { voters: 1 }, 24],
  ['5 voters', { voters: 5 }, 6],
  // Learners join on fresh disks, are promoted, voters (the leader too) are removed: 2–4 voters.
  ['3 voters + 2 spares, membership churn', { voters: 3, spares: 2, operator: true }, 6],
  ['2 voters + 2 spares, membership churn', { voters: 2, spares: 2, operator: true }, 6],
];

for (const [title, config, count] of CONFIGS) {
  const seeds = driverSeeds(count);
  it(`${title}: the production driver keeps Raft safety and linearizability under crashes, power cuts and partitions`, async () => {
    const { results, failures } = await runDriverSeeds(config, seeds, FILE);
    expect(failures, failures.join('\n')).toEqual([]);
    const t = driverTotals(results);
    console.log(`driver sim ${title}: ${JSON.stringify(t)}`);
    // The schedules exercise what they claim to (a simulator that injects nothing proves nothing).
    expect(t.powerLosses).toBeGreaterThan(seeds.length);
    expect(t.diskCrashes).toBeGreaterThan(0);
    expect(t.writesAcked).toBeGreaterThan(100 * seeds.length);
    expect(t.reads).toBeGreaterThan(50 * seeds.length);
    if (config.voters > 1) {
      expect(t.partitions).toBeGreaterThan(seeds.length);
      expect(t.deliveredAfterOutage).toBeGreaterThan(0);
    }
    if (config.operator) expect(t.confChanges).toBeGreaterThan(0);
    // The core's legal alternatives (RaftVariantForTest) ran too: each is drawn on a quarter of the seeds.
    if (seeds.length >= 24) {
      expect(t.selfAckOnAppend).toBeGreaterThan(0);
      expect(t.probeFromMatch).toBeGreaterThan(0);
    }
  }, Math.max(120_000, seeds.length * 10_000));
}
