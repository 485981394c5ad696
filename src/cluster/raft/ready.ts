/**
 * Ready: everything the core produced since the last advance() that the driver must act on
 * (etcd-io/raft node.go Ready). See raw-node.ts for the order in which the driver must handle it.
 */
import type { RaftRole } from './raft.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from './types.js';

export interface SoftState {
  lead: NodeId;
  role: RaftRole;
}

export interface Ready {
  /** Volatile leader/role information; present only when it changed. Never persisted. */
  softState?: SoftState;
  /** Present only when term, vote or commit changed; must be persisted before messages are sent. */
  hardState?: HardState;
  /** Entries to append to stable storage (replacing any existing entries at or after entries[0].index). */
  entries: Entry[];
  /** Snapshot to install in stable storage (and in the state machine) before anything else. */
  snapshot?: Snapshot;
  /** Committed entries to apply to the state machine, in order, after the above is durable. */
  committedEntries: Entry[];
  /** Messages to send, after hardState/entries/snapshot of this Ready are durable (see sendBeforePersist). */
  messages: Message[];
  /** Linearizable read results: serve reads for `context` once applied index ≥ `index`. */
  readStates: { index: number; context: string }[];
  /** True when hardState's term/vote changed or entries/snapshot are present: the write needs fsync. */
  mustSync: boolean;
  /**
   * True when `messages` may leave while this Ready's writes are still in flight: the node is the leader
   * and its term and vote did not change in this Ready (Raft thesis §10.2.1, etcd server's `islead`
   * path). A leader's messages carry its durable term and entries a follower may store before the
   * leader does; the leader still counts toward a commit only in a later Ready, after its own write.
   */
  sendBeforePersist: boolean;
}

export function isHardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
