/**
 * The current configuration (voters, learners) and the leader's per-peer Progress
 * (etcd-io/raft tracker/tracker.go). Learners have Progress but are never in `voters`, so they never
 * count in elections, commitment or CheckQuorum.
 *
 * Invariant: voters ∩ learners = ∅; every voter and learner has a Progress entry.
 */
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult, type VoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number, readonly maxInflightBytes = 0) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  isVoter(id: NodeId): boolean { return this.voters.has(id); }

  /** All tracked peers (voters then learners), in a stable order so message output is deterministic. */
  peers(): NodeId[] {
    return [...[...this.voters].sort(), ...[...this.learners].sort()];
  }

  /** Largest index replicated on a majority of voters. */
  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  quorumActive(self: NodeId): boolean {
    return hasQuorum(this.voters, (id) => id === self || (this.progress.get(id)?.recentActive ?? false));
  }

  resetVotes(): void { this.votes.clear(); }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.voters, this.votes) };
  }

  /** Installs a configuration; keeps existing Progress of peers that stay, creates Progress for new ones. */
  setConfig(cs: ConfState, nextIndex: number): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners.filter((id) => !this.voters.has(id)));
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.voters, ...this.learners]) {
      let pr = this.progress.get(id);
      if (!pr) {
        pr = new Progress(id, nextIndex, this.maxInflight, this.learners.has(id), this.maxInflightBytes);
        // A new peer counts as active so CheckQuorum does not depose the leader before it hears back (etcd confchange.go).
        pr.recentActive = true;
        this.progress.set(id, pr);
      }
      pr.isLearner = this.learners.has(id);
    }
  }
}
