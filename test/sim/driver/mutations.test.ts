/**
 * Mutation proof through the production driver (raft.md R-C5, issue 19): each deliberately broken
 * variant — of the driver (node.ts DriverMutationForTest), of the storage recovery (storage.ts
 * StorageMutationForTest) or of the core it drives — must be caught by the driver simulator within
 * 1,000 seeds, by an invariant (checks.ts) or by the linearizability of the client history. Stops at
 * the first catching seed.
 *
 * Two of them are invisible under meshgate's own choices and are caught under a legal alternative of the
 * core (raft/config.ts RaftVariantForTest), which the safety runs (safety.test.ts) also draw on a quarter
 * of their seeds each, so the driver is shown correct under it as well:
 * - 'apply-before-persist' (apply a Ready's committed entries before its write is durable). Our core
 *   counts the leader's own entries toward a commit only once the driver reported them durable
 *   (raft.ts onEntriesStable), so every entry a Ready hands out as committed is already on a quorum of
 *   disks and applying it early exposes nothing a crash can take back: it survived seeds 1–1,000 of a
 *   single voter. Under 'self-ack-on-append' (etcd's contract before async storage writes: the leader
 *   counts its copy at append, and nothing leaves or is applied before the write) a single voter commits
 *   at append, and a driver that answers before its write is durable loses an acknowledged write to a
 *   power cut.
 * - 'follower-acks-past-last-new' (a follower acks its whole log, not the append's last entry). With the
 *   follower's rejection hint the first append a follower accepts in a term starts right at the first
 *   index where the two logs differ, so an older tail is always truncated first and an ack past lastNew
 *   is true (seeds 1–300 of 3 voters survived, also with one entry per MsgApp; etcd's TestHandleMsgApp
 *   cases in test/unit/cluster/raft/scenarios.test.ts catch it). Under 'probe-from-match' (the leader
 *   probes again from match + 1, the slowest decrement the paper allows) with one entry per MsgApp, an
 *   accepted append ends before the follower's stale tail, and the ack claims that tail as the leader's.
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
  // A single voter commits at append under etcd's classic contract; see the header.
  ['apply-before-persist', 'committed entries applied before the write is durable (driver)', { voters: 1, variants: new Set(['self-ack-on-append']) }],
  // An append shorter than the follower's log, after a probe from match + 1; see the header.
  ['follower-acks-past-last-new', 'a follower acks past the last entry the append matched (core)', { voters: 3, variants: new Set(['probe-from-match']), oneEntryPerMsgApp: true }],
];

const MAX_SEEDS = 1000;

describe('the driver simulator catches every deliberately broken variant within 1,000 seeds', () => {
  for (const [mutation, title, config] of MUTATIONS) {
    it(title, async () => {
      let caught: { seed: number; error: Error } | undefined;
      for (let seed = 1; seed <= MAX_SEEDS && !caught; seed++) {
        // Variants only where a case names them: the others keep the schedules they were caught on.
        const r = await runDriverSeed({ variants: new Set(), ...config, seed, mutations: new Set([mutation]) });
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
