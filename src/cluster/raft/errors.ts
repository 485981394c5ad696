/**
 * Error catalogue of the pure Raft core. One class per failure, each with a stable code
 * `MG_ERR_RAFT_<PROBLEM>` (style.md "Errors"); callers switch on `code`, never on message text.
 *
 * Invariant: the core throws only these classes for conditions a caller or the network can cause
 * (bad input, dropped proposal, compacted log). Broken internal invariants throw plain `Error`
 * (they are bugs and must crash tests).
 */

export type RaftErrorCode =
  | 'MG_ERR_RAFT_PROPOSAL_DROPPED'
  | 'MG_ERR_RAFT_CONF_CHANGE_PENDING'
  | 'MG_ERR_RAFT_INVALID_CONF_CHANGE'
  | 'MG_ERR_RAFT_READ_INDEX_DROPPED'
  | 'MG_ERR_RAFT_COMPACTED'
  | 'MG_ERR_RAFT_UNAVAILABLE'
  | 'MG_ERR_RAFT_SNAP_OUT_OF_DATE'
  | 'MG_ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'MG_ERR_RAFT_STEP_LOCAL_MSG'
  | 'MG_ERR_RAFT_STEP_PEER_NOT_FOUND'
  | 'MG_ERR_RAFT_INVALID_MESSAGE'
  | 'MG_ERR_RAFT_INVALID_CONFIG';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The proposal was not appended: no known leader, leadership transfer in progress, or removed node. Retry later. */
export class ErrProposalDropped extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`); }
}

/**
 * A membership change was refused because another one is not yet applied, or because this leader has
 * not yet committed an entry of its own term (Ongaro, raft-dev 2015-07-10, "bug in single-server
 * membership changes").
 */
export class ErrConfChangePending extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_CONF_CHANGE_PENDING', `raft conf change refused: ${reason}`); }
}

export class ErrInvalidConfChange extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_INVALID_CONF_CHANGE', `invalid raft conf change: ${reason}`); }
}

/** A ReadIndex request could not be forwarded because no leader is known. Retry later. */
export class ErrReadIndexDropped extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_READ_INDEX_DROPPED', `raft read index dropped: ${reason}`); }
}

/** Storage: the requested index is below the first available index (compacted into a snapshot). */
export class ErrCompacted extends RaftError {
  constructor() { super('MG_ERR_RAFT_COMPACTED', 'requested index is unavailable due to compaction'); }
}

/** Storage: the requested index is beyond the last index. */
export class ErrUnavailable extends RaftError {
  constructor() { super('MG_ERR_RAFT_UNAVAILABLE', 'requested entry at index is unavailable'); }
}

/** Storage: the snapshot to apply or create is older than the one already held. */
export class ErrSnapOutOfDate extends RaftError {
  constructor() { super('MG_ERR_RAFT_SNAP_OUT_OF_DATE', 'requested index is older than the existing snapshot'); }
}

/** Storage may throw this from snapshot() while one is being built; the leader retries later. */
export class ErrSnapshotTemporarilyUnavailable extends RaftError {
  constructor() { super('MG_ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'snapshot is temporarily unavailable'); }
}

/** A message type that only the local node may generate (MsgHup) arrived through step(). */
export class ErrStepLocalMsg extends RaftError {
  constructor(type: string) { super('MG_ERR_RAFT_STEP_LOCAL_MSG', `cannot step raft local message ${type}`); }
}

/** A response arrived from a peer this node does not track (e.g. a removed member). */
export class ErrStepPeerNotFound extends RaftError {
  constructor(from: string) { super('MG_ERR_RAFT_STEP_PEER_NOT_FOUND', `cannot step response from unknown peer ${JSON.stringify(from)}`); }
}

export class ErrInvalidMessage extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_INVALID_MESSAGE', `invalid raft message: ${reason}`); }
}

export class ErrInvalidConfig extends RaftError {
  constructor(reason: string) { super('MG_ERR_RAFT_INVALID_CONFIG', `invalid raft config: ${reason}`); }
}
