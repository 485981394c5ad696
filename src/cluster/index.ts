/**
 * Public surface of the cluster area (style.md rule 5): the Raft node driver for app/ and admin/, the
 * membership command/result types, and the error catalogue. Storage, transport and codec stay internal
 * (tests import them directly).
 */
export {
  RaftNode,
  DEFAULT_TICK_MS,
  DEFAULT_ELECTION_TICK,
  DEFAULT_HEARTBEAT_TICK,
  DEFAULT_SNAPSHOT_EVERY,
  DEFAULT_TRAILING_ENTRIES,
  DEFAULT_PROPOSAL_TIMEOUT_MS,
  MAX_COMMAND_BYTES,
  type RaftNodeOptions,
  type RaftNodeStatus,
  type PeerStatus,
  type PeerAddress,
  type ProposeResult,
  type MembershipUpdate,
} from './node.js';
export {
  MembershipStateMachine,
  validateCommand,
  type MembershipCommand,
  type MembershipChange,
  type MembershipErrorCode,
  type ApplyResult,
} from './membership.js';
export {
  ClusterError,
  CorruptLogError,
  CorruptSnapshotError,
  StorageFailedError,
  NodeIdMismatchError,
  NoQuorumError,
  NotLeaderError,
  RaftTimeoutError,
  RaftClosedError,
  BadCommandError,
  type ClusterErrorCode,
} from './errors.js';
export type { ClusterLogger } from './logger.js';
export type { RaftRole, NodeId } from './raft/index.js';
export { MAX_FRAME_BYTES, type TransportStats } from './transport.js';
