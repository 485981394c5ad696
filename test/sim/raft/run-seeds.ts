/**
 * Seed selection and failure reporting shared by the simulator tests.
 *
 *   MESHGATE_SIM_SEEDS=<n>  runs n seeds per cluster size instead of the default (`npm run test:sim:long`
 *                           runs 100,000 before a release);
 *   MESHGATE_SIM_SEED=<s>   replays exactly one seed (add MESHGATE_SIM_DEBUG=1 to print every event);
 *   MESHGATE_SIM_FRESH=<commit>  adds a window of FRESH_WINDOW seeds derived from the commit id to the
 *                           fixed 1..n, so each CI run explores schedules no earlier run tried (.ci/run
 *                           sets it; about 4 s per cluster size).
 * Seeds in REGRESSION_SEEDS always run. A failing seed is reported with the command that replays it;
 * add it to REGRESSION_SEEDS when fixing what it found.
 */
import { runSeed, type Mutation, type SimResult } from './sim.js';

/**
 * Seeds that once failed (found by fresh windows or long runs), kept as regression cases. A seed
 * replays its schedule only while the simulator draws the same choices, so each also has a
 * deterministic test:
 *   98493783 (2 voters) a stale-term MsgVote went unanswered and two candidates raced terms for ever
 *            (raft.ts answers it with its term; paper.test.ts "refuses a stale-term RequestVote").
 */
export const REGRESSION_SEEDS: readonly number[] = [98493783];
export const FRESH_WINDOW = 50;

/** First seed of the fresh window for a commit id: far above any fixed range, stable per commit. */
export function freshBase(commit: string): number {
  const h = parseInt(commit.replace(/[^0-9a-f]/gi, '').slice(0, 8) || '0', 16);
  return 1_000_000 + (h % 1_000_000_000);
}

/**
 * The seeds one simulator test runs. `env` names its variables (the driver simulator has its own, so a
 * long run of one simulator does not lengthen the other) and `regression` its kept failing seeds.
 */
export function seedsToRun(defaultCount: number, o: { env?: string; regression?: readonly number[]; freshWindow?: number } = {}): number[] {
  const env = o.env ?? 'MESHGATE_SIM';
  const one = process.env[`${env}_SEED`];
  if (one !== undefined && one !== '') return [Number(one)];
  const n = Number(process.env[`${env}_SEEDS`] ?? defaultCount);
  const seeds = new Set(Array.from({ length: n }, (_, i) => i + 1));
  for (const s of o.regression ?? REGRESSION_SEEDS) seeds.add(s);
  const fresh = process.env['MESHGATE_SIM_FRESH'];
  if (fresh) {
    const base = freshBase(fresh);
    for (let i = 0; i < (o.freshWindow ?? FRESH_WINDOW); i++) seeds.add(base + i);
  }
  return [...seeds];
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
