/**
 * Mutation proof through the production driver (raft.md R-C5, issue 19): each deliberately broken
 * variant — of the driver (node.ts DriverMutationForTest), of the storage recovery (storage.ts
 * StorageMutationForTest) or of the core it drives — must be caught by the driver simulator within
 * 1,000 seeds, by an invariant (checks.ts) or by the linearizability of the client history. Stops at
 * the first catching seed.
 *
 * Not listed, with why (both are equivalent mutants in this design: no schedule can tell them apart):
 * - 'apply-before-persist' (apply a Ready's committed entries before its write is durable) survives
 *   seeds 1–1,000 of a single voter, 1–300 of 3 voters, 1–200 of 2 and 1–100 of 3 voters + 2 spares
 *   (churn): the core counts the leader's own entries toward a commit only once the driver reported
 *   them durable (raft.ts onEntriesStable, after advance), so every entry a Ready hands out as
 *   committed is already on the disks of a quorum — the leader's own included, also when it is the
 *   only voter. Applying it before this Ready's (later) entries are durable exposes nothing a crash
 *   can take back.
 * - 'follower-acks-past-last-new' (a follower acks its whole log, not the append's last entry): a
 *   follower's log past what a MsgApp of the current leader matched is always that leader's: the first
 *   append it accepts in a term starts right at the first index where the two logs differ (the
 *   rejection hints land there, and the leader's no-op makes them differ by its last index at the
 *   latest), so an older tail is truncated; from then on the follower holds only the leader's entries
 *   (terms only grow along a log), and an ack leaves once the previous Ready's write is durable. The
 *   ack past lastNew is then true (seeds 1–300 of 3 voters, 1–150 of 5 survive; so do seeds 1–150 of 3
 *   voters once a third of the seeds send one entry per MsgApp, where an append can end before the
 *   follower's log does). etcd's TestHandleMsgApp cases in test/unit/cluster/raft/scenarios.test.ts
 *   catch it.
 */
import { describe, expect, it } from 'vitest';
import { DriverSimViolation, runDriverSeed, type DriverSimOptions, type Mutation } from './cluster-sim.js';

const MUTATIONS: [Mutation, string, Omit<DriverSimOptions, 'seed' | 'mutations'>][] = [
  ['send-before-durable', 'acks and votes sent before the write is durable (driver)', { voters: 3 }],
  // Only an even voter count plus a learner makes a learner change the quorum size.
  ['learners-count-in-commit-quorum', 'learners counted in the commit quorum (core)', { voters: 2, spares: 2, operator: true }],
  ['append-ignores-prev-log-term', 'an append that accepts a mismatched prevLogTerm (core)', { voters: 3 }],
  // Needs a crash between a durable snap-<S>.snap and the segment rewrite (the disk failpoints).
  ['recovery-skips-snapshot-clamp', 'recovery takes the newest snapshot without raising the commit index to it (storage)', { voters: 3 }],
  // Needs an ack of an older term still queued when its leader leads again (a leader power cut in the
  // early-send window, the transport's reconnect backoff).
  ['accept-stale-term-app-resp', 'a leader acts on a MsgAppResp of an older term (core)', { voters: 3 }],
];

const MAX_SEEDS = 1000;

describe('the driver simulator catches every deliberately broken variant within 1,000 seeds', () => {
  for (const [mutation, title, config] of MUTATIONS) {
    it(title, async () => {
      let caught: { seed: number; error: Error } | undefined;
      for (let seed = 1; seed <= MAX_SEEDS && !caught; seed++) {
        const r = await runDriverSeed({ ...config, seed, mutations: new Set([mutation]) });
        if (!r.ok) caught = { seed, error: r.error };
      }
      expect(caught, `${mutation} survived ${MAX_SEEDS} seeds`).toBeDefined();
      const { seed, error } = caught!;
      console.log(`mutation ${mutation}: caught at seed ${seed} by ${error instanceof DriverSimViolation ? error.invariant : error.message}`);
      // Caught by an invariant, not by an unrelated crash of the harness.
      expect(error, error.stack).toBeInstanceOf(DriverSimViolation);
    }, 900_000);
  }
});
