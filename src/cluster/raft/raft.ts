/**
 * The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
 * §5; thesis chapters 4, 6, 9), shaped after etcd-io/raft raft.go. Pure: input is a tick or a message,
 * output is appended to `msgs`, the unstable log and `readStates`; RawNode packages them into Ready.
 *
 * Roles: follower → (pre-candidate →) candidate → leader; any role → follower on a higher term.
 * Invariants kept here:
 *  - term never decreases; at most one vote per term (vote is only set when it was NONE or equal);
 *  - a leader never overwrites or deletes entries of its own log (Leader Append-Only);
 *  - a leader commits by counting only entries of its current term (§5.4.2);
 *  - at most one membership change is unapplied, and none before the leader's own-term commit;
 *  - a read index is answered only after the leader committed an entry of its term and a quorum
 *    confirmed its leadership after the request arrived (thesis §6.4).
 */
import type { RaftMutationForTest, RaftVariantForTest, ResolvedConfig } from './config.js';
import { ErrConfChangePending, ErrInvalidConfChange, ErrProposalDropped, ErrReadIndexDropped } from './errors.js';
import { RaftLog } from './log.js';
import { committedIndex, majority } from './quorum.js';
import { ReadOnly } from './read-only.js';
import { ProgressTracker } from './tracker.js';
import { NONE, type ConfChange, type ConfState, type Entry, type HardState, type Message, type MessageType, type NodeId, type Snapshot } from './types.js';

export type RaftRole = 'follower' | 'candidate' | 'pre-candidate' | 'leader';

export interface ReadState {
  index: number;
  context: string;
}

/** MsgVote.context marking an election started by leadership transfer; it may bypass the leader lease. */
export const CAMPAIGN_TRANSFER = 'transfer';

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of entry data, the unit of maxSizePerMsg, maxInflightBytes and maxUncommittedEntriesSize. */
export function payloadBytes(ents: readonly { data: Uint8Array }[]): number {
  let n = 0;
  for (const e of ents) n += e.data.length;
  return n;
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch {
    throw new ErrInvalidConfChange('entry data is not JSON');
  }
  validateConfChange(v);
  return v;
}

export function validateConfChange(v: unknown): asserts v is ConfChange {
  const cc = v as Partial<ConfChange> | null;
  if (!cc || typeof cc !== 'object') throw new ErrInvalidConfChange('not an object');
  if (cc.kind !== 'add-voter' && cc.kind !== 'add-learner' && cc.kind !== 'remove') throw new ErrInvalidConfChange(`unknown kind ${String(cc.kind)}`);
  if (typeof cc.node !== 'string' || cc.node === '') throw new ErrInvalidConfChange('node must be a non-empty string');
  if (cc.address !== undefined && typeof cc.address !== 'string') throw new ErrInvalidConfChange('address must be a string');
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: RaftRole = 'follower';
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since the last election timeout reset (follower/candidate) or the last CheckQuorum round (leader). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Target of an ongoing leadership transfer; proposals are dropped while set (thesis §3.10). */
  leadTransferee: NodeId = NONE;
  /** Index of the last conf-change entry appended (or the leader's first index); see proposeEntries. */
  pendingConfIndex = 0;
  /** Leader: bytes of entry data it appended that are not yet applied (maxUncommittedEntriesSize). */
  uncommittedSize = 0;
  private readonly readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  constructor(readonly cfg: ResolvedConfig) {
    this.id = cfg.id;
    this.raftLog = new RaftLog(cfg.storage, cfg.applied);
    this.trk = new ProgressTracker(cfg.maxInflightMsgs, cfg.maxInflightBytes);
    const { hardState, confState } = cfg.storage.initialState();
    this.trk.setConfig(confState, this.raftLog.lastIndex() + 1);
    if (hardState.term > 0 || hardState.vote !== NONE || hardState.commit > 0) this.loadState(hardState);
    this.becomeFollower(this.term, NONE);
  }

  /** A deliberately broken behaviour a simulator test switched on (config.ts RaftMutationForTest; typed so a misspelt one does not compile). */
  private mutatedForTest(m: RaftMutationForTest): boolean {
    return this.cfg.mutations.has(m);
  }

  /** A legal alternative a simulator switched on (config.ts RaftVariantForTest). */
  variantForTest(v: RaftVariantForTest): boolean {
    return this.cfg.variants.has(v);
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(`raft: ${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  promotable(): boolean {
    return this.trk.isVoter(this.id) && !this.raftLog.hasPendingSnapshot();
  }

  // ---------------------------------------------------------------- sending

  private send(m: Omit<Message, 'from'> & { from?: NodeId }): void {
    const t = m.type;
    let term: number;
    if (t === 'MsgVote' || t === 'MsgPreVote' || t === 'MsgVoteResp' || t === 'MsgPreVoteResp') {
      // Vote messages carry an explicit term: a pre-vote is sent for term+1 without bumping ours.
      if (m.term === 0) throw new Error(`raft: term should be set when sending ${t}`);
      term = m.term;
    } else if (t === 'MsgProp' || t === 'MsgReadIndex' || t === 'MsgTransferLeader') {
      // Forwarded requests are treated as local at the leader: no term (etcd raft.go send()).
      term = 0;
    } else {
      term = this.term;
    }
    this.msgs.push({ ...m, from: m.from ?? this.id, term });
  }

  /** Sends MsgApp (or MsgSnap if the needed entries are compacted) to `to`. Returns whether a message was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    if (prevIndex < this.raftLog.firstIndex() - 1) return this.maybeSendSnapshot(to); // compacted away
    // A peer starting from an empty log needs the configuration as of our snapshot: when that snapshot
    // is past index 0 but the log still starts at 1 (the driver snapshots without compacting while
    // fewer entries than it keeps exist), an append from index 1 would carry no configuration at all
    // (genesisSnapshot only covers an index-0 snapshot), and the joiner, once promoted, would count
    // itself a majority of a configuration without the bootstrap voters (driver simulator, 3 voters
    // + 2 spares with membership churn, seed 113: an acknowledged entry lost).
    if (prevIndex === 0 && this.raftLog.storage.snapshot().metadata.index > 0) return this.maybeSendSnapshot(to);
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      // With a full window only an empty append goes out (a heartbeat response unpaused us): it lets a
      // follower whose acks were all lost reply, and us fall back to probing if it rejects.
      ents = pr.state === 'replicate' && pr.inflights.full() ? [] : this.raftLog.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
    } catch (e) {
      if ((e as { code?: string }).code === 'MG_ERR_RAFT_COMPACTED' || (e as { code?: string }).code === 'MG_ERR_RAFT_UNAVAILABLE') {
        return this.maybeSendSnapshot(to);
      }
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const genesis = prevIndex === 0 ? this.genesisSnapshot() : undefined;
    this.send({ type: 'MsgApp', to, term: this.term, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed, ...(genesis ? { snapshot: genesis } : {}) });
    pr.sentEntries(ents.length, payloadBytes(ents));
    return true;
  }

  /**
   * The index-0 bootstrap snapshot (the cluster's initial voters), if this log starts from one. It is
   * attached to appends that start at index 1, so a peer that joined with empty storage learns the
   * initial configuration; otherwise it would replay only the later conf changes and could, once
   * promoted, count itself as a majority of a config missing the bootstrap voters.
   */
  private genesisSnapshot(): Snapshot | undefined {
    const s = this.raftLog.storage.snapshot();
    if (s.metadata.index !== 0 || (s.metadata.confState.voters.length === 0 && s.metadata.confState.learners.length === 0)) return undefined;
    return s;
  }

  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    // Do not ship a snapshot to a peer we have not heard from recently: it may be down (etcd).
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if ((e as { code?: string }).code === 'MG_ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE') return false;
      throw e;
    }
    if (snap.metadata.index === 0) throw new Error('raft: need non-empty snapshot');
    pr.becomeSnapshot(snap.metadata.index);
    this.send({ type: 'MsgSnap', to, term: this.term, snapshot: snap });
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, context: string | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to hold (it may not have those entries).
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send({ type: 'MsgHeartbeat', to, term: this.term, commit, ...(context !== undefined ? { context } : {}) });
  }

  private forEachPeer(fn: (id: NodeId) => void): void {
    for (const id of this.trk.peers()) if (id !== this.id) fn(id);
  }

  bcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingContext());
  }

  private bcastHeartbeatWithCtx(ctx: string | undefined): void {
    this.forEachPeer((id) => this.sendHeartbeat(id, ctx));
  }

  // ---------------------------------------------------------------- role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.uncommittedSize = 0;
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    const stable = this.raftLog.stableLastIndex();
    for (const [id, pr] of this.trk.progress) {
      // Our own match counts only what is on our disk (see onEntriesStable).
      pr.match = id === this.id ? (this.variantForTest('self-ack-on-append') ? last : stable) : 0;
      pr.next = last + 1;
      pr.becomeProbe();
      pr.next = last + 1;
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  /** Raft §5.2: timeouts are randomized in [electionTick, 2*electionTick) to make split votes rare. */
  private resetRandomizedElectionTimeout(): void {
    const et = this.cfg.electionTick;
    const r = Math.min(Math.max(this.cfg.rand(), 0), 0.999999999);
    this.randomizedElectionTimeout = et + Math.floor(r * et);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: invalid transition [leader -> pre-candidate]');
    // Thesis §9.6: a pre-candidate does not bump its term or change its vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = 'pre-candidate';
  }

  becomeLeader(): void {
    if (this.role === 'follower') throw new Error('raft: invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Raft §8: an empty entry of the new term lets the leader learn the commit index quickly.
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY }]);
    // 2015 fix (raft.md §8): no conf change until everything up to and including the no-op is
    // committed and applied, i.e. until this leader committed an entry of its own term.
    // (etcd sets this before the no-op, which is safe with apply-time configs; we follow the brief's
    // stricter rule and also wait for the no-op itself.)
    this.pendingConfIndex = this.mutatedForTest('conf-change-before-own-term-commit') ? 0 : this.raftLog.lastIndex();
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // Thesis §6.2: a leader that has not heard from a quorum in an election timeout steps down,
        // so clients stop sending it requests it cannot commit.
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
      }
      // Thesis §3.10: abort a leadership transfer that did not complete within an election timeout.
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election (MsgHup). `transfer` skips PreVote and may bypass peers' leader lease. */
  hup(transfer: boolean): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return; // etcd: apply pending membership first, or we may use a stale config
    if (this.cfg.preVote && !transfer) this.campaign('pre');
    else this.campaign(transfer ? 'transfer' : 'election');
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = this.raftLog.applied + 1;
    const hi = this.raftLog.committed + 1;
    if (lo >= hi) return false;
    try {
      return this.raftLog.slice(lo, hi).some((e) => e.type === 'conf-change');
    } catch {
      return false;
    }
  }

  private campaign(kind: 'pre' | 'election' | 'transfer'): void {
    let voteType: MessageType;
    let term: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteType = 'MsgPreVote';
      term = this.term + 1; // pre-vote for the term we would use, without incrementing ours
    } else {
      this.becomeCandidate();
      voteType = 'MsgVote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // Single-voter cluster: won immediately.
      if (kind === 'pre') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const index = this.raftLog.lastIndex();
    const logTerm = this.raftLog.lastTerm();
    for (const id of [...this.trk.voters].sort()) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index, logTerm, ...(kind === 'transfer' ? { context: CAMPAIGN_TRANSFER } : {}) });
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  private canGrantVote(m: Message): boolean {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'MsgPreVote' && m.term > this.term);
    if (!canVote) return false;
    const idx = m.index ?? 0;
    const lt = m.logTerm ?? 0;
    if (this.mutatedForTest('vote-ignores-last-log-term')) return idx >= this.raftLog.lastIndex();
    return this.raftLog.isUpToDate(idx, lt);
  }

  // ---------------------------------------------------------------- step

  /** True while stepping a request made through the local API (propose, readIndex…), not the network. */
  private local = false;

  /**
   * Steps a request of the local API: a refusal throws a typed error to the caller, whereas the same
   * request arriving from a peer (forwarded) is dropped silently.
   */
  stepLocal(m: Message): void {
    this.local = true;
    try {
      this.step(m);
    } finally {
      this.local = false;
    }
  }

  step(m: Message): void {
    if (m.term === 0) {
      // local or forwarded request: no term checks
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
        // Thesis §4.2.3 / §9.6: while we heard from a leader within the minimum election timeout,
        // ignore (pre-)vote requests, so removed or partitioned servers cannot disrupt it.
        if (!force && inLease) return;
      }
      if (m.type === 'MsgPreVote') {
        // never change our term in response to a PreVote
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // a granted pre-vote carries the future term; we bump only when we win the pre-election
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term && !(m.type === 'MsgAppResp' && this.mutatedForTest('accept-stale-term-app-resp'))) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A stale leader would otherwise never learn of our term if we ignore its messages while
        // PreVote/CheckQuorum keep us from disrupting the current one (etcd raft.go).
        this.send({ type: 'MsgAppResp', to: m.from, term: this.term });
      } else if (m.type === 'MsgPreVote') {
        this.send({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true });
      } else if (m.type === 'MsgVote') {
        // Raft §5.1 / Figure 2: a stale RequestVote is refused with our term, "for the candidate to
        // update itself". Ignoring it (as etcd does without PreVote) left a candidate whose votes go
        // to no one who counts it racing our term upward for ever: a lagging voter that still lists
        // the other as a learner never sends it a vote request (raft sim, 2 voters, seed 98493783).
        this.send({ type: 'MsgVoteResp', to: m.from, term: this.term, reject: true });
      }
      // Raft §5.1: otherwise a request with a stale term is ignored.
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(false);
        return;
      case 'MsgVote':
      case 'MsgPreVote': {
        const respType = m.type === 'MsgVote' ? 'MsgVoteResp' : 'MsgPreVoteResp';
        if (this.canGrantVote(m)) {
          // Reply with the message's term: for a pre-vote it is the candidate's future term.
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === 'MsgVote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: respType, to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        break;
    }
    switch (this.role) {
      case 'leader': this.stepLeader(m); return;
      case 'candidate':
      case 'pre-candidate': this.stepCandidate(m); return;
      case 'follower': this.stepFollower(m); return;
    }
  }

  // ---------------------------------------------------------------- leader

  private appendEntries(es: { term: number; index: number; type: Entry['type']; data: Uint8Array }[]): void {
    let li = this.raftLog.lastIndex();
    const ents: Entry[] = es.map((e) => ({ term: this.term, index: ++li, type: e.type, data: e.data }));
    li = this.raftLog.append(ents);
    const countNow = this.mutatedForTest('leader-counts-unsynced-append') || this.variantForTest('self-ack-on-append');
    if (countNow && this.trk.progress.get(this.id)?.maybeUpdate(li)) this.maybeCommit();
    // The leader's own match does NOT advance here but when the driver reports the entries durable
    // (onEntriesStable): the driver may replicate them while it writes (Ready.sendBeforePersist,
    // thesis §10.2.1), and a quorum that counted a leader copy still in flight could commit an entry
    // that a crash of the leader leaves on a minority. (A quorum of followers alone may commit it.)
  }

  /**
   * The driver made entries up to (index, term) durable (RawNode.advance). On the leader this is its
   * own acknowledgement, like a MsgAppResp from itself (etcd's MsgStorageAppendResp): it may commit,
   * and a new commit index is broadcast.
   */
  onEntriesStable(index: number, term: number): void {
    if (this.role !== 'leader' || !this.raftLog.matchTerm(index, term)) return;
    if (this.trk.progress.get(this.id)?.maybeUpdate(index) && this.maybeCommit()) this.bcastAppend();
  }

  /** The driver applied `ents` (RawNode.advance): they no longer count as uncommitted (etcd reduceUncommittedSize). */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.role !== 'leader') return;
    // Entries of earlier leaders were never counted; never go below zero.
    this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadBytes(ents));
  }

  maybeCommit(): boolean {
    const mci = this.mutatedForTest('learners-count-in-commit-quorum')
      ? committedIndex(new Set([...this.trk.voters, ...this.trk.learners]), (id) => this.trk.progress.get(id)?.match ?? 0)
      : this.trk.committed();
    const hadOwnTermCommit = this.committedEntryInCurrentTerm();
    const ok = this.raftLog.maybeCommit(mci, this.term, this.mutatedForTest('commit-prior-term-by-counting'));
    if (ok && !hadOwnTermCommit && this.committedEntryInCurrentTerm()) this.releasePendingReadIndexMessages();
    return ok;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOr0(this.raftLog.committed) === this.term;
  }

  private proposeEntries(m: Message): void {
    const local = this.local;
    const drop = (reason: string): void => {
      if (local) throw new ErrProposalDropped(reason);
    };
    const ents = m.entries ?? [];
    if (ents.length === 0) throw new Error('raft: stepped empty MsgProp');
    if (!this.trk.progress.has(this.id)) return drop('this node was removed from the configuration');
    if (this.leadTransferee !== NONE) return drop(`leadership transfer to ${this.leadTransferee} in progress`);
    const bytes = payloadBytes(ents);
    const max = this.cfg.maxUncommittedEntriesSize;
    if (max > 0 && this.uncommittedSize > 0 && bytes > 0 && this.uncommittedSize + bytes > max) {
      return drop(`${this.uncommittedSize} bytes of entries are uncommitted (maxUncommittedEntriesSize ${max})`);
    }
    this.uncommittedSize += bytes;
    const out: { term: number; index: number; type: Entry['type']; data: Uint8Array }[] = [];
    for (const e of ents) {
      if (e.type === 'conf-change') {
        let refusal: string | undefined;
        if (this.pendingConfIndex > this.raftLog.applied) {
          refusal = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
        } else {
          refusal = this.checkConfChange(e.data);
        }
        if (refusal !== undefined) {
          if (local) {
            if (refusal.startsWith('possible unapplied')) throw new ErrConfChangePending(refusal);
            throw new ErrInvalidConfChange(refusal);
          }
          // Forwarded: keep the log position meaningful for the forwarder but make it a no-op (etcd).
          out.push({ term: 0, index: 0, type: 'normal', data: EMPTY });
          continue;
        }
        this.pendingConfIndex = this.raftLog.lastIndex() + out.length + 1;
      }
      out.push({ term: 0, index: 0, type: e.type, data: e.data });
    }
    this.appendEntries(out);
    this.bcastAppend();
  }

  /** Refusal reason for a conf change the leader is asked to append, or undefined if acceptable. */
  private checkConfChange(data: Uint8Array): string | undefined {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(data);
    } catch (e) {
      return (e as Error).message;
    }
    if (cc.kind === 'remove' && this.trk.voters.has(cc.node) && this.trk.voters.size === 1) return 'cannot remove the last voter';
    return undefined;
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        this.proposeEntries(m);
        return;
      case 'MsgReadIndex': {
        if (this.trk.voters.size <= 1 && this.trk.isVoter(this.id)) {
          this.respondReadIndex(m, this.raftLog.committed);
          return;
        }
        // Thesis §6.4 step 1: the leader must have committed an entry of its term to know the commit index.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexRequest(m);
        return;
      }
      case 'MsgTransferLeader':
        this.handleTransferLeader(m.from);
        return;
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'MsgAppResp': {
        pr.recentActive = true;
        const idx = m.index ?? 0;
        if (m.reject) {
          // Fast back-off: skip whole terms using the follower's (index, term) hint.
          let next = m.rejectHint ?? 0;
          if ((m.logTermHint ?? 0) > 0) next = this.raftLog.findConflictByTerm(m.rejectHint ?? 0, m.logTermHint!).index;
          if (this.variantForTest('probe-from-match')) next = pr.match;
          if (pr.maybeDecrTo(idx, next)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(idx)) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
            // The follower caught up past the snapshot (or via a later append): resume normal replication.
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === 'replicate') pr.inflights.freeLE(idx);

          if (this.maybeCommit()) {
            this.bcastAppend();
          } else if (oldPaused) {
            this.sendAppend(m.from);
          }
          // Send whatever else is available, up to the flow-control window.
          while (this.maybeSendAppend(m.from, false)) { /* keep pipelining */ }
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.send({ type: 'MsgTimeoutNow', to: m.from, term: this.term });
          }
        }
        return;
      }
      case 'MsgHeartbeatResp': {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        if (pr.match < this.raftLog.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (m.context === undefined) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        let n = this.trk.isVoter(this.id) ? 1 : 0;
        for (const id of acks) if (id !== this.id && this.trk.voters.has(id)) n++;
        if (n < majority(this.trk.voters.size)) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondReadIndex(rs.req, rs.index);
        return;
      }
      default:
        return;
    }
  }

  private sendReadIndexRequest(m: Message): void {
    const ctx = m.context ?? '';
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.bcastHeartbeatWithCtx(ctx);
  }

  private respondReadIndex(req: Message, index: number): void {
    const ctx = req.context ?? '';
    if (req.from === this.id || req.from === NONE) this.readStates.push({ index, context: ctx });
    else this.send({ type: 'MsgReadIndexResp', to: req.from, term: this.term, index, context: ctx });
  }

  private releasePendingReadIndexMessages(): void {
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexRequest(m);
  }

  private handleTransferLeader(transferee: NodeId): void {
    const pr = this.trk.progress.get(transferee);
    if (!pr || pr.isLearner) return; // learners cannot lead
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return; // already leader
    // The transfer must finish within one election timeout, or tickHeartbeat aborts it.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.send({ type: 'MsgTimeoutNow', to: transferee, term: this.term });
    else this.sendAppend(transferee);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  reportUnreachable(id: NodeId): void {
    if (this.role !== 'leader') return;
    const pr = this.trk.progress.get(id);
    // The peer may have lost in-flight MsgApps: fall back to probing.
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role !== 'leader') return;
    const pr = this.trk.progress.get(id);
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for a heartbeat response before the next probe, so a failing peer is not flooded.
    pr.msgAppFlowPaused = true;
  }

  // ---------------------------------------------------------------- candidate / follower

  private stepCandidate(m: Message): void {
    const myRespType: MessageType = this.role === 'pre-candidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        if (this.local) throw new ErrProposalDropped(`no leader at term ${this.term}`);
        return;
      case 'MsgReadIndex':
        if (this.local) throw new ErrReadIndexDropped(`no leader at term ${this.term}`);
        return;
      case 'MsgApp':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'MsgPreVoteResp':
      case 'MsgVoteResp': {
        if (m.type !== myRespType) return;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.role === 'pre-candidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // Pre-candidates and candidates revert to follower at their own term (Raft §5.2).
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return; // MsgTimeoutNow and stray responses are ignored while campaigning
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        if (this.lead === NONE) {
          if (this.local) throw new ErrProposalDropped(`no leader at term ${this.term}`);
          return;
        }
        this.send({ ...m, to: this.lead, from: m.from === NONE ? this.id : m.from });
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTransferLeader':
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead });
        return;
      case 'MsgTimeoutNow':
        // Thesis §3.10: the leader asks us to start an election now, skipping PreVote and the lease.
        this.hup(true);
        return;
      case 'MsgReadIndex':
        if (this.lead === NONE) {
          if (this.local) throw new ErrReadIndexDropped(`no leader at term ${this.term}`);
          return;
        }
        this.send({ ...m, to: this.lead, from: m.from === NONE ? this.id : m.from });
        return;
      case 'MsgReadIndexResp':
        this.readStates.push({ index: m.index ?? 0, context: m.context ?? '' });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    const idx = m.index ?? 0;
    const g = m.snapshot;
    if (idx === 0 && g && g.metadata.index === 0 && this.isUninitialized()) {
      // Empty joiner: adopt the bootstrap configuration before replaying the log (see genesisSnapshot).
      this.raftLog.restore(g);
      this.trk.setConfig(g.metadata.confState, 1);
    }
    if (idx < this.raftLog.committed) {
      this.send({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed, term: this.term });
      return;
    }
    const lastNew = this.raftLog.maybeAppend(idx, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? [], this.mutatedForTest('append-ignores-prev-log-term'));
    if (lastNew !== undefined) {
      if (this.mutatedForTest('follower-commits-past-last-new')) this.raftLog.commitTo(Math.max(this.raftLog.committed, Math.min(m.commit ?? 0, this.raftLog.lastIndex())));
      const ack = this.mutatedForTest('follower-acks-past-last-new') ? this.raftLog.lastIndex() : lastNew;
      this.send({ type: 'MsgAppResp', to: m.from, index: ack, term: this.term });
      return;
    }
    // Reject with a hint: the largest index ≤ min(prevIndex, our last) whose term ≤ prevLogTerm, so the
    // leader can skip a whole conflicting term per round trip.
    const hintIndex = Math.min(idx, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm ?? 0);
    this.send({ type: 'MsgAppResp', to: m.from, term: this.term, index: idx, reject: true, rejectHint: hint.index, logTermHint: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit ?? 0, this.raftLog.lastIndex()));
    this.send({ type: 'MsgHeartbeatResp', to: m.from, term: this.term, ...(m.context !== undefined ? { context: m.context } : {}) });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) this.send({ type: 'MsgAppResp', to: m.from, term: this.term, index: this.raftLog.lastIndex() });
    else this.send({ type: 'MsgAppResp', to: m.from, term: this.term, index: this.raftLog.committed });
  }

  private isUninitialized(): boolean {
    return this.trk.voters.size === 0 && this.trk.learners.size === 0 && this.raftLog.lastIndex() === 0 && !this.raftLog.hasPendingSnapshot();
  }

  /** Installs a snapshot from the leader. Returns false if it is stale or already covered by our log. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.raftLog.applying > this.raftLog.applied) {
      // The driver is still applying committed entries from an earlier Ready; a conf change among them
      // would be applied on top of the snapshot's configuration and resurrect an old one (found by the
      // simulator: a removed learner came back). Refuse; the leader retries after reportSnapshot.
      return false;
    }
    if (this.role !== 'follower') {
      // Defense in depth (etcd): only followers restore; never happens when the leader is unique per term.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // Our log already holds the snapshot's last entry: fast-forward commit instead.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk.setConfig(s.metadata.confState, this.raftLog.lastIndex() + 1);
    return true;
  }

  // ---------------------------------------------------------------- membership

  /** Applies a committed, applied conf change to the tracked configuration (effective on apply, as etcd). */
  applyConfChange(cc: ConfChange): ConfState {
    validateConfChange(cc);
    const voters = new Set(this.trk.voters);
    const learners = new Set(this.trk.learners);
    switch (cc.kind) {
      case 'add-voter':
        learners.delete(cc.node); // learner → voter promotion
        voters.add(cc.node);
        break;
      case 'add-learner':
        voters.delete(cc.node); // a voter can be demoted to learner
        learners.add(cc.node);
        break;
      case 'remove':
        voters.delete(cc.node);
        learners.delete(cc.node);
        break;
    }
    this.trk.setConfig({ voters: [...voters], learners: [...learners] }, this.raftLog.lastIndex() + 1);
    if (this.role === 'leader') {
      if (!this.trk.isVoter(this.id)) {
        // Removed (or demoted) leader steps down once the change is committed and applied (thesis §4.2.2),
        // handing leadership to a remaining voter that holds its whole log (TimeoutNow, as a transfer),
        // so the group need not wait an election timeout for a leader (raft.md R-F5).
        const last = this.raftLog.lastIndex();
        const heir = [...this.trk.voters].sort().find((id) => this.trk.progress.get(id)?.match === last);
        if (heir !== undefined) this.send({ type: 'MsgTimeoutNow', to: heir, term: this.term });
        this.becomeFollower(this.term, NONE);
      } else {
        if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
        // A smaller quorum may commit more now; new peers need their first append.
        if (this.maybeCommit()) this.bcastAppend();
        else this.forEachPeer((id) => { const pr = this.trk.progress.get(id)!; if (pr.match === 0 && pr.state === 'probe' && !pr.msgAppFlowPaused) this.sendAppend(id); });
      }
    }
    return this.trk.confState();
  }
}
