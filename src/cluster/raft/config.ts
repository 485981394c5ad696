/**
 * Configuration of one Raft node (etcd-io/raft Config), validated once at construction.
 *
 * Defaults follow the research note (raft.md §0, §9 R-G1): PreVote and CheckQuorum on — together they
 * stop a partitioned or removed node from disrupting a healthy leader (Raft thesis §9.6, §4.2.3) and
 * make a leader without quorum contact step down (thesis §6.2).
 */
import { ErrInvalidConfig } from './errors.js';
import type { RaftStorage } from './storage.js';
import type { NodeId } from './types.js';

/**
 * Deliberately broken behaviours, enabled only by tests to prove the simulator catches them
 * (raft.md R-C5). Never set in production code.
 */
export type RaftMutationForTest =
  /** (1) commit an entry of a previous term by counting replicas (Raft §5.4.2, Figure 8). */
  | 'commit-prior-term-by-counting'
  /** (2) grant votes comparing only the last log index, not the last log term (skiff's bug). */
  | 'vote-ignores-last-log-term'
  /** (3) accept MsgApp whenever an entry exists at prevLogIndex, ignoring prevLogTerm (liferaft's bug). */
  | 'append-ignores-prev-log-term'
  /** (4) release messages in a Ready whose changed HardState is withheld until the next Ready. */
  | 'messages-before-hard-state'
  /** (5) accept a conf change before the new leader committed an entry of its own term (2015 bug). */
  | 'conf-change-before-own-term-commit'
  /** (7) let every role, not only a leader, send a Ready's messages before its writes are durable. */
  | 'early-send-any-role'
  /** (8) count the leader's own entries toward a commit when appended, not when reported durable. */
  | 'leader-counts-unsynced-append'
  /** (9) a leader acts on a MsgAppResp from an older term (etcd drops every lower-term message). */
  | 'accept-stale-term-app-resp'
  /** (10) learners counted in the commit quorum. */
  | 'learners-count-in-commit-quorum'
  /** (11) a follower acknowledges its whole log, not just what the MsgApp matched (lastNew). */
  | 'follower-acks-past-last-new'
  /** (12) a follower commits up to the leader's commit bounded by its last index, not by lastNew. */
  | 'follower-commits-past-last-new';

/**
 * Legal alternatives to choices this core makes, enabled only by the simulators. They are not bugs:
 * correct Raft may make either choice, and a correct driver and follower must stay safe under both.
 * They exist because two deliberately broken behaviours are invisible under meshgate's own choices
 * and become real bugs under the alternative (test/sim/driver/mutations.test.ts): the simulator runs
 * a share of its seeds with them, so a regression that only the alternative exposes is still caught.
 */
export type RaftVariantForTest =
  /**
   * The leader counts its own entries toward a commit as soon as it appends them, and so sends none of
   * its messages before the Ready's write is durable: etcd's contract before async storage writes
   * (persist, then send and apply). Under it a driver that applies before persisting can answer a
   * client for an entry that a power cut then takes from the only disk that held it.
   */
  | 'self-ack-on-append'
  /**
   * On a rejected append the leader probes again from the follower's match + 1 instead of the
   * follower's hint (the paper allows any decrement; this one is the slowest). The first append a
   * follower accepts in a term can then end before an older, conflicting tail of its log, which a
   * follower that acknowledges its whole log would report as the leader's.
   */
  | 'probe-from-match';

export interface RaftConfig {
  id: NodeId;
  storage: RaftStorage;
  /** Election timeout in ticks; the randomized timeout is drawn from [electionTick, 2*electionTick). */
  electionTick: number;
  /** Heartbeat interval in ticks; must be < electionTick (etcd suggests electionTick = 10 × heartbeatTick). */
  heartbeatTick: number;
  /** Uniform [0, 1) source, injected so runs are reproducible (raft.md R-A2). */
  rand: () => number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Upper bound on the bytes of entries in one MsgApp (at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Max MsgApp in flight per follower in replicate state. */
  maxInflightMsgs?: number;
  /** Max bytes of entry data in flight per follower (0: only maxInflightMsgs bounds it); etcd MaxInflightBytes. */
  maxInflightBytes?: number;
  /**
   * Max bytes of entry data the leader holds uncommitted; a proposal beyond it is dropped
   * (ErrProposalDropped), except that one is always accepted when nothing is uncommitted;
   * etcd MaxUncommittedEntriesSize. 0: unbounded.
   */
  maxUncommittedEntriesSize?: number;
  /** Last index the application has applied (on restart); defaults to the snapshot index. */
  applied?: number;
  /** Test-only fault injection; see RaftMutationForTest. */
  mutationsForTest?: ReadonlySet<RaftMutationForTest>;
  /** Test-only legal alternatives; see RaftVariantForTest. */
  variantsForTest?: ReadonlySet<RaftVariantForTest>;
}

/**
 * 1 MiB: meshgate's membership commands are a few hundred bytes, so this only bounds catch-up
 * batches; it matches etcd server's default MaxSizePerMsg order of magnitude.
 */
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
/** 256 pipelined MsgApps per follower: with batching, far more than a loopback/LAN BDP needs. */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
/** 16 MiB in flight per follower: 16 full catch-up messages; normal traffic is far below. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 16 * 1024 * 1024;
/**
 * 64 MiB uncommitted on the leader (etcd server uses 1 GiB for arbitrary keys): ~200,000 membership
 * commands waiting for a quorum, which with CheckQuorum and the driver's fail-fast never builds up.
 */
export const DEFAULT_MAX_UNCOMMITTED_ENTRIES_SIZE = 64 * 1024 * 1024;

export interface ResolvedConfig extends Required<Omit<RaftConfig, 'applied' | 'mutationsForTest' | 'variantsForTest'>> {
  applied: number;
  mutations: ReadonlySet<RaftMutationForTest>;
  variants: ReadonlySet<RaftVariantForTest>;
}

export function resolveConfig(cfg: RaftConfig): ResolvedConfig {
  if (typeof cfg.id !== 'string' || cfg.id === '') throw new ErrInvalidConfig('id must be a non-empty string');
  if (!Number.isInteger(cfg.heartbeatTick) || cfg.heartbeatTick <= 0) throw new ErrInvalidConfig('heartbeatTick must be a positive integer');
  if (!Number.isInteger(cfg.electionTick) || cfg.electionTick <= cfg.heartbeatTick) throw new ErrInvalidConfig('electionTick must be an integer greater than heartbeatTick');
  if (typeof cfg.rand !== 'function') throw new ErrInvalidConfig('rand must be a function returning [0, 1)');
  if (!cfg.storage) throw new ErrInvalidConfig('storage is required');
  const maxInflight = cfg.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
  if (!Number.isInteger(maxInflight) || maxInflight <= 0) throw new ErrInvalidConfig('maxInflightMsgs must be a positive integer');
  const maxSize = cfg.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
  if (!(maxSize >= 0)) throw new ErrInvalidConfig('maxSizePerMsg must be ≥ 0');
  const maxInflightBytes = cfg.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES;
  if (!(maxInflightBytes >= 0)) throw new ErrInvalidConfig('maxInflightBytes must be ≥ 0');
  const maxUncommitted = cfg.maxUncommittedEntriesSize ?? DEFAULT_MAX_UNCOMMITTED_ENTRIES_SIZE;
  if (!(maxUncommitted >= 0)) throw new ErrInvalidConfig('maxUncommittedEntriesSize must be ≥ 0');
  return {
    id: cfg.id,
    storage: cfg.storage,
    electionTick: cfg.electionTick,
    heartbeatTick: cfg.heartbeatTick,
    rand: cfg.rand,
    preVote: cfg.preVote ?? true,
    checkQuorum: cfg.checkQuorum ?? true,
    maxSizePerMsg: maxSize,
    maxInflightMsgs: maxInflight,
    maxInflightBytes,
    maxUncommittedEntriesSize: maxUncommitted,
    applied: cfg.applied ?? 0,
    mutations: cfg.mutationsForTest ?? new Set(),
    variants: cfg.variantsForTest ?? new Set(),
  };
}
