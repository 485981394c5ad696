/**
 * Seed selection and failure reporting shared by the simulator tests.
 *
 *   MESHGATE_SIM_SEEDS=<n>  runs n seeds per cluster size instead of the default (e.g. 100000 before a release);
 *   MESHGATE_SIM_SEED=<s>   replays exactly one seed (add MESHGATE_SIM_DEBUG=1 to print every event).
 * A failing seed is reported with the command that replays it.
 */
import { runSeed, type Mutation, type SimResult } from './sim.js';

export function seedsToRun(defaultCount: number): number[] {
  const one = process.env['MESHGATE_SIM_SEED'];
  if (one !== undefined && one !== '') return [Number(one)];
  const n = Number(process.env['MESHGATE_SIM_SEEDS'] ?? defaultCount);
  return Array.from({ length: n }, (_, i) => i + 1);
}

export interface SeedsSummary {
  results: SimResult[];
  failures: string[];
}

/**
 * Runs the seeds, yielding to the event loop every few seeds: one long synchronous loop would starve the
 * test runner's worker RPC (vitest reports "Timeout calling onTaskUpdate" on a busy machine).
 */
export async function runSeeds(voters: number, seeds: number[], file: string, mutations?: ReadonlySet<Mutation>): Promise<SeedsSummary> {
  const results: SimResult[] = [];
  const failures: string[] = [];
  for (const [k, seed] of seeds.entries()) {
    if (k % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
    const r = runSeed({ seed, voters, mutations });
    if (r.ok) results.push(r.result);
    else {
      failures.push(`seed ${seed} (${voters} voters): ${r.error.message}\n  replay: MESHGATE_SIM_SEED=${seed} npx vitest run ${file}`);
      if (failures.length >= 3) break; // enough to debug; keep the run short
    }
  }
  return { results, failures };
}

export function totals(results: SimResult[]) {
  const sum = (f: (r: SimResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  return {
    seeds: results.length,
    events: sum((r) => r.events),
    crashes: sum((r) => r.crashes),
    leaderChanges: sum((r) => r.leaderChanges),
    confChanges: sum((r) => r.confChanges),
    reads: sum((r) => r.reads),
    committedOk: sum((r) => r.proposals.ok),
    failedProposals: sum((r) => r.proposals.failed),
    maxLivenessTicks: Math.max(0, ...results.map((r) => r.livenessTicks)),
  };
}
