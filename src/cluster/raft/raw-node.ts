/**
 * RawNode: the synchronous, single-threaded API of the Raft core (etcd-io/raft rawnode.go). The
 * driver (../node.ts) owns timers, disk and network and calls into it.
 *
 * READY ORDERING CONTRACT — the driver must handle each Ready in exactly this order:
 *   1. Persist rd.snapshot (if any), then rd.entries, then rd.hardState, and fsync (when rd.mustSync).
 *      Writing an entry at index i discards any persisted entries ≥ i.
 *   2. Only after step 1 is durable, send rd.messages. A vote response, an append ack or a commit
 *      index sent before its state is durable can, after a crash, elect two leaders in one term or
 *      lose committed entries (raft.md §7: hashicorp/raft#507, tikv/tikv#994, etcd#14370).
 *      If the write or the fsync fails, the driver must stop (crash / fail closed) and never send
 *      this Ready's messages (cockroachdb/cockroach#37102: a retried fsync can falsely succeed).
 *      Exception: when rd.sendBeforePersist is true (a leader whose term and vote did not change), the
 *      driver may send rd.messages before or while step 1 runs (Raft thesis §10.2.1): followers then
 *      write in parallel with the leader. Steps 3 and 4 still wait for step 1, and the driver must not
 *      take the next Ready before step 1 is durable, so a commit that counts the leader's own entries
 *      is only ever handed out after they are on its disk.
 *      A Ready with mustSync false (a commit-index-only hard state) needs no fsync, and the driver may
 *      apply and advance before that write completes: the commit index can be learnt again from a
 *      quorum after a crash. Later writes must still land after it (one ordered log). Its messages
 *      depend on nothing durable, so they may also be sent after step 3 (etcd applies and sends
 *      such Readies concurrently); messages to one peer must still leave in Ready order.
 *   3. Apply rd.snapshot to the state machine, then rd.committedEntries in order. For an entry of type
 *      'conf-change', decode its data (JSON ConfChange, UTF-8) and call applyConfChange().
 *   4. Call advance(rd). Call ready() again only after advance(); tick() and step() may be called at
 *      any time in between (their output appears in the next Ready).
 *
 * Invariant: a Ready never contains a message that depends on state not included in that Ready or an
 * earlier one (guaranteed by handing out hardState/entries in the same Ready as the messages).
 *
 * Other driver obligations:
 *  - After every MsgSnap send attempt call reportSnapshot(to, ok); the leader sends nothing else to that
 *    peer until then. Call reportUnreachable(id) when a send to a peer fails.
 *  - Bootstrap: every peer of a new cluster starts from the same index-0 snapshot whose ConfState lists
 *    the initial voters (or from an empty storage when it joins later: the leader ships that index-0
 *    snapshot with its first append, and a Ready may then carry a snapshot with index 0 to persist).
 *  - On restart pass `applied` = the index the state machine was restored to (normally the snapshot's);
 *    committed entries after it are handed out again and their conf changes must be re-applied.
 *  - A peer that applies its own removal should stop taking part (it never campaigns again anyway).
 */
import { resolveConfig, type RaftConfig } from './config.js';
import { ErrInvalidMessage, ErrStepLocalMsg, ErrStepPeerNotFound } from './errors.js';
import { encodeConfChange, Raft, validateConfChange, type RaftRole } from './raft.js';
import { isHardStateEqual, type Ready, type SoftState } from './ready.js';
import type { ConfChange, ConfState, HardState, Message, MessageType, NodeId } from './types.js';

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lead: NodeId;
  role: RaftRole;
  /** Last index in this node's log (durable or not). */
  lastIndex: number;
  voters: NodeId[];
  learners: NodeId[];
  /** Leader only: replication state per peer (including itself). */
  progress?: Record<NodeId, { match: number; next: number; state: string; recentActive: boolean }>;
  /** Leader only: target of an ongoing leadership transfer. */
  leadTransferee?: NodeId;
}

const MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'MsgHup', 'MsgPreVote', 'MsgPreVoteResp', 'MsgVote', 'MsgVoteResp', 'MsgApp', 'MsgAppResp', 'MsgHeartbeat',
  'MsgHeartbeatResp', 'MsgSnap', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp', 'MsgProp', 'MsgTransferLeader',
]);
const RESPONSE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['MsgAppResp', 'MsgVoteResp', 'MsgPreVoteResp', 'MsgHeartbeatResp']);
/** Requests a follower forwards to the leader; they travel without a term. */
const TERMLESS_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['MsgProp', 'MsgReadIndex', 'MsgTransferLeader']);

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(resolveConfig(cfg));
    this.prevSoftState = this.softState();
    this.prevHardState = this.raft.hardState();
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  /** Advances logical time by one tick (heartbeat and election timers). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (PreVote first when enabled). No-op for leaders and non-voters. */
  campaign(): void {
    this.raft.stepLocal({ type: 'MsgHup', from: this.raft.id, to: this.raft.id, term: 0 });
  }

  /**
   * Feeds a message received from a peer. Throws ErrStepLocalMsg for local-only types,
   * ErrInvalidMessage for malformed input and ErrStepPeerNotFound for responses from untracked peers;
   * the driver should log and drop such messages.
   */
  step(m: Message): void {
    validateMessage(m);
    if (m.type === 'MsgHup') throw new ErrStepLocalMsg(m.type);
    if (RESPONSE_TYPES.has(m.type) && !this.raft.trk.progress.has(m.from)) throw new ErrStepPeerNotFound(m.from);
    this.raft.step(m);
  }

  /** Proposes a command. Throws ErrProposalDropped when there is no leader or a transfer is in progress. */
  propose(data: Uint8Array): void {
    this.proposeBatch([data]);
  }

  /**
   * Proposes several normal entries as one message: on a leader they are appended together and go
   * out in one MsgApp per follower; elsewhere they are forwarded (or dropped) together.
   */
  proposeBatch(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    this.raft.stepLocal({ type: 'MsgProp', from: this.raft.id, to: this.raft.id, term: 0, entries: data.map((d) => ({ term: 0, index: 0, type: 'normal' as const, data: d })) });
  }

  /**
   * Proposes a single-server membership change. On the leader, throws ErrConfChangePending while
   * another change is unapplied or before the leader committed an entry of its term.
   */
  proposeConfChange(cc: ConfChange): void {
    validateConfChange(cc);
    this.raft.stepLocal({ type: 'MsgProp', from: this.raft.id, to: this.raft.id, term: 0, entries: [{ term: 0, index: 0, type: 'conf-change', data: encodeConfChange(cc) }] });
  }

  /** Applies a committed conf change (driver step 3) and returns the resulting configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Asks the leader to hand leadership to `to` (thesis §3.10). Proposals are dropped meanwhile. */
  transferLeader(to: NodeId): void {
    this.raft.stepLocal({ type: 'MsgTransferLeader', from: to, to: this.raft.id, term: 0 });
  }

  /**
   * Requests a linearizable read point; the answer arrives as Ready.readStates[{index, context}].
   * Throws ErrReadIndexDropped when no leader is known. `context` must be unique per request.
   */
  readIndex(context: string): void {
    this.raft.stepLocal({ type: 'MsgReadIndex', from: this.raft.id, to: this.raft.id, term: 0, context });
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = this.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) return true;
    if (!isHardStateEqual(r.hardState(), this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstable.entries.length > 0 || r.raftLog.hasNextCommittedEnts()) return true;
    return r.readStates.length > 0;
  }

  /** Collects the pending work; see the ordering contract at the top of this file. */
  ready(): Ready {
    const r = this.raft;
    const ss = this.softState();
    const hs = r.hardState();
    const prevHs = this.prevHardState;
    const snapshot = r.raftLog.unstable.snapshot;
    const committedEntries = r.raftLog.nextCommittedEnts();
    const rd: Ready = { entries: r.raftLog.unstableEntries(), committedEntries, messages: r.msgs, readStates: r.readStates, mustSync: false, sendBeforePersist: false };
    r.msgs = [];
    r.readStates = [];
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const termOrVoteChanged = hs.term !== prevHs.term || hs.vote !== prevHs.vote;
    // Mutation (4): messages leave in this Ready while the term/vote they depend on waits for the next one.
    const withhold = termOrVoteChanged && rd.messages.length > 0 && r.cfg.mutations.has('messages-before-hard-state');
    if (!isHardStateEqual(hs, prevHs) && !withhold) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    if (snapshot) rd.snapshot = snapshot;
    if (committedEntries.length > 0) r.raftLog.applying = committedEntries[committedEntries.length - 1]!.index;
    // A commit-index-only change need not be fsynced: it can be recomputed from a quorum (etcd MustSync).
    rd.mustSync = rd.entries.length > 0 || snapshot !== undefined || (rd.hardState !== undefined && termOrVoteChanged);
    // Only a leader's messages are safe ahead of its own write (see the contract, step 2); mutation (7)
    // extends that to followers and candidates, whose acks and votes would then outrun their fsync.
    // Under the 'self-ack-on-append' variant the leader's own copy already counts, so nothing may leave
    // before it is durable (etcd's classic contract).
    const earlyRoleOk = (r.role === 'leader' && !r.variantForTest('self-ack-on-append')) || r.cfg.mutations.has('early-send-any-role');
    rd.sendBeforePersist = earlyRoleOk && !termOrVoteChanged && snapshot === undefined;
    return rd;
  }

  /** Marks rd as persisted and applied (driver step 4). */
  advance(rd: Ready): void {
    const log = this.raft.raftLog;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      if (log.applied < rd.snapshot.metadata.index) {
        log.applied = rd.snapshot.metadata.index;
        if (log.applying < log.applied) log.applying = log.applied;
      }
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      log.stableTo(last.index, last.term);
      this.raft.onEntriesStable(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
      this.raft.reduceUncommittedSize(rd.committedEntries);
    }
  }

  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lead: r.lead,
      role: r.role,
      lastIndex: r.raftLog.lastIndex(),
      voters: [...r.trk.voters].sort(),
      learners: [...r.trk.learners].sort(),
    };
    if (r.role === 'leader') {
      st.progress = {};
      for (const [id, pr] of r.trk.progress) st.progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive };
      if (r.leadTransferee !== '') st.leadTransferee = r.leadTransferee;
    }
    return st;
  }

  /** Test-only access to the state machine, for paper tests that inspect internals. */
  raftForTest(): Raft {
    return this.raft;
  }
}

function validateMessage(m: Message): void {
  if (!m || typeof m !== 'object') throw new ErrInvalidMessage('not an object');
  if (!MESSAGE_TYPES.has(m.type)) throw new ErrInvalidMessage(`unknown type ${String(m.type)}`);
  if (typeof m.from !== 'string' || m.from === '') throw new ErrInvalidMessage('from must be a non-empty string');
  if (!Number.isInteger(m.term) || m.term < 0) throw new ErrInvalidMessage('term must be a non-negative integer');
  if (m.term === 0 && !TERMLESS_TYPES.has(m.type)) throw new ErrInvalidMessage(`${m.type} must carry a term`);
  if (m.type === 'MsgProp' && (!m.entries || m.entries.length === 0)) throw new ErrInvalidMessage('MsgProp without entries');
  if (m.entries) {
    for (const e of m.entries) {
      if (!e || !(e.data instanceof Uint8Array) || !Number.isInteger(e.index) || !Number.isInteger(e.term)) throw new ErrInvalidMessage('malformed entry');
    }
  }
  if (m.type === 'MsgSnap' && !m.snapshot) throw new ErrInvalidMessage('MsgSnap without snapshot');
}

