/**
 * Public surface of the pure Raft core (style.md rule 5: other folders import only this file).
 * The core does no I/O and reads no clock; see raw-node.ts for the driver's Ready ordering contract.
 */
export { RawNode, type RaftStatus } from './raw-node.js';
export type { Ready, SoftState } from './ready.js';
export type { RaftConfig, RaftMutationForTest, RaftVariantForTest } from './config.js';
export { DEFAULT_MAX_INFLIGHT_MSGS, DEFAULT_MAX_SIZE_PER_MSG } from './config.js';
export type { RaftStorage } from './storage.js';
export { MemoryStorage, type MemoryStorageInit } from './memory-storage.js';
export { encodeConfChange, decodeConfChange, type RaftRole, type ReadState } from './raft.js';
export {
  RaftError,
  type RaftErrorCode,
  ErrProposalDropped,
  ErrConfChangePending,
  ErrInvalidConfChange,
  ErrReadIndexDropped,
  ErrCompacted,
  ErrUnavailable,
  ErrSnapOutOfDate,
  ErrSnapshotTemporarilyUnavailable,
  ErrStepLocalMsg,
  ErrStepPeerNotFound,
  ErrInvalidMessage,
  ErrInvalidConfig,
} from './errors.js';
export * from './types.js';
