/**
 * Mutation proof (raft.md R-C5): each deliberately broken variant of the core or of the driver must be
 * caught by the simulator within 1,000 seeds. A mutation that survives means the simulator or its
 * invariants are too weak to catch that class of bug. Stops at the first catching seed to stay fast.
 */
import { describe, expect, it } from 'vitest';
import { runSeed, SimViolation, type Mutation } from './sim.js';

/** Mutation, title, and the group sizes searched (the seed budget is split between them). */
const MUTATIONS: [Mutation, string, number[]?][] = [
  ['commit-prior-term-by-counting', '(1) commit of a prior-term entry by counting replicas (Figure 8)'],
  ['vote-ignores-last-log-term', '(2) vote that ignores the last log term'],
  ['append-ignores-prev-log-term', '(3) append that accepts a mismatched prevLogTerm'],
  ['messages-before-hard-state', '(4) term/vote not durable before the reply leaves'],
  ['conf-change-before-own-term-commit', '(5) conf change before the new leader commits in its term'],
  ['ack-before-fsync', '(6) append acknowledged before fsync'],
  ['early-send-any-role', '(7) the leader-only early send (thesis §10.2.1) allowed to followers and candidates'],
  ['leader-counts-unsynced-append', '(8) the leader counts its own entries toward a commit before they are durable'],
  // Only an even voter count plus a learner makes the learner change the quorum size.
  ['learners-count-in-commit-quorum', '(10) learners counted in the commit quorum', [2, 4]],
];

const MAX_SEEDS = 1000;

describe('the simulator catches every deliberately broken variant within 1,000 seeds', () => {
  for (const [mutation, title, sizes = [3, 5]] of MUTATIONS) {
    it(title, async () => {
      let caught: { seed: number; voters: number; error: Error } | undefined;
      outer: for (const voters of sizes) {
        for (let seed = 1; seed <= MAX_SEEDS / sizes.length; seed++) {
          if (seed % 20 === 0) await new Promise((resolve) => setImmediate(resolve)); // keep the runner's RPC alive
          const r = runSeed({ seed, voters, mutations: new Set([mutation]) });
          if (!r.ok) { caught = { seed, voters, error: r.error }; break outer; }
        }
      }
      expect(caught, `${mutation} survived ${MAX_SEEDS} seeds`).toBeDefined();
      const kind = caught!.error instanceof SimViolation ? caught!.error.invariant : `core assertion: ${caught!.error.message}`;
      console.log(`mutation ${mutation}: caught at seed ${caught!.seed} (${caught!.voters} voters) by ${kind}`);
      // Caught by an invariant check, not by an unrelated crash of the harness.
      expect(caught!.error instanceof SimViolation || /raft:/.test(caught!.error.message)).toBe(true);
    }, 120_000);
  }
});
