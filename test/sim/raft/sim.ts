/**
 * Seeded deterministic simulator for the Raft core (raft.md §9 R-C1…R-C3; FoundationDB / TigerBeetle
 * VOPR style). One seed fixes everything: node PRNGs, network faults, disk faults, crashes, client and
 * operator actions. Time is an integer (1 tick = TICK time units); events run from a priority queue.
 *
 * What is modelled:
 *  - network: per-message drop, duplication, delay (reordering falls out of random delays) with rare
 *    long delays; symmetric, one-way and flapping partitions;
 *  - disk: each node's storage has a synced part (a MemoryStorage) and pending unsynced writes; a crash
 *    keeps a random prefix of the pending writes (torn tail) and loses the rest; fsync can be slow, and
 *    can fail — the driver then stops the node (fail closed, never acks) until it is restarted;
 *  - processes: crash/restart from synced state, pauses (no ticks, deliveries deferred);
 *  - the driver follows raw-node.ts's Ready contract: write → fsync → send → apply → advance, with its
 *    two allowances: a leader sends while it writes (sendBeforePersist), and a commit-only write
 *    (mustSync false) is not fsynced and not waited for;
 *  - clients propose to leaders (and sometimes followers) and issue ReadIndex reads; an operator adds
 *    learners (joining with empty storage), promotes them, removes voters (the leader too) and
 *    transfers leadership;
 *  - two fault profiles per seed: 'mixed' (all of the above) and 'leader-churn' (6.824
 *    TestFigure8Unreliable shape: leaders killed within ticks of election, slow disks, short partitions).
 *
 * Invariants checked after EVERY event (throws SimViolation):
 *  Election Safety, Leader Append-Only, Log Matching (inductively on every written entry), Leader
 *  Completeness, no node lacking a just-committed entry can win an election (CommittedEntryElectability),
 *  State Machine Safety (rolling hash per applied index, also across snapshots),
 *  CommittedIsDurable (on first apply, on a synced majority), revealed term/vote durable across restarts,
 *  at most one uncommitted conf-change entry in a leader's log, linearizable ReadIndex (a read is never
 *  older than an entry applied anywhere before the read was requested).
 * Liveness (after faults stop): a leader exists, every pending proposal resolves and all members converge
 * within a bounded number of ticks.
 *
 * Test-only driver mutation: 'ack-before-fsync' sends a Ready's messages after the write but before the
 * fsync completes (raft.md R-C5 (f)).
 */
import { RawNode } from '../../../src/cluster/raft/raw-node.js';
import { MemoryStorage } from '../../../src/cluster/raft/memory-storage.js';
import { decodeConfChange } from '../../../src/cluster/raft/raft.js';
import type { RaftMutationForTest } from '../../../src/cluster/raft/config.js';
import type { Ready } from '../../../src/cluster/raft/ready.js';
import type { ConfState, Entry, HardState, Message, NodeId, Snapshot } from '../../../src/cluster/raft/types.js';
import { createSeededRandom, type Random } from '../../../src/lib/rng.js';

export type DriverMutation = 'ack-before-fsync';
export type Mutation = RaftMutationForTest | DriverMutation;

export class SimViolation extends Error {
  constructor(readonly invariant: string, detail: string, readonly time: number) {
    super(`${invariant} violated at t=${time}: ${detail}`);
  }
}

/** Time units per tick. Message delays and fsync latencies are expressed in these units. */
const TICK = 10;
const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 2;
/** The transport's per-peer queue limit (transport.ts: 1,024, oldest dropped on overflow). */
const HELD_PER_LINK = 1024;

export interface SimOptions {
  seed: number;
  voters: number;
  /** Ticks of random faults, then the liveness phase. */
  faultTicks?: number;
  /** Max ticks allowed for the liveness phase (R-C3: 10 × max election timeout, plus catch-up). */
  livenessTicks?: number;
  mutations?: ReadonlySet<Mutation>;
  /** Fault intensity multiplier (1 = default mix). */
  intensity?: number;
}

export interface SimResult {
  seed: number;
  events: number;
  traceHash: string;
  committed: number;
  leaderChanges: number;
  crashes: number;
  /** Conf-change entries applied (counted once per index). */
  confChanges: number;
  reads: number;
  proposals: { ok: number; failed: number };
  livenessTicks: number;
}

interface WriteOp {
  snapshot?: Snapshot;
  entries?: Entry[];
  hardState?: HardState;
}

interface Proposal {
  id: string;
  node: NodeId;
  index: number;
  term: number;
  /** 'unknown': the driver lost track (crash, snapshot over it) and reports an indeterminate result. */
  status: 'pending' | 'ok' | 'failed' | 'unknown';
}

interface SimNode {
  id: NodeId;
  up: boolean;
  /** Removed from the configuration and stopped by the operator. */
  retired: boolean;
  /** Incremented on crash so stale fsync completions are ignored. */
  epoch: number;
  raw: RawNode;
  mem: MemoryStorage;
  synced: MemoryStorage;
  pending: WriteOp[];
  busy: boolean;
  pausedUntil: number;
  slowDiskUntil: number;
  failNextFsync: boolean;
  // application state
  hash: number;
  applied: number;
  confState: ConfState;
  // revealed state (sent in messages) that must survive a crash
  maxSentTerm: number;
  votesSent: Map<number, NodeId>;
  // leader append-only tracking: term → [index, termAt]
  leaderMark: { term: number; index: number; termAt: number } | undefined;
  lastRole: string;
  pendingReads: Map<string, number>;
}

type Ev =
  | { k: 'tick'; node: NodeId; epoch: number }
  | { k: 'deliver'; m: Message }
  | { k: 'fsync'; node: NodeId; epoch: number; rd: Ready; sent: boolean }
  | { k: 'fault' }
  | { k: 'client' }
  | { k: 'operator' }
  | { k: 'restart'; node: NodeId }
  | { k: 'kill'; node: NodeId; epoch: number }
  | { k: 'snap-status'; node: NodeId; to: NodeId; ok: boolean }
  | { k: 'heal-link'; key: string }
  | { k: 'flap'; key: string; until: number };

/** Min-heap of timed events; ties run in push order, so a seed replays exactly. Also the driver simulator's queue. */
export class Heap<E = Ev> {
  private a: { t: number; s: number; e: E }[] = [];
  private seq = 0;
  get size(): number { return this.a.length; }
  push(t: number, e: E): void {
    const a = this.a;
    a.push({ t, s: this.seq++, e });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[i]!, a[p]!)) { [a[i], a[p]] = [a[p]!, a[i]!]; i = p; } else break;
    }
  }
  pop(): { t: number; e: E } | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
function less(x: { t: number; s: number }, y: { t: number; s: number }): boolean {
  return x.t < y.t || (x.t === y.t && x.s < y.s);
}

function mix(h: number, v: number): number {
  h ^= v;
  return Math.imul(h, 0x01000193) >>> 0;
}
function hashBytes(h: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) h = mix(h, b[i]!);
  return h;
}
function entryKey(e: Entry): string {
  return e.type + ':' + new TextDecoder().decode(e.data);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Simulation {
  readonly rng: Random;
  readonly opts: Required<Omit<SimOptions, 'mutations'>> & { mutations: ReadonlySet<Mutation> };
  private readonly q = new Heap();
  now = 0;
  events = 0;
  private trace = 0x811c9dc5;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly genesis: ConfState;
  private nextNodeId: number;
  // network
  private dropRate: number;
  private dupRate: number;
  private longDelayRate: number;
  private readonly blocked = new Set<string>();
  /**
   * Messages sent over a blocked link, held like the transport's per-peer queue (up to 1,024, flushed
   * in order after the reconnect, seconds later) and delivered when the link heals; per seed, blocked
   * messages are either held or dropped.
   */
  private readonly held = new Map<string, Message[]>();
  private readonly holdBlocked: boolean;
  private faultsOn = true;
  // knobs drawn per seed
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly snapshotEvery: number;
  /**
   * 'mixed' draws from every fault kind; 'leader-churn' (6.824 TestFigure8Unreliable shape) kills the
   * leader every few ticks and restarts it soon after, which is what exposes Figure 8 style bugs.
   */
  private readonly profile: 'mixed' | 'leader-churn';
  // global knowledge for invariants
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index:term) → [entry key, prevTerm] for Log Matching. */
  private readonly written = new Map<string, [string, number]>();
  /** index → [term, hash after applying it] for State Machine Safety / Leader Completeness. */
  private readonly appliedAt = new Map<number, [number, number]>();
  private maxAppliedIndex = 0;
  private readonly proposals: Proposal[] = [];
  private readonly proposalById = new Map<string, Proposal>();
  private readonly pendingByIndex = new Map<string, Proposal[]>();
  private readonly removed = new Set<NodeId>();
  /**
   * index → how it was first committed: the leader's voters and term, and the entry's term. Recorded
   * when a leader's commit index moves (its acks are durable by construction of the driver).
   */
  private readonly commitInfo = new Map<number, { voters: readonly NodeId[]; leaderTerm: number; entryTerm: number }>();
  private maxRecordedCommit = 0;
  private proposalSeq = 0;
  private readSeq = 0;
  private leaderChanges = 0;
  private confChanges = 0;
  private readsServed = 0;
  private crashes = 0;
  private livenessTicksUsed = 0;

  constructor(options: SimOptions) {
    this.opts = {
      faultTicks: 400,
      livenessTicks: 400,
      intensity: 1,
      ...options,
      mutations: options.mutations ?? new Set(),
    };
    this.rng = createSeededRandom(options.seed * 2654435761 + 17);
    const r = this.rng;
    this.dropRate = r() * 0.3;
    this.dupRate = r() * 0.1;
    this.longDelayRate = r() * 0.1;
    this.profile = r() < 0.3 ? 'leader-churn' : 'mixed';
    // One entry per MsgApp (maxSizePerMsg 1) splits a new leader's catch-up from its no-op, the window
    // Figure 8 needs; leader churn uses it most of the time.
    this.maxSizePerMsg = r() < (this.profile === 'leader-churn' ? 0.8 : 0.4) ? 1 : 1 + Math.floor(r() * 200);
    this.maxInflight = 1 + Math.floor(r() * 8);
    this.preVote = r() < 0.8;
    this.checkQuorum = r() < 0.8;
    this.snapshotEvery = 8 + Math.floor(r() * 40);
    this.holdBlocked = r() < 0.7;
    const ids = Array.from({ length: options.voters }, (_, i) => `n${i + 1}`);
    this.nextNodeId = options.voters + 1;
    this.genesis = { voters: ids, learners: [] };
    for (const id of ids) this.startNode(id, new MemoryStorage({ confState: this.genesis }));
  }

  private has(m: Mutation): boolean {
    return this.opts.mutations.has(m);
  }

  private violation(inv: string, detail: string): never {
    throw new SimViolation(inv, detail, this.now);
  }

  // ------------------------------------------------------------------ node lifecycle

  private coreMutations(): ReadonlySet<RaftMutationForTest> {
    const s = new Set<RaftMutationForTest>();
    for (const m of this.opts.mutations) if (m !== 'ack-before-fsync') s.add(m);
    return s;
  }

  private startNode(id: NodeId, synced: MemoryStorage, prev?: SimNode): SimNode {
    // The process sees a copy of its synced storage; unsynced writes go to both `mem` and `pending`.
    const mem = cloneStorage(synced);
    const snap = synced.snapshot();
    const raw = new RawNode({
      id,
      storage: mem,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      rand: createSeededRandom(Math.floor(this.rng() * 2 ** 31)),
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflight,
      applied: snap.metadata.index,
      mutationsForTest: this.coreMutations(),
    });
    const n: SimNode = {
      id,
      up: true,
      retired: false,
      epoch: (prev?.epoch ?? 0) + 1,
      raw,
      mem,
      synced,
      pending: [],
      busy: false,
      pausedUntil: 0,
      slowDiskUntil: 0,
      failNextFsync: false,
      hash: snap.metadata.index > 0 ? decodeSnapHash(snap.data) : 0,
      applied: snap.metadata.index,
      confState: snap.metadata.confState,
      maxSentTerm: prev?.maxSentTerm ?? 0,
      votesSent: prev?.votesSent ?? new Map(),
      leaderMark: undefined,
      lastRole: 'follower',
      pendingReads: new Map(),
    };
    if (prev) {
      // Revealed state must have been durable: term never goes back, a granted vote is remembered.
      const hs = synced.initialState().hardState;
      if (hs.term < prev.maxSentTerm) this.violation('DurableTerm', `${id} restarted with term ${hs.term} after sending term ${prev.maxSentTerm}`);
      const v = prev.votesSent.get(hs.term);
      if (v !== undefined && hs.vote !== v) this.violation('DurableVote', `${id} restarted in term ${hs.term} with vote '${hs.vote}' after granting it to ${v}`);
    }
    this.nodes.set(id, n);
    this.q.push(this.now + 1 + Math.floor(this.rng() * TICK), { k: 'tick', node: id, epoch: n.epoch });
    this.pump(n);
    return n;
  }

  private crash(n: SimNode, reason: string): void {
    if (!n.up) return;
    this.crashes++;
    n.up = false;
    n.busy = false;
    n.epoch++;
    // Torn tail: a random prefix of the unsynced writes reached the disk, the rest is lost.
    const keep = Math.floor(this.rng() * (n.pending.length + 1));
    for (const op of n.pending.slice(0, keep)) applyWrite(n.synced, op);
    n.pending = [];
    for (const p of this.proposals) if (p.node === n.id && p.status === 'pending') p.status = 'unknown';
    n.pendingReads.clear();
    this.mark(`crash ${n.id} ${reason}`);
  }

  private restart(id: NodeId): void {
    const n = this.nodes.get(id)!;
    if (n.up || n.retired) return;
    this.startNode(id, n.synced, n);
    this.mark(`restart ${id}`);
    // Senders reconnect to the new process and flush what their transports queued for it.
    for (const key of [...this.held.keys()]) if (key.endsWith(`>${id}`) && !this.blocked.has(key)) this.unblock(key);
  }

  // ------------------------------------------------------------------ driver (Ready handling)

  private pump(n: SimNode): void {
    if (!n.up || n.busy || n.pausedUntil > this.now) return;
    if (!n.raw.hasReady()) return;
    this.recordLeaderCommit(n);
    const rd = n.raw.ready();
    this.onReady(n, rd);
    const op: WriteOp = {};
    if (rd.snapshot) { n.mem.applySnapshot(rd.snapshot); op.snapshot = rd.snapshot; }
    if (rd.entries.length > 0) { n.mem.append(rd.entries); op.entries = rd.entries; }
    if (rd.hardState) { n.mem.setHardState(rd.hardState); op.hardState = rd.hardState; }
    const wrote = op.snapshot !== undefined || op.entries !== undefined || op.hardState !== undefined;
    if (wrote) n.pending.push(op);
    // A commit-index-only write is not fsynced: it stays pending (lost by a crash unless a later fsync
    // covers it) and the driver goes on at once, as the real driver does.
    if (!wrote || !rd.mustSync) {
      this.finishReady(n, rd, false);
      return;
    }
    n.busy = true;
    let sent = false;
    // A leader may replicate while it writes (rd.sendBeforePersist, thesis §10.2.1).
    if (rd.sendBeforePersist || this.has('ack-before-fsync')) {
      this.sendAll(n, rd.messages);
      sent = true;
    }
    const slow = n.slowDiskUntil > this.now;
    const lat = slow ? 5 + Math.floor(this.rng() * 40) : Math.floor(this.rng() * 3);
    this.q.push(this.now + lat, { k: 'fsync', node: n.id, epoch: n.epoch, rd, sent });
  }

  private onFsync(n: SimNode, epoch: number, rd: Ready, sent: boolean): void {
    if (!n.up || n.epoch !== epoch) return;
    if (n.pausedUntil > this.now) {
      this.q.push(n.pausedUntil, { k: 'fsync', node: n.id, epoch, rd, sent });
      return;
    }
    if (n.failNextFsync) {
      // R-E4: an fsync error is fatal for the process — it stops without acknowledging anything.
      n.failNextFsync = false;
      this.crash(n, 'fsync failed');
      this.q.push(this.now + TICK * (5 + Math.floor(this.rng() * 20)), { k: 'restart', node: n.id });
      return;
    }
    for (const op of n.pending) applyWrite(n.synced, op);
    n.pending = [];
    this.finishReady(n, rd, sent);
  }

  private finishReady(n: SimNode, rd: Ready, alreadySent: boolean): void {
    if (!alreadySent) this.sendAll(n, rd.messages);
    if (rd.snapshot) this.applySnapshot(n, rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(n, e);
    for (const rs of rd.readStates) this.onReadState(n, rs.index, rs.context);
    n.raw.advance(rd);
    n.busy = false;
    this.maybeCompact(n);
    this.pump(n);
  }

  private onReady(n: SimNode, rd: Ready): void {
    // Log Matching, checked inductively on every entry any node ever writes: the same (index, term)
    // always carries the same command and follows the same previous term.
    let prevTerm: number | undefined;
    for (const e of rd.entries) {
      if (prevTerm === undefined) {
        if (rd.snapshot && rd.snapshot.metadata.index === e.index - 1) prevTerm = rd.snapshot.metadata.term;
        else {
          const pi = e.index - 1;
          prevTerm = pi >= n.mem.firstIndex() - 1 && pi <= n.mem.lastIndex() ? n.mem.term(pi) : -1;
        }
      }
      const key = `${e.index}:${e.term}`;
      const val = entryKey(e);
      const seen = this.written.get(key);
      if (!seen) this.written.set(key, [val, prevTerm]);
      else {
        if (seen[0] !== val) this.violation('LogMatching', `${n.id} wrote a different entry at ${key}`);
        if (prevTerm >= 0 && seen[1] >= 0 && seen[1] !== prevTerm) this.violation('LogMatching', `${n.id} wrote ${key} after term ${prevTerm}, elsewhere after term ${seen[1]}`);
      }
      prevTerm = e.term;
    }
  }

  private sendAll(n: SimNode, msgs: Message[]): void {
    for (const m of msgs) {
      if (m.type !== 'MsgPreVote' && !(m.type === 'MsgPreVoteResp' && !m.reject) && m.term > n.maxSentTerm) n.maxSentTerm = m.term;
      if (m.type === 'MsgVoteResp' && !m.reject) n.votesSent.set(m.term, m.to);
      this.transmit(m);
    }
  }

  /** The transport tells the sender's driver how a snapshot send ended; it calls reportSnapshot. */
  private snapStatus(m: Message, ok: boolean): void {
    if (m.type === 'MsgSnap') this.q.push(this.now + TICK * 2, { k: 'snap-status', node: m.from, to: m.to, ok });
  }

  private transmit(m: Message): void {
    const link = `${m.from}>${m.to}`;
    if (this.blocked.has(link) && this.holdBlocked && m.type !== 'MsgSnap') {
      this.hold(link, m);
      return;
    }
    if (this.blocked.has(link) || (this.faultsOn && this.rng() < this.dropRate)) {
      this.snapStatus(m, false);
      return;
    }
    const copies = this.faultsOn && this.rng() < this.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = 1 + Math.floor(this.rng() * 3);
      if (this.faultsOn && this.rng() < this.longDelayRate) delay *= 1 + Math.floor(this.rng() * 50);
      this.q.push(this.now + delay, { k: 'deliver', m });
    }
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n && !n.up && !n.retired && this.holdBlocked && m.type !== 'MsgSnap') {
      // The connection is refused: the sender's transport queues the message for the restarted process.
      this.hold(`${m.from}>${m.to}`, m);
      return;
    }
    if (!n || !n.up) { this.snapStatus(m, false); return; }
    if (n.pausedUntil > this.now) {
      this.q.push(n.pausedUntil + Math.floor(this.rng() * 3), { k: 'deliver', m });
      return;
    }
    if (this.blocked.has(`${m.from}>${m.to}`)) { this.snapStatus(m, false); return; }
    this.snapStatus(m, true);
    try {
      n.raw.step(m);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'MG_ERR_RAFT_STEP_PEER_NOT_FOUND') return; // driver drops
      throw e;
    }
    this.pump(n);
  }

  // ------------------------------------------------------------------ application (state machine)

  private applyEntry(n: SimNode, e: Entry): void {
    if (e.index !== n.applied + 1) this.violation('ApplyOrder', `${n.id} applied ${e.index} after ${n.applied}`);
    n.hash = hashBytes(mix(mix(n.hash, e.index), e.term), e.data);
    n.applied = e.index;
    const seen = this.appliedAt.get(e.index);
    if (!seen) {
      if (e.type === 'conf-change') this.confChanges++;
      this.checkDurableOnQuorum(n, e);
      this.appliedAt.set(e.index, [e.term, n.hash]);
      if (e.index > this.maxAppliedIndex) this.maxAppliedIndex = e.index;
    } else if (seen[0] !== e.term || seen[1] !== n.hash) {
      this.violation('StateMachineSafety', `${n.id} applied (${e.index}, term ${e.term}) but another node applied term ${seen[0]} there (or a different prefix)`);
    }
    if (e.type === 'conf-change') {
      const cc = decodeConfChange(e.data);
      n.confState = n.raw.applyConfChange(cc);
      if (this.debug) this.mark(`${n.id} applied ${cc.kind} ${cc.node} at ${e.index}/${e.term} → v[${n.confState.voters.join(' ')}] l[${n.confState.learners.join(' ')}]`);
      if (cc.kind === 'remove') {
        this.removed.add(cc.node);
        // A peer that applies its own removal stops taking part (DESIGN.md §3).
        if (cc.node === n.id) this.retire(n);
      }
    } else if (e.data.length > 0) {
      const p = this.proposalById.get(dec.decode(e.data));
      if (p && p.status === 'pending') p.status = 'ok';
    }
    // A proposal this node accepted at this index resolves now: committed if it is the same entry.
    const mine = this.pendingByIndex.get(`${n.id}@${e.index}`);
    if (mine) {
      this.pendingByIndex.delete(`${n.id}@${e.index}`);
      for (const p of mine) if (p.status === 'pending') p.status = p.term === e.term ? 'ok' : 'failed';
    }
  }

  private retire(n: SimNode): void {
    if (n.retired) return;
    n.retired = true;
    n.up = false;
    n.epoch++;
    for (const p of this.proposals) if (p.node === n.id && p.status === 'pending') p.status = 'unknown';
    this.mark(`retire ${n.id}`);
  }

  /** CommittedIsDurable: the first time an entry is applied anywhere it is fsynced on a quorum. */
  private checkDurableOnQuorum(n: SimNode, e: Entry): void {
    // The configuration the leader used when it committed this index (configs change on apply, so
    // it can differ by one server from the applier's current one).
    const voters = this.commitInfo.get(e.index)?.voters ?? n.confState.voters;
    let durable = 0;
    for (const id of voters) {
      const o = this.nodes.get(id);
      if (!o) continue;
      const snapIdx = o.synced.snapshot().metadata.index;
      if (e.index <= snapIdx) { durable++; continue; }
      if (e.index <= o.synced.lastIndex() && o.synced.term(e.index) === e.term) durable++;
    }
    if (durable < Math.floor(voters.length / 2) + 1) {
      this.violation('CommittedIsDurable', `(${e.index}, term ${e.term}) applied by ${n.id} is durable on only ${durable}/${voters.length} voters`);
    }
  }

  private applySnapshot(n: SimNode, s: Snapshot): void {
    const idx = s.metadata.index;
    n.confState = s.metadata.confState;
    if (this.debug) this.mark(`${n.id} installed snapshot ${idx} → v[${n.confState.voters.join(' ')}] l[${n.confState.learners.join(' ')}]`);
    if (idx === 0) return; // bootstrap configuration only
    const h = decodeSnapHash(s.data);
    const seen = this.appliedAt.get(idx);
    if (seen && (seen[0] !== s.metadata.term || seen[1] !== h)) this.violation('StateMachineSafety', `${n.id} installed a snapshot at ${idx} that differs from the applied history`);
    n.hash = h;
    n.applied = idx;
    for (const p of this.proposals) if (p.node === n.id && p.status === 'pending' && p.index <= idx) p.status = 'unknown';
  }

  private maybeCompact(n: SimNode): void {
    const snapIdx = n.mem.snapshot().metadata.index;
    if (n.applied - snapIdx < this.snapshotEvery || n.pending.length > 0) return;
    // The driver writes the snapshot durably (temp file, fsync, rename) then compacts its log.
    const data = encodeSnapHash(n.hash);
    for (const st of [n.mem, n.synced]) {
      st.createSnapshot(n.applied, n.confState, data);
      st.compact(n.applied);
    }
  }

  private onReadState(n: SimNode, index: number, ctx: string): void {
    const floor = n.pendingReads.get(ctx);
    if (floor === undefined) return;
    n.pendingReads.delete(ctx);
    this.readsServed++;
    // Linearizable read: the read point covers every write applied anywhere before the request.
    if (index < floor) this.violation('LinearizableRead', `${n.id} read at index ${index} < ${floor} applied before the request`);
  }

  // ------------------------------------------------------------------ invariants after each event

  /**
   * Records the configuration a leader committed new indexes under and checks no node lacking them can
   * win. Called after every event and also before a Ready is handled: a commit-only Ready applies at
   * once, and applying a conf change would otherwise swap the voter set before it is recorded.
   */
  private recordLeaderCommit(n: SimNode): void {
    const r = n.raw.raftForTest();
    if (r.role !== 'leader' || r.raftLog.committed <= this.maxRecordedCommit) return;
    const voters = [...r.trk.voters];
    for (let i = this.maxRecordedCommit + 1; i <= r.raftLog.committed; i++) {
      if (!this.commitInfo.has(i)) this.commitInfo.set(i, { voters, leaderTerm: r.term, entryTerm: r.raftLog.termOr0(i) });
    }
    this.maxRecordedCommit = r.raftLog.committed;
    this.checkNoElectableNodeLacks(r.raftLog.committed, r.raftLog.termOr0(r.raftLog.committed), voters, n.id);
  }

  private checkInvariants(): void {
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const r = n.raw.raftForTest();
      const st = { role: r.role, term: r.term };
      if (st.role !== n.lastRole) {
        if (st.role === 'leader') this.onBecameLeader(n, st.term);
        n.lastRole = st.role;
      }
      if (st.role !== 'leader') { n.leaderMark = undefined; continue; }
      const prev = this.leaderOfTerm.get(st.term);
      if (prev === undefined) this.leaderOfTerm.set(st.term, n.id);
      else if (prev !== n.id) this.violation('ElectionSafety', `${n.id} and ${prev} are both leaders of term ${st.term}`);
      // Leader Append-Only: the last entry this leader had is still there with the same term.
      const mark = n.leaderMark;
      if (mark && mark.term === st.term) {
        if (r.raftLog.lastIndex() < mark.index || r.raftLog.termOr0(mark.index) !== mark.termAt) {
          if (r.raftLog.firstIndex() <= mark.index) this.violation('LeaderAppendOnly', `${n.id} (term ${st.term}) lost or rewrote entry ${mark.index}`);
        }
      }
      this.recordLeaderCommit(n);
      this.checkMatchIsTrue(n);
      const li = r.raftLog.lastIndex();
      n.leaderMark = { term: st.term, index: li, termAt: r.raftLog.termOr0(li) };
      // At most one uncommitted configuration entry in a leader's log (raft.md R-C2).
      const lo = Math.max(r.raftLog.committed + 1, r.raftLog.firstIndex());
      if (lo <= li) {
        let ccs = 0;
        for (const e of r.raftLog.slice(lo, li + 1)) if (e.type === 'conf-change') ccs++;
        if (ccs > 1) this.violation('SingleUncommittedConfChange', `${n.id} (term ${st.term}) has ${ccs} uncommitted conf changes`);
      }
    }
  }

  /**
   * A leader's match for a peer is true: unless the peer has moved to a later term (whose leader may
   * rewrite its log), the peer's durable log holds the leader's entry at that index. An ack taken from
   * an older term, or an ack for more than the append matched, breaks this at once — long before it
   * leads to a wrong commit. (Acks are sent only after the write is durable, so the synced log counts.)
   */
  private checkMatchIsTrue(n: SimNode): void {
    const r = n.raw.raftForTest();
    for (const [id, pr] of r.trk.progress) {
      const m = pr.match;
      if (id === n.id || m === 0) continue;
      const f = this.nodes.get(id);
      if (!f || f.synced.initialState().hardState.term > r.term) continue;
      if (m <= f.synced.snapshot().metadata.index || m < r.raftLog.firstIndex() - 1) continue;
      const theirs = m <= f.synced.lastIndex() ? f.synced.term(m) : -1;
      const ours = m <= r.raftLog.lastIndex() ? r.raftLog.termOr0(m) : -1;
      if (theirs === -1 || theirs !== ours) {
        this.violation('LeaderMatchIsTrue', `${n.id} (term ${r.term}) has match ${m} for ${id}, whose durable log has ${theirs === -1 ? 'no entry' : `term ${theirs}`} there (leader: ${ours === -1 ? 'none' : `term ${ours}`})`);
      }
    }
  }

  /**
   * Committed entries survive any future election (the lemma behind Leader Completeness; cf. etcd's
   * tla/etcdraft.tla MoreUpToDateCorrectInv). Checked the moment a leader commits (index, term): no node
   * whose log lacks it may be at least as up to date (§5.4.1) as a majority of the commit configuration.
   * A node's strongest log is its in-memory log if up, its synced log if down; a voter's weakest log is
   * its synced log (what survives a crash). Sound for correct Raft; Figure 8 breaks it immediately.
   */
  private checkNoElectableNodeLacks(index: number, term: number, voters: readonly NodeId[], leader: NodeId): void {
    if (index === 0) return;
    const weakest = voters.map((id) => this.nodes.get(id)).filter((o): o is SimNode => !!o).map((o) => lastOf(o.synced));
    for (const n of this.nodes.values()) {
      if (n.retired) continue;
      let has: boolean;
      let last: { index: number; term: number };
      if (n.up) {
        const log = n.raw.raftForTest().raftLog;
        has = index < log.firstIndex() || log.termOr0(index) === term;
        last = { index: log.lastIndex(), term: log.lastTerm() };
      } else {
        has = index <= n.synced.snapshot().metadata.index || (index <= n.synced.lastIndex() && n.synced.term(index) === term);
        last = lastOf(n.synced);
      }
      if (has) continue;
      let beats = 0;
      for (const q of weakest) if (last.term > q.term || (last.term === q.term && last.index >= q.index)) beats++;
      if (beats >= Math.floor(voters.length / 2) + 1) {
        this.violation('CommittedEntryElectability', `${leader} committed (${index}, term ${term}) but ${n.id} (last ${last.index}/${last.term}) lacks it and is as up to date as ${beats}/${voters.length} voters`);
      }
    }
  }

  /**
   * Leader Completeness (Raft §5.4): a leader of term T holds every entry committed in a term < T.
   * (A delayed vote can still crown a stale leader of a lower term; it is exempt, per the theorem.)
   */
  private onBecameLeader(n: SimNode, term: number): void {
    this.leaderChanges++;
    if (this.profile === 'leader-churn' && this.faultsOn && this.rng() < 0.5) {
      // Kill the new leader within a few ticks, often before its no-op reaches a majority (Figure 8).
      this.q.push(this.now + Math.floor(this.rng() * 3 * TICK), { k: 'kill', node: n.id, epoch: n.epoch });
    }
    let i = this.maxRecordedCommit;
    while (i > 0 && this.commitInfo.get(i)!.leaderTerm >= term) i--;
    if (i === 0) return;
    const want = this.commitInfo.get(i)!.entryTerm;
    const log = n.raw.raftForTest().raftLog;
    if (i < log.firstIndex() - 1) return; // covered by its snapshot, which holds only committed entries
    if (log.lastIndex() < i || log.termOr0(i) !== want) {
      this.violation('LeaderCompleteness', `${n.id} leads term ${term} without entry (${i}, term ${want}) committed in term ${this.commitInfo.get(i)!.leaderTerm} (its last index ${log.lastIndex()})`);
    }
  }

  // ------------------------------------------------------------------ random actors

  private upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rng() * xs.length)];
  }

  private leaders(): SimNode[] {
    return this.upNodes().filter((n) => n.raw.raftForTest().role === 'leader');
  }

  private propose(n: SimNode, id: string): void {
    try {
      n.raw.propose(enc.encode(id));
    } catch (e) {
      if ((e as { code?: string }).code === 'MG_ERR_RAFT_PROPOSAL_DROPPED') return;
      throw e;
    }
    const r = n.raw.raftForTest();
    if (r.role === 'leader') {
      const p: Proposal = { id, node: n.id, index: r.raftLog.lastIndex(), term: r.term, status: 'pending' };
      this.proposals.push(p);
      this.proposalById.set(id, p);
      const key = `${n.id}@${p.index}`;
      const list = this.pendingByIndex.get(key);
      if (list) list.push(p); else this.pendingByIndex.set(key, [p]);
    }
    this.pump(n);
  }

  private clientAction(): void {
    const r = this.rng();
    if (r < 0.75) {
      const target = this.rng() < 0.85 ? this.pick(this.leaders()) : this.pick(this.upNodes());
      if (target && target.pausedUntil <= this.now) this.propose(target, `p${++this.proposalSeq}`);
    } else {
      const n = this.pick(this.upNodes());
      if (!n || n.pausedUntil > this.now) return;
      const ctx = `r${++this.readSeq}`;
      try {
        n.raw.readIndex(ctx);
        n.pendingReads.set(ctx, this.maxAppliedIndex);
      } catch (e) {
        if ((e as { code?: string }).code !== 'MG_ERR_RAFT_READ_INDEX_DROPPED') throw e;
      }
      this.pump(n);
    }
  }

  private operatorAction(): void {
    const lead = this.pick(this.leaders());
    if (!lead || lead.pausedUntil > this.now) return;
    const cs = lead.confState;
    const base = this.opts.voters;
    if (this.debug) this.mark(`operator at ${lead.id} cfg v[${cs.voters.join(' ')}] l[${cs.learners.join(' ')}] applied ${lead.applied}`);
    if (this.rng() < 0.25) {
      // Graceful leadership transfer (thesis §3.10), e.g. before draining or upgrading a peer.
      const to = this.pick(cs.voters.filter((v) => v !== lead.id));
      if (to) lead.raw.transferLeader(to);
      this.pump(lead);
      return;
    }
    try {
      if (cs.learners.length > 0) {
        const l = cs.learners[0]!;
        if (this.rng() < 0.8) lead.raw.proposeConfChange({ kind: 'add-voter', node: l });
        else lead.raw.proposeConfChange({ kind: 'remove', node: l });
      } else if (cs.voters.length > base) {
        const victim = this.pick([...cs.voters])!;
        lead.raw.proposeConfChange({ kind: 'remove', node: victim });
      } else {
        const id = `n${this.nextNodeId++}`;
        // A joining peer starts with empty storage, like a driver's non-bootstrap peer.
        this.startNode(id, new MemoryStorage());
        lead.raw.proposeConfChange({ kind: 'add-learner', node: id });
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'MG_ERR_RAFT_CONF_CHANGE_PENDING' && code !== 'MG_ERR_RAFT_PROPOSAL_DROPPED' && code !== 'MG_ERR_RAFT_INVALID_CONF_CHANGE') throw e;
    }
    this.pump(lead);
  }

  private churnAction(): void {
    const r = this.rng();
    if (r < 0.7) {
      const victim = r < 0.55 ? this.pick(this.leaders()) : this.pick(this.upNodes());
      if (!victim) return;
      this.crash(victim, 'churn');
      this.q.push(this.now + TICK * (1 + Math.floor(this.rng() * 15)), { k: 'restart', node: victim.id });
    } else if (r < 0.85) {
      // A slow disk holds a leader's Ready (its commit and its next appends) while it may be killed.
      const n = this.rng() < 0.5 ? this.pick(this.leaders()) : this.pick(this.upNodes());
      if (n) n.slowDiskUntil = this.now + TICK * (5 + Math.floor(this.rng() * 30));
    } else {
      const a = this.pick(this.upNodes()), b = this.pick(this.upNodes());
      if (a && b && a !== b) { this.blockFor(`${a.id}>${b.id}`, TICK * (2 + Math.floor(this.rng() * 10))); this.blockFor(`${b.id}>${a.id}`, TICK * (2 + Math.floor(this.rng() * 10))); }
    }
  }

  private faultAction(): void {
    if (this.profile === 'leader-churn') { this.churnAction(); return; }
    const all = [...this.nodes.values()].filter((n) => !n.retired);
    const r = this.rng();
    if (r < 0.22) {
      // crash, preferring the leader half of the time; restart later from synced state
      const victim = this.rng() < 0.5 ? this.pick(this.leaders()) ?? this.pick(this.upNodes()) : this.pick(this.upNodes());
      if (!victim) return;
      this.crash(victim, 'kill');
      this.q.push(this.now + TICK * (1 + Math.floor(this.rng() * 30)), { k: 'restart', node: victim.id });
    } else if (r < 0.4) {
      // symmetric partition into two random groups
      const ids = all.map((n) => n.id);
      const side = new Set(ids.filter(() => this.rng() < 0.5));
      for (const a of ids) for (const b of ids) if (a !== b && side.has(a) !== side.has(b)) this.blockFor(`${a}>${b}`, TICK * (5 + Math.floor(this.rng() * 40)));
    } else if (r < 0.52) {
      // one-way link failure (the Cloudflare shape)
      const a = this.pick(all), b = this.pick(all);
      if (a && b && a !== b) this.blockFor(`${a.id}>${b.id}`, TICK * (5 + Math.floor(this.rng() * 60)));
    } else if (r < 0.62) {
      // flapping link
      const a = this.pick(all), b = this.pick(all);
      if (a && b && a !== b) this.q.push(this.now, { k: 'flap', key: `${a.id}>${b.id}`, until: this.now + TICK * (20 + Math.floor(this.rng() * 60)) });
    } else if (r < 0.74) {
      // process pause up to 2× the election timeout
      const n = this.pick(this.upNodes());
      if (n) n.pausedUntil = this.now + Math.floor(this.rng() * 2 * ELECTION_TICK * TICK);
    } else if (r < 0.86) {
      const n = this.pick(this.upNodes());
      if (n) n.slowDiskUntil = this.now + TICK * (5 + Math.floor(this.rng() * 30));
    } else if (r < 0.92) {
      const n = this.pick(this.upNodes());
      if (n) n.failNextFsync = true;
    } else {
      // heal everything early
      this.unblockAll();
    }
  }

  private hold(link: string, m: Message): void {
    const q = this.held.get(link) ?? [];
    if (q.length >= HELD_PER_LINK) q.shift(); // the transport drops the oldest on overflow
    q.push(m);
    this.held.set(link, q);
  }

  /** A link heals: what the transport held for it is flushed in order, shortly after. */
  private unblock(key: string): void {
    this.blocked.delete(key);
    const q = this.held.get(key);
    if (!q) return;
    this.held.delete(key);
    const at = this.now + 1 + Math.floor(this.rng() * 3);
    for (const [i, m] of q.entries()) this.q.push(at + i, { k: 'deliver', m });
  }

  private unblockAll(): void {
    for (const key of [...this.blocked]) this.unblock(key);
  }

  private blockFor(key: string, dur: number): void {
    this.blocked.add(key);
    this.q.push(this.now + dur, { k: 'heal-link', key });
  }

  // ------------------------------------------------------------------ main loop

  /** Set MESHGATE_SIM_DEBUG=1 when replaying a seed to print every event. */
  private readonly debug = typeof process !== 'undefined' && process.env['MESHGATE_SIM_DEBUG'] === '1';

  private debugEvent(ev: Ev): void {
    let d: string = ev.k;
    if (ev.k === 'deliver') {
      const m = ev.m;
      d = `deliver ${m.type} ${m.from}->${m.to} t${m.term} i${m.index ?? ''} lt${m.logTerm ?? ''} c${m.commit ?? ''}${m.reject ? ' REJECT' : ''} ents[${(m.entries ?? []).map((e) => `${e.index}/${e.term}`).join(',')}]`;
    } else if ('node' in ev) d += ` ${ev.node}`;
    const st = [...this.nodes.values()].map((n) => { const r = n.raw.raftForTest(); return `${n.id}:${n.up ? '' : 'DOWN '}${r.role[0]}${r.term}/c${r.raftLog.committed}/a${n.applied}/li${r.raftLog.lastIndex()}`; }).join(' ');
    console.log(`t=${this.now} ${d}  | ${st}`);
  }

  private mark(s: string): void {
    if (this.debug) console.log(`t=${this.now} MARK ${s}`);
    for (let i = 0; i < s.length; i++) this.trace = mix(this.trace, s.charCodeAt(i));
    this.trace = mix(this.trace, this.now);
  }

  private step(ev: Ev): void {
    this.events++;
    if (this.debug) this.debugEvent(ev);
    switch (ev.k) {
      case 'tick': {
        const n = this.nodes.get(ev.node);
        if (!n || !n.up || n.epoch !== ev.epoch) return; // a restart starts a fresh tick chain
        this.q.push(this.now + TICK, ev);
        if (n.pausedUntil > this.now) return;
        n.raw.tick();
        this.pump(n);
        return;
      }
      case 'deliver': this.deliver(ev.m); return;
      case 'fsync': {
        const n = this.nodes.get(ev.node);
        if (n) this.onFsync(n, ev.epoch, ev.rd, ev.sent);
        return;
      }
      case 'restart': if (this.faultsOn) this.restart(ev.node); return;
      case 'kill': {
        const n = this.nodes.get(ev.node);
        if (!n || !this.faultsOn || n.epoch !== ev.epoch) return;
        this.crash(n, 'kill new leader');
        this.q.push(this.now + TICK * (1 + Math.floor(this.rng() * 15)), { k: 'restart', node: n.id });
        return;
      }
      case 'snap-status': {
        const n = this.nodes.get(ev.node);
        if (n && n.up) { n.raw.reportSnapshot(ev.to, ev.ok); this.pump(n); }
        return;
      }
      case 'heal-link': this.unblock(ev.key); return;
      case 'flap': {
        if (!this.faultsOn || this.now >= ev.until) { this.unblock(ev.key); return; }
        if (this.blocked.has(ev.key)) this.unblock(ev.key); else this.blocked.add(ev.key);
        this.q.push(this.now + TICK * (1 + Math.floor(this.rng() * 4)), ev);
        return;
      }
      case 'fault':
        if (!this.faultsOn) return;
        this.faultAction();
        this.q.push(this.now + Math.floor(TICK * (this.profile === 'leader-churn' ? 1 + this.rng() * 8 : 2 + this.rng() * 16) / this.opts.intensity), { k: 'fault' });
        return;
      case 'client':
        this.clientAction();
        this.q.push(this.now + Math.floor(TICK * (0.5 + this.rng() * 2)), { k: 'client' });
        return;
      case 'operator':
        if (!this.faultsOn) return;
        this.operatorAction();
        this.q.push(this.now + TICK * (5 + Math.floor(this.rng() * 25)), { k: 'operator' });
        return;
    }
  }

  private runUntil(t: number, stop?: () => boolean): boolean {
    for (;;) {
      const top = this.q.pop();
      if (!top) return false;
      if (top.t > t) { this.q.push(top.t, top.e); this.now = t; return false; }
      this.now = top.t;
      this.mark(top.e.k);
      this.step(top.e);
      this.checkInvariants();
      if (stop && stop()) return true;
    }
  }

  run(): SimResult {
    this.q.push(0, { k: 'fault' });
    this.q.push(TICK * 3, { k: 'client' });
    this.q.push(TICK * 20, { k: 'operator' });
    this.runUntil(this.opts.faultTicks * TICK);
    this.heal();
    const start = this.now;
    const deadline = start + this.opts.livenessTicks * TICK;
    let final: string | undefined;
    const done = (): boolean => {
      const lead = this.stableLeader();
      if (!lead) return false;
      if (this.proposals.some((p) => p.status === 'pending')) {
        this.fillTo(lead);
        return false;
      }
      if (final === undefined) {
        final = `final${this.proposalSeq}`;
        this.propose(lead, final);
        return false;
      }
      const fp = this.proposalById.get(final);
      if (!fp || fp.status === 'failed' || fp.status === 'unknown') { final = undefined; return false; } // dropped or lost: retry
      if (fp.status !== 'ok') return false;
      return this.converged(lead);
    };
    const ok = this.runUntil(deadline, done);
    this.livenessTicksUsed = Math.ceil((this.now - start) / TICK);
    if (!ok) {
      const pending = this.proposals.filter((p) => p.status === 'pending').length;
      const lead = this.stableLeader();
      this.violation('Liveness', `no convergence within ${this.opts.livenessTicks} ticks after faults stopped (leader=${lead?.id ?? 'none'}, pending proposals=${pending}, nodes=${this.describe()})`);
    }
    for (const n of this.nodes.values()) this.mark(`${n.id}:${n.applied}:${n.hash}`);
    return {
      seed: this.opts.seed,
      events: this.events,
      traceHash: this.trace.toString(16),
      committed: this.maxAppliedIndex,
      leaderChanges: this.leaderChanges,
      crashes: this.crashes,
      confChanges: this.confChanges,
      reads: this.readsServed,
      proposals: { ok: this.proposals.filter((p) => p.status === 'ok').length, failed: this.proposals.filter((p) => p.status === 'failed').length },
      livenessTicks: this.livenessTicksUsed,
    };
  }

  private describe(): string {
    return [...this.nodes.values()].map((n) => {
      const s = n.raw.status();
      return `${n.id}{${n.up ? 'up' : 'down'}${n.retired ? ',retired' : ''},${s.role},t${s.term},c${s.commit},a${n.applied},li${s.lastIndex},v[${n.confState.voters.join(' ')}],l[${n.confState.learners.join(' ')}]}`;
    }).join(' ');
  }

  /** Faults stop: heal the network, restart crashed members, stop peers removed from the configuration. */
  private heal(): void {
    this.faultsOn = false;
    this.unblockAll();
    for (const n of this.nodes.values()) {
      n.pausedUntil = 0;
      n.slowDiskUntil = 0;
      n.failNextFsync = false;
    }
    // The operator stops peers it removed; everything else is (re)started.
    for (const n of this.nodes.values()) if (this.removed.has(n.id)) this.retire(n);
    for (const n of this.nodes.values()) if (!n.up && !n.retired) this.restart(n.id);
    this.mark('heal');
  }

  private members(lead: SimNode): SimNode[] {
    return [...lead.confState.voters, ...lead.confState.learners].map((id) => this.nodes.get(id)).filter((n): n is SimNode => !!n);
  }

  /** The leader with the highest term among up nodes (stale leaders may linger until they hear of it). */
  private stableLeader(): SimNode | undefined {
    const ls = this.leaders();
    if (ls.length === 0) return undefined;
    let best = ls[0]!;
    for (const l of ls) if (l.raw.raftForTest().term > best.raw.raftForTest().term) best = l;
    if (!this.faultsOn) this.retireRemoved(best);
    return best;
  }

  /**
   * Once the leader has committed in its term and applied everything, its configuration reflects every
   * committed change: a peer outside it that was ever a member (it has a configuration) was removed —
   * possibly learned only through a snapshot — and the operator stops it, failing its pending requests.
   */
  private retireRemoved(lead: SimNode): void {
    const r = lead.raw.raftForTest();
    if (!r.committedEntryInCurrentTerm() || lead.applied !== r.raftLog.committed) return;
    const inCfg = new Set([...lead.confState.voters, ...lead.confState.learners]);
    for (const n of this.nodes.values()) {
      if (n.up && !inCfg.has(n.id) && (n.confState.voters.length > 0 || n.confState.learners.length > 0)) this.retire(n);
    }
  }

  private fillTo(lead: SimNode): void {
    const maxIdx = Math.max(0, ...this.proposals.filter((p) => p.status === 'pending').map((p) => p.index));
    if (lead.raw.raftForTest().raftLog.lastIndex() < maxIdx) this.propose(lead, `fill${++this.proposalSeq}`);
  }

  private converged(lead: SimNode): boolean {
    const log = lead.raw.raftForTest().raftLog;
    if (log.committed !== log.lastIndex() || lead.applied !== log.committed) return false;
    for (const n of this.members(lead)) {
      if (!n.up || n.applied !== log.committed || n.hash !== lead.hash) return false;
    }
    return true;
  }
}

function lastOf(st: MemoryStorage): { index: number; term: number } {
  const i = st.lastIndex();
  return { index: i, term: st.term(i) };
}

function applyWrite(st: MemoryStorage, op: WriteOp): void {
  if (op.snapshot) st.applySnapshot(op.snapshot);
  if (op.entries) st.append(op.entries);
  if (op.hardState) st.setHardState(op.hardState);
}

/** A fresh MemoryStorage holding the same durable state (what a restarted process reads back). */
function cloneStorage(src: MemoryStorage): MemoryStorage {
  const { hardState, confState } = src.initialState();
  const snap = src.snapshot();
  const dst = new MemoryStorage({ confState });
  if (snap.metadata.index > 0) dst.applySnapshot(snap);
  const first = src.firstIndex();
  const last = src.lastIndex();
  if (last >= first) dst.append(src.entries(first, last + 1));
  dst.setHardState(hardState);
  return dst;
}

function encodeSnapHash(h: number): Uint8Array {
  return enc.encode(JSON.stringify({ hash: h }));
}
function decodeSnapHash(b: Uint8Array): number {
  if (b.length === 0) return 0;
  return (JSON.parse(dec.decode(b)) as { hash: number }).hash;
}

/** Runs one seed; returns its result or the violation. */
export function runSeed(opts: SimOptions): { ok: true; result: SimResult } | { ok: false; error: Error } {
  try {
    return { ok: true, result: new Simulation(opts).run() };
  } catch (e) {
    return { ok: false, error: e as Error };
  }
}
