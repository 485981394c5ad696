/**
 * Error catalogue for the cluster area (storage, transport, driver). One class per failure, each with a
 * stable code `MG_ERR_RAFT_<PROBLEM>` (style.md "Errors"); the admin layer maps codes to HTTP statuses
 * (NO_QUORUM / NOT_LEADER → 503, TIMEOUT → 504, BAD_COMMAND → 400).
 *
 * Invariant: `code` never changes once published; messages may.
 */

export type ClusterErrorCode =
  | 'MG_ERR_RAFT_CORRUPT_LOG'
  | 'MG_ERR_RAFT_CORRUPT_SNAPSHOT'
  | 'MG_ERR_RAFT_STORAGE_FAILED'
  | 'MG_ERR_RAFT_NODE_ID_MISMATCH'
  | 'MG_ERR_RAFT_NO_QUORUM'
  | 'MG_ERR_RAFT_NOT_LEADER'
  | 'MG_ERR_RAFT_TIMEOUT'
  | 'MG_ERR_RAFT_CLOSED'
  | 'MG_ERR_RAFT_BAD_COMMAND'
  | 'MG_ERR_RAFT_PROPOSAL_DROPPED';

export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  constructor(code: ClusterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A record before the tail of the log failed its checksum: the peer must not start (R-E1, fail closed). */
export class CorruptLogError extends ClusterError {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super('MG_ERR_RAFT_CORRUPT_LOG', `raft log ${file} is corrupt at offset ${offset}: ${reason}; refusing to start (restore the data dir or remove this peer and re-add it empty)`);
  }
}

/** No usable snapshot where one is required (checksum failure, truncated file, or missing). */
export class CorruptSnapshotError extends ClusterError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super('MG_ERR_RAFT_CORRUPT_SNAPSHOT', `raft snapshot ${file} is unusable: ${reason}`);
  }
}

/** A write or fsync failed earlier; storage stays failed for the life of the process (cockroach#37102). */
export class StorageFailedError extends ClusterError {
  constructor(message: string, cause?: unknown) {
    super('MG_ERR_RAFT_STORAGE_FAILED', message, { cause });
  }
}

export class NodeIdMismatchError extends ClusterError {
  constructor(dataDir: string, stored: string, configured: string) {
    super('MG_ERR_RAFT_NODE_ID_MISMATCH', `data dir ${dataDir} belongs to node "${stored}" but node.id is "${configured}"; node ids are never reused (use a fresh dataDir)`);
  }
}

/** No leader is known to this peer, so a write or a consistent read cannot proceed now. */
export class NoQuorumError extends ClusterError {
  constructor(message = 'no raft leader is known (no quorum); membership is read-only on this peer') {
    super('MG_ERR_RAFT_NO_QUORUM', message);
  }
}

export class NotLeaderError extends ClusterError {
  constructor(readonly leader: string | undefined) {
    super('MG_ERR_RAFT_NOT_LEADER', `this peer is not the raft leader${leader ? ` (leader is ${leader})` : ''}`);
  }
}

/** The outcome is unknown: the entry may still commit later. Retry with the same clientId/seq. */
export class RaftTimeoutError extends ClusterError {
  constructor(what: string, ms: number) {
    super('MG_ERR_RAFT_TIMEOUT', `${what} did not complete within ${ms} ms; outcome unknown, retry with the same clientId and seq`);
  }
}

export class RaftClosedError extends ClusterError {
  constructor() {
    super('MG_ERR_RAFT_CLOSED', 'the raft node is closed');
  }
}

export class BadCommandError extends ClusterError {
  constructor(message: string) {
    super('MG_ERR_RAFT_BAD_COMMAND', message);
  }
}
