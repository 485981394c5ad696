/**
 * Raft wire and storage types, shared by the pure core (raft/), storage (../storage.ts) and
 * transport (../transport.ts). Vocabulary follows etcd-io/raft (raftpb).
 *
 * Node ids are strings (meshgate peer ids, e.g. "gw-1"); 0-like "none" is the empty string.
 */

export type NodeId = string;
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'conf-change';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque command bytes (JSON text for meshgate's state machine); empty for the leader's no-op. */
  readonly data: Uint8Array;
}

export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Serialized application state (membership) at metadata.index. */
  readonly data: Uint8Array;
}

/** A single-server membership change (Raft thesis §4.1), carried in a conf-change entry as JSON. */
export interface ConfChange {
  readonly kind: 'add-voter' | 'add-learner' | 'remove';
  readonly node: NodeId;
  /** Peer transport address (host:port), so every peer learns where to reach the new node. */
  readonly address?: string;
}

export type MessageType =
  | 'MsgHup'
  | 'MsgPreVote'
  | 'MsgPreVoteResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgApp'
  | 'MsgAppResp'
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgSnap'
  | 'MsgTimeoutNow'
  | 'MsgReadIndex'
  | 'MsgReadIndexResp'
  | 'MsgProp'
  | 'MsgTransferLeader';

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** MsgApp: prevLogTerm. Vote requests: candidate's last log term. */
  readonly logTerm?: number;
  /** MsgApp: prevLogIndex. Vote requests: candidate's last log index. AppResp: match/reject index. */
  readonly index?: number;
  readonly entries?: readonly Entry[];
  readonly commit?: number;
  readonly reject?: boolean;
  /** MsgAppResp rejection hint: follower's last index / conflict index. */
  readonly rejectHint?: number;
  readonly logTermHint?: number;
  readonly snapshot?: Snapshot;
  /** ReadIndex request context, echoed back. */
  readonly context?: string;
}
