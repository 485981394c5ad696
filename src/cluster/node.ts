/**
 * RaftNode: the driver around the pure core (raft/RawNode). It owns the tick timer, the durable storage
 * (storage.ts), the authenticated peer transport (transport.ts) and the membership state machine
 * (membership.ts), and exposes what the admin API and the proxy need: propose, consistent reads, peer
 * changes, leadership transfer, status, events and membership-change callbacks.
 *
 * Ready loop (raft/raw-node.ts contract, etcd-io/raft doc.go): for each Ready, strictly in order
 *   1. persist snapshot + entries + hard state, fsync (DiskStorage.persist), then mirror into MemoryStorage;
 *      a commit-index-only hard state (mustSync false) is written without fsync and not waited for;
 *   2. send messages (only now: nothing leaves before the state it depends on is durable, R-E2) — except
 *      a leader's Ready with rd.sendBeforePersist, whose messages leave before step 1 (thesis §10.2.1:
 *      followers write while the leader writes; the core counts the leader's copy only after advance);
 *   3. apply the snapshot, then committed entries (conf changes → applyConfChange), resolve waiters;
 *   4. advance(rd).
 * Any storage failure stops the node for good (fail closed, R-E4): no more ticks, messages, votes or acks;
 * the last applied membership stays readable so the proxy keeps routing (DESIGN.md §3).
 *
 * Proposal forwarding: a follower hands its proposal to the core, which forwards it to the leader as
 * MsgProp over the transport (etcd behaviour). The entry carries a proposal id (`<node>/<boot>/<n>`), and
 * the proposer resolves its caller when it applies the entry with that id itself — so `propose` resolves
 * after commit + apply on THIS peer, with the entry's index. A dropped forward surfaces as a timeout whose
 * outcome is unknown; callers retry with the same clientId/seq and the state machine de-duplicates.
 *
 * Timing: electionTick 10 and heartbeatTick 1 by default, so the election timeout is randomized in
 * [10, 20) ticks. This class's own tickMs default (100 ms: etcd's 1–2 s) is for embedders; meshgate passes
 * `cluster.tickInterval`, 15 ms by default, for the paper's 150–300 ms (raft.md R-G1). The event loop is
 * shared with the proxy data path, so a leader stalled past the minimum timeout loses leadership; that is
 * harmless to routing (which keeps the last membership) and docs/config.md says when to raise the tick.
 *
 * Outside world: time, timers, randomness, the transport, the data dir's filesystem and the first-boot
 * probe come through `io` (node-io.ts; the real ones by default), so the driver simulator
 * (test/sim/driver/) runs this very code under virtual time, an in-process network and a crashing disk.
 * Beside this file: node-snapshot.ts (the snapshot payload), node-waiters.ts (callers and their
 * deadlines), membership-diff.ts (what a snapshot install changed), node-identity.ts (cluster identity).
 *
 * Bootstrap: on first boot (empty dataDir) a peer first runs the identity check of identity.ts (it may
 * refuse: a wiped data dir must come back as a new member); then a peer listed in `bootstrap` writes the
 * derived cluster id and an index-0 snapshot holding the bootstrap voters and their addresses (etcd
 * --initial-cluster). A peer not listed starts empty and waits for the leader to add it (POST
 * /api/v1/cluster/peers) and send it the log or a snapshot; it takes the leader's cluster id.
 */
import { decodeMessage, decodeRoutedReport, encodeMessage, encodeRoutedReport, isRoutedReport } from './codec.js';
import { RoutedReports, type RoutedOutcome } from './routed-reports.js';
import {
  BadCommandError,
  ClusterError,
  NoQuorumError,
  NotLeaderError,
  RaftClosedError,
  RaftTimeoutError,
  StorageFailedError,
} from './errors.js';
import { noopLogger, type ClusterLogger } from './logger.js';
import {
  decodeProposal,
  encodeProposal,
  MembershipStateMachine,
  validateCommand,
  type ApplyResult,
  type MembershipChange,
  type MembershipCommand,
} from './membership.js';
import {
  ErrReadIndexDropped,
  MemoryStorage,
  NONE,
  RaftError,
  RawNode,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftRole,
  type Ready,
  type Snapshot,
} from './raft/index.js';
import { checkConfChangeEntry, RejectionLog, type RejectedEntry } from './rejections.js';
import { DiskStorage, type DiskStorageOptions, type StorageMutationForTest } from './storage.js';
import { NodeIdentity } from './node-identity.js';
import { nodeIo, type NodeIo, type NodeTransport, type TimerHandle } from './node-io.js';
import { armWaiter, type Waiter } from './node-waiters.js';
import { decodeNodeSnapshot, encodeNodeSnapshot } from './node-snapshot.js';
import { flattenMembership, membershipDiff } from './membership-diff.js';
import type { RaftMutationForTest, RaftVariantForTest } from './raft/config.js';
import type { TransportOptions, TransportStats } from './transport.js';
import { createSeededRandom } from '../lib/rng.js';
import type { ClusterMembership } from '../model/index.js';
import { checkPeerId, parsePeerAddress } from '../model/validate/index.js';
import type { EventBus } from '../observability/events.js';

export const DEFAULT_TICK_MS = 100;
export const DEFAULT_ELECTION_TICK = 10;
export const DEFAULT_HEARTBEAT_TICK = 1;
/** R-H3: snapshot every 10,000 applied entries and keep 5,000 behind it for slow followers. */
export const DEFAULT_SNAPSHOT_EVERY = 10_000;
export const DEFAULT_TRAILING_ENTRIES = 5_000;
/** Long enough for a leader election (≤ 2 s with defaults) plus commit; short enough for an admin call. */
export const DEFAULT_PROPOSAL_TIMEOUT_MS = 5_000;
/** Membership commands are a few hundred bytes; anything near this is a client bug. */
export const MAX_COMMAND_BYTES = 64 * 1024;
/** R-F3 catch-up gate for a new voter: its match within this many entries of the leader's last index… */
export const PROMOTION_MAX_LAG = 1_000;
/** …and at least this fraction of it. */
export const PROMOTION_MIN_MATCH_FRACTION = 0.9;

export interface PeerAddress {
  readonly id: NodeId;
  readonly address: string;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  /** cluster.listen: host:port for peer traffic (port 0 → ephemeral, see listenAddress()). */
  readonly listen: string;
  readonly dataDir: string;
  readonly secret: string;
  /** cluster.bootstrap: the initial voters (used only on first boot of an empty dataDir). */
  readonly bootstrap: readonly PeerAddress[];
  readonly events?: EventBus;
  readonly logger?: ClusterLogger;
  readonly tickMs?: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  /** Bytes of entry data per MsgApp (the core's default 1 MiB; at least one entry is always sent). */
  readonly maxSizePerMsg?: number;
  readonly snapshotEvery?: number;
  readonly trailingEntries?: number;
  readonly proposalTimeoutMs?: number;
  /** Latency observers (the app feeds them to /metrics); called on the hot path, so keep them cheap. */
  readonly timings?: RaftTimings;
  readonly storageForTest?: Pick<DiskStorageOptions, 'syncForTest' | 'fs'>;
  readonly transportForTest?: Pick<TransportOptions, 'backoffBaseMs' | 'backoffMaxMs' | 'queueLimit'>;
  /** Clock, timers, randomness, transport, filesystem and probe (node-io.ts); default the real ones. */
  readonly io?: Partial<NodeIo>;
  /** Test-only broken behaviours of the core and of this driver, to prove the simulator catches them. */
  readonly mutationsForTest?: ReadonlySet<RaftMutationForTest | DriverMutationForTest | StorageMutationForTest>;
  /** Test-only legal alternatives of the core (raft/config.ts RaftVariantForTest), for the simulator. */
  readonly variantsForTest?: ReadonlySet<RaftVariantForTest>;
}

/**
 * Deliberately broken driver behaviours (raft.md R-C5), run only by test/sim/driver/mutations.test.ts:
 * - 'send-before-durable': every role's messages (votes, acks) leave before the Ready's write is durable;
 * - 'apply-before-persist': committed entries and snapshots are applied (and callers answered) before the
 *   Ready's write is durable.
 */
export type DriverMutationForTest = 'send-before-durable' | 'apply-before-persist';

export interface RaftTimings {
  /** A committed entry or snapshot this peer could not apply (recorded, skipped; the log goes on). */
  entryRejected?(r: RejectedEntry): void;
  /** A membership write proposed on this peer, until committed and applied here. */
  proposeSeconds?(seconds: number): void;
  /** One durable append to the Raft log (entries, or a term/vote change). */
  walAppendSeconds?(seconds: number): void;
}

export interface ProposeResult {
  readonly index: number;
  readonly result: ApplyResult;
}

export interface PeerStatus {
  readonly id: NodeId;
  readonly address: string | undefined;
  readonly suffrage: 'voter' | 'learner' | 'none';
  /** Leader only: highest log index known to be replicated on the peer. */
  readonly match: number | undefined;
  /** Milliseconds since the last message received from the peer (undefined: never). */
  readonly lastContactMs: number | undefined;
  readonly connected: boolean;
}

export interface RaftNodeStatus {
  readonly id: NodeId;
  readonly role: RaftRole;
  readonly term: number;
  readonly leader: NodeId | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** Index of the newest snapshot this peer holds (taken locally or installed from the leader). */
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly peers: readonly PeerStatus[];
  readonly hasQuorum: boolean;
  /** Milliseconds since this peer last heard from the leader (0 on the leader; undefined: no leader). */
  readonly lastLeaderContactMs: number | undefined;
  /** This peer was removed from the group and no longer takes part. */
  readonly removed: boolean;
  /** Set when storage failed or the core's invariants broke: the peer has stopped taking part (fail closed). */
  readonly failed: string | undefined;
  /** Committed entries this peer refused to apply (issue 13: apply is total). */
  readonly rejectedEntries: { readonly total: number; readonly recent: readonly RejectedEntry[] };
  /** Peer messages the core refused as invalid input (dropped, the peer runs on). */
  readonly rejectedMessages: number;
}

export interface MembershipUpdate {
  readonly index: number;
  readonly changes: readonly MembershipChange[];
  readonly membership: ClusterMembership;
}

export class RaftNode {
  private readonly opts: RaftNodeOptions;
  private readonly log: ClusterLogger;
  private readonly tickMs: number;
  private readonly electionTick: number;
  private readonly io: NodeIo;
  private readonly bootId: string;
  private storage!: DiskStorage;
  private mem!: MemoryStorage;
  private raw!: RawNode;
  private transport!: NodeTransport;
  private identity!: NodeIdentity;
  private readonly fsm = new MembershipStateMachine();
  private readonly rejections = new RejectionLog();
  private readonly peers = new Map<NodeId, string>();
  private readonly lastContact = new Map<NodeId, number>();
  private confState: ConfState = { voters: [], learners: [] };
  private ticker: TimerHandle | undefined;
  private started = false;
  private stopped = false;
  private failure: StorageFailedError | undefined;
  private removed = false;
  private applied = 0;
  private lastSnapshotIndex = 0;
  private lead: NodeId = NONE;
  private role: RaftRole = 'follower';
  private term = 0;
  private quorum = false;
  private rejectedMessages = 0;
  private counter = 0;
  private readonly proposals = new Map<string, Waiter<ProposeResult>>();
  /** Proposals of this turn, stepped together at its end (stepProposalBatch). */
  private readonly proposalBatch: Array<{ pid: string; data: Uint8Array }> = [];
  private proposalBatchQueued = false;
  private readonly reads = new Map<string, Waiter<number>>();
  /** Read points granted by the leader, waiting for this peer to apply up to them. */
  /** Reads whose index is known, waiting until this peer has applied up to it; keyed by read context. */
  private readonly readsAwaitingApply = new Map<string, { index: number; waiter: Waiter<number> }>();
  private readonly confWaiters = new Map<string, Waiter<{ index: number }>>();
  private readonly leaderWaiters = new Set<{ check: () => boolean; waiter: Waiter<NodeId> }>();
  private readonly membershipListeners = new Set<(u: MembershipUpdate) => void>();
  private loopRunning = false;
  private loopDone: Promise<void> = Promise.resolve();
  /** Proposals and reads answered so far (tells handleReady whether an apply resolved a caller). */
  private answered = 0;
  /** What the other peers last said their routing includes (routed-reports.ts), and what we said. */
  private readonly routedReports: RoutedReports;
  private routedSelf = 0;
  /** reportRouted was called once (the embedder routes by Raft): from then on reports repeat each election timeout. */
  private routedStarted = false;
  private ticksSinceRouted = 0;

  constructor(opts: RaftNodeOptions) {
    this.opts = opts;
    this.log = opts.logger ?? noopLogger;
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.electionTick = opts.electionTick ?? DEFAULT_ELECTION_TICK;
    this.io = nodeIo(opts.io);
    this.routedReports = new RoutedReports(this.io.timers);
    this.bootId = randomU32(this.io).toString(16).padStart(8, '0');
  }

  /** Opens storage, recovers, starts the transport and the tick timer. */
  async start(): Promise<void> {
    if (this.started) throw new Error('RaftNode already started');
    this.started = true;
    const { id } = this.opts;
    for (const p of this.opts.bootstrap) this.peers.set(p.id, p.address);

    this.storage = await DiskStorage.open({ dataDir: this.opts.dataDir, nodeId: id, logger: this.log, fs: this.io.fs, mutationsForTest: storageMutations(this.opts.mutationsForTest), ...this.opts.storageForTest });
    this.term = this.storage.recovered.hardState.term;
    // Identity (identity.ts): the transport listens first, so peers probing at their own first boot get
    // an answer from us while we probe them; nothing is admitted until we have a cluster id.
    this.identity = await NodeIdentity.open(this.opts.dataDir, this.log, this.io);
    this.transport = this.io.transport({
      id,
      listen: this.opts.listen,
      secret: this.opts.secret,
      logger: this.log,
      identity: this.identity.forTransport({ term: () => this.term, confState: () => this.confState, known: (peer) => this.peers.has(peer) }),
      onMessage: (from, payload) => this.onPeerMessage(from, payload),
      onUnreachable: (peer) => {
        if (!this.stopped && this.raw) this.raw.reportUnreachable(peer);
      },
      ...this.opts.transportForTest,
    });
    await this.transport.start();
    let snapshot = this.storage.recovered.snapshot;
    try {
      if (await this.identity.establish({ id, bootstrap: this.opts.bootstrap, secret: this.opts.secret, storageEmpty: this.storage.isEmpty() })) {
        snapshot = {
          metadata: { index: 0, term: 0, confState: { voters: this.opts.bootstrap.map((p) => p.id), learners: [] } },
          data: encodeNodeSnapshot(this.peers, new Uint8Array(0)),
        };
        await this.storage.persist({ snapshot });
        this.log.info({ voters: snapshot.metadata.confState.voters, clusterId: this.identity.clusterIdHex }, 'raft: bootstrapped a new cluster from cluster.bootstrap');
      }
    } catch (err) {
      await this.transport.close();
      await this.storage.close();
      throw err;
    }

    this.mem = new MemoryStorage();
    if (snapshot) {
      this.mem.applySnapshot(snapshot);
      this.restoreSnapshot(snapshot, false);
    }
    this.mem.setHardState(this.storage.recovered.hardState);
    this.mem.append([...this.storage.recovered.entries]);
    this.term = this.storage.recovered.hardState.term;

    this.raw = new RawNode({
      id,
      storage: this.mem,
      electionTick: this.electionTick,
      heartbeatTick: this.opts.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK,
      ...(this.opts.maxSizePerMsg !== undefined ? { maxSizePerMsg: this.opts.maxSizePerMsg } : {}),
      rand: createSeededRandom(randomU32(this.io)),
      mutationsForTest: coreMutations(this.opts.mutationsForTest),
      ...(this.opts.variantsForTest ? { variantsForTest: this.opts.variantsForTest } : {}),
      preVote: true,
      checkQuorum: true,
      applied: this.applied,
    });

    for (const [pid, addr] of this.peers) this.transport.setPeer(pid, addr);

    // A single-voter group need not wait an election timeout to elect itself.
    if (this.confState.voters.length === 1 && this.confState.voters[0] === id) this.raw.campaign();
    // Ticks start at a random phase. Peers started together (or whose timers drifted together) would
    // otherwise tick in the same millisecond, and two followers that draw the same election timeout
    // (1 in electionTick) would campaign at once and split the vote. In the failover bench, 3 of 60 runs
    // needed a second election before (one traced: two campaigns began in the same millisecond), 1 of 80
    // after this and the vote-dial and lost-wake-up fixes.
    const timers = this.io.timers;
    this.ticker = timers.setTimeout(() => {
      if (this.stopped) return;
      this.ticker = timers.setInterval(() => this.onTick(), this.tickMs);
      this.ticker.unref?.();
      this.onTick();
    }, this.io.random() * this.tickMs);
    this.ticker.unref?.();
    this.scheduleReady();
  }

  /** The bound peer address (useful with port 0). */
  listenAddress(): { host: string; port: number } {
    return this.transport.address!;
  }

  // ---------------------------------------------------------------------------------------------------
  // Public API

  /**
   * Proposes a membership command; resolves after it is committed and applied on this peer, with the entry
   * index and the state machine's result (which may be `{ok:false}`, e.g. not found). Rejects with
   * NoQuorumError when no leader is known, RaftTimeoutError when the outcome is unknown.
   */
  propose(command: MembershipCommand, opts: { timeoutMs?: number } = {}): Promise<ProposeResult> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const problem = validateCommand(command);
    if (problem !== undefined) return Promise.reject(new BadCommandError(problem));
    const noQuorum = this.noQuorum();
    if (noQuorum) return Promise.reject(noQuorum);
    const pid = `${this.opts.id}/${this.bootId}/${++this.counter}`;
    const data = encodeProposal(pid, command);
    if (data.length > MAX_COMMAND_BYTES) return Promise.reject(new BadCommandError(`command is ${data.length} bytes, above ${MAX_COMMAND_BYTES}`));
    return new Promise<ProposeResult>((resolve, reject) => {
      const observe = this.opts.timings?.proposeSeconds;
      const started = observe ? this.io.now() : 0;
      const done = observe
        ? (r: ProposeResult): void => {
            observe((this.io.now() - started) / 1000);
            resolve(r);
          }
        : resolve;
      this.waiter(this.proposals, pid, done, reject, 'proposal', opts.timeoutMs);
      this.proposalBatch.push({ pid, data });
      if (!this.proposalBatchQueued) {
        this.proposalBatchQueued = true;
        queueMicrotask(() => this.stepProposalBatch());
      }
    });
  }

  /**
   * Group commit at the source: proposals made in one turn (typically every caller the last apply
   * answered, each proposing its next write) are stepped as one message, so the leader appends them
   * together and sends one MsgApp per follower instead of one per proposal.
   */
  private stepProposalBatch(): void {
    this.proposalBatchQueued = false;
    const batch = this.proposalBatch.splice(0);
    if (batch.length === 0 || this.stopped) return;
    try {
      this.raw.proposeBatch(batch.map((b) => b.data));
    } catch (err) {
      const mapped = this.mapCoreError(err);
      for (const b of batch) {
        const w = this.proposals.get(b.pid);
        if (!w) continue;
        this.io.timers.clearTimeout(w.timer);
        this.proposals.delete(b.pid);
        w.reject(mapped);
      }
      return;
    }
    this.scheduleReady();
  }

  /**
   * Linearizable read point (ReadIndex, Raft thesis §6.4): resolves with an index once this peer has applied
   * at least up to it, so a following `membership()` read reflects every write committed before the call.
   */
  readIndex(opts: { timeoutMs?: number } = {}): Promise<number> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const noQuorum = this.noQuorum();
    if (noQuorum) return Promise.reject(noQuorum);
    const ctx = `${this.opts.id}/${this.bootId}/r${++this.counter}`;
    return new Promise<number>((resolve, reject) => {
      const w = this.waiter(this.reads, ctx, resolve, reject, 'read index', opts.timeoutMs);
      try {
        this.raw.readIndex(ctx);
      } catch (err) {
        this.io.timers.clearTimeout(w.timer);
        this.reads.delete(ctx);
        reject(this.mapCoreError(err));
        return;
      }
      this.scheduleReady();
    });
  }

  /** Consistent read of the replicated membership (admin API). */
  async readMembership(opts: { timeoutMs?: number } = {}): Promise<{ index: number; membership: ClusterMembership }> {
    const index = await this.readIndex(opts);
    return { index, membership: this.fsm.view() };
  }

  /** Local, possibly stale view (data path: bounded-stale, see status().lastLeaderContactMs). */
  membership(): ClusterMembership {
    return this.fsm.view();
  }

  /**
   * Adds (or promotes, with role 'voter') a peer, one server at a time (thesis §4.1). On the leader, a
   * voter is added only once caught up (raft.md R-F3): a new voter that is far behind counts toward
   * the quorum while it cannot yet acknowledge anything, so a 3-voter group adding an empty fourth
   * needs 3 of 4 acks from 2 able peers. (A follower forwards the change; the leader's core applies it
   * without this check, so promote on the leader.)
   */
  addPeer(id: NodeId, address: string, role: 'voter' | 'learner', opts: { timeoutMs?: number } = {}): Promise<{ index: number }> {
    const problem = [checkPeerId(id), parsePeerAddress(address)].find((r) => !r.ok);
    if (problem && !problem.ok) return Promise.reject(new BadCommandError(problem.message));
    if (role === 'voter') {
      const behind = this.notCaughtUp(id);
      if (behind) return Promise.reject(behind);
    }
    return this.confChange({ kind: role === 'voter' ? 'add-voter' : 'add-learner', node: id, address }, opts.timeoutMs);
  }

  /**
   * Removes a peer. A leader that removes itself commits the change as leader and, on applying it, hands
   * leadership to a remaining voter holding its whole log (raft.ts applyConfChange, raft.md R-F5), so the
   * group does not wait an election timeout for a new leader. (Transferring first would leave the removal
   * to a new leader that refuses conf changes until its first entry is applied, and the removed peer
   * would never learn that its removal committed.)
   */
  removePeer(id: NodeId, opts: { timeoutMs?: number } = {}): Promise<{ index: number }> {
    return this.confChange({ kind: 'remove', node: id }, opts.timeoutMs);
  }

  /** On the leader: why `id` may not become a voter yet (R-F3 catch-up bound), or undefined. */
  private notCaughtUp(id: NodeId): ClusterError | undefined {
    const st = this.raw.status();
    if (st.lead !== this.opts.id || st.voters.includes(id)) return undefined;
    const match = st.progress?.[id]?.match ?? 0;
    const last = st.lastIndex;
    if (match >= Math.floor(PROMOTION_MIN_MATCH_FRACTION * last) && last - match <= PROMOTION_MAX_LAG) return undefined;
    return new BadCommandError(
      `${id} is not caught up (it has ${match} of ${last} entries; a voter must be within ${PROMOTION_MAX_LAG} entries and ${PROMOTION_MIN_MATCH_FRACTION * 100}% of the leader's log): add it as a learner, and promote it once status shows its match near the leader's last index`,
    );
  }

  /**
   * Hands leadership to `to` (default: the most up-to-date other voter). Must run on the leader when `to` is
   * omitted; resolves with the new leader's id once this peer sees it.
   */
  transferLeadership(to?: NodeId, opts: { timeoutMs?: number } = {}): Promise<NodeId> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    if (this.currentLead() === NONE) return Promise.reject(new NoQuorumError());
    let target = to;
    if (target === undefined) {
      if (this.currentLead() !== this.opts.id) return Promise.reject(new NotLeaderError(this.currentLead() || undefined));
      const progress = this.raw.status().progress ?? {};
      const candidates = this.confState.voters.filter((v) => v !== this.opts.id).sort((a, b) => (progress[b]?.match ?? 0) - (progress[a]?.match ?? 0));
      target = candidates[0];
      if (target === undefined) return Promise.reject(new ClusterError('MG_ERR_RAFT_NOT_LEADER', 'no other voter to transfer leadership to'));
    }
    if (target === this.currentLead()) return Promise.resolve(target);
    const want = target;
    const timeoutMs = opts.timeoutMs ?? 2 * this.electionTick * this.tickMs;
    return new Promise<NodeId>((resolve, reject) => {
      const entry = {
        check: () => this.lead === want,
        waiter: {
          resolve,
          reject,
          timer: this.io.timers.setTimeout(() => {
            entry.waiter.forget();
            reject(new RaftTimeoutError(`leadership transfer to ${want}`, timeoutMs));
          }, timeoutMs),
          forget: () => this.leaderWaiters.delete(entry),
        },
      };
      this.leaderWaiters.add(entry);
      this.raw.transferLeader(want);
      this.scheduleReady();
    });
  }

  /** Subscribes to applied membership changes (the peer requests a routing snapshot refresh); returns unsubscribe. */
  onMembershipChange(cb: (u: MembershipUpdate) => void): () => void {
    this.membershipListeners.add(cb);
    return () => this.membershipListeners.delete(cb);
  }

  /**
   * This peer's routing (and every worker's) now includes every entry up to `index`: tell every other
   * member (routed-reports.ts). Called by the embedder after each membership change is routed.
   */
  reportRouted(index: number): void {
    if (this.stopped || (this.routedStarted && index <= this.routedSelf)) return;
    this.routedStarted = true;
    this.routedSelf = Math.max(this.routedSelf, index);
    this.sendRouted();
  }

  private sendRouted(): void {
    this.ticksSinceRouted = 0;
    const members = new Set<NodeId>([...this.confState.voters, ...this.confState.learners]);
    members.delete(this.opts.id);
    for (const to of members) this.transport.send(to, encodeRoutedReport({ from: this.opts.id, to, index: this.routedSelf }));
  }

  /**
   * Waits (at most `timeoutMs`) until every other member has reported routing by `index`; members this
   * peer has no link to, or has not heard from within two election timeouts, are not waited for and
   * come back unconfirmed.
   */
  peersRouted(index: number, timeoutMs: number): Promise<RoutedOutcome> {
    const window = 2 * this.electionTick * this.tickMs;
    const now = this.io.now();
    // Reachable as for the quorum check: our link to it is up (a killed peer's drops at once) and we
    // heard from it lately (a paused one's does not).
    const up = new Set(this.transport.peerStatus().filter((p) => p.connected).map((p) => p.id));
    const reachable: NodeId[] = [];
    const unreachable: NodeId[] = [];
    for (const id of new Set<NodeId>([...this.confState.voters, ...this.confState.learners])) {
      if (id === this.opts.id) continue;
      (up.has(id) && now - (this.lastContact.get(id) ?? -Infinity) <= window ? reachable : unreachable).push(id);
    }
    return this.routedReports.waitFor(index, reachable, unreachable, timeoutMs);
  }

  status(): RaftNodeStatus {
    const st = this.raw.status();
    const now = this.io.now();
    const linkById = new Map(this.transport.peerStatus().map((p) => [p.id, p]));
    const ids = new Set<NodeId>([...st.voters, ...st.learners, ...this.peers.keys()]);
    ids.delete(this.opts.id);
    const peers: PeerStatus[] = [...ids].sort().map((id) => {
      const seen = this.lastContact.get(id);
      return {
        id,
        address: this.peers.get(id),
        suffrage: st.voters.includes(id) ? 'voter' : st.learners.includes(id) ? 'learner' : 'none',
        match: st.progress?.[id]?.match,
        lastContactMs: seen === undefined ? undefined : Math.round(now - seen),
        connected: linkById.get(id)?.connected ?? false,
      };
    });
    const leaderSeen = st.lead === this.opts.id ? now : this.lastContact.get(st.lead);
    return {
      id: this.opts.id,
      role: st.role,
      term: st.term,
      leader: st.lead === NONE ? undefined : st.lead,
      commitIndex: st.commit,
      appliedIndex: this.applied,
      lastIndex: st.lastIndex,
      snapshotIndex: this.mem.snapshot().metadata.index,
      voters: st.voters,
      learners: st.learners,
      peers,
      hasQuorum: this.quorum,
      lastLeaderContactMs: st.lead === NONE || leaderSeen === undefined ? undefined : Math.round(now - leaderSeen),
      removed: this.removed,
      failed: this.failure?.message,
      rejectedEntries: { total: this.rejections.total, recent: this.rejections.recent() },
      rejectedMessages: this.rejectedMessages,
    };
  }

  get failed(): StorageFailedError | undefined {
    return this.failure;
  }

  /** Transport counters (drops by reason, handshake failures) for /metrics and tests. */
  transportStats(): Readonly<TransportStats> {
    return this.transport.stats();
  }

  /**
   * Stops timers and sockets. By default a leader first hands leadership to the most up-to-date voter so
   * the group does not wait an election timeout (hashicorp LeadershipTransfer on shutdown).
   */
  async close(opts: { transferLeadership?: boolean } = {}): Promise<void> {
    if (!this.started || this.stopped) {
      if (this.started && this.transport) await this.shutdownIo();
      return;
    }
    if ((opts.transferLeadership ?? true) && this.currentLead() === this.opts.id && this.confState.voters.length > 1) {
      // The core aborts a transfer after one election timeout; allow two in wall-clock time for timer lag.
      await this.transferLeadership(undefined, { timeoutMs: 2 * this.electionTick * this.tickMs }).catch((err: unknown) =>
        this.log.warn({ err }, 'raft: leadership transfer on shutdown did not complete'),
      );
    }
    this.stop(new RaftClosedError());
    await this.shutdownIo();
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals

  private async shutdownIo(): Promise<void> {
    await this.transport.close();
    await this.loopDone.catch(() => undefined);
    await this.storage.close();
  }

  /** The core's current view of the leader (the driver's `lead` lags by one Ready). */
  private currentLead(): NodeId {
    return this.raw.status().lead;
  }

  /** Why the node cannot take requests now (failed storage, or not running); undefined when it can. */
  private unusable(): Error | undefined {
    if (this.failure) return this.failure;
    if (!this.started || this.stopped) return new RaftClosedError();
    return undefined;
  }

  private waiter<T>(map: Map<string, Waiter<T>>, key: string, resolve: (v: T) => void, reject: (e: Error) => void, what: string, timeoutMs?: number): Waiter<T> {
    return armWaiter(this.io.timers, map, key, resolve, reject, what, timeoutMs ?? this.opts.proposalTimeoutMs ?? DEFAULT_PROPOSAL_TIMEOUT_MS);
  }

  /** A proposal, conf change or read made on this peer is still waiting for its answer. */
  private hasLocalCallers(): boolean {
    return this.proposals.size > 0 || this.confWaiters.size > 0 || this.reads.size > 0 || this.readsAwaitingApply.size > 0;
  }

  private mapCoreError(err: unknown): Error {
    if (err instanceof RaftError && (err.code === 'MG_ERR_RAFT_PROPOSAL_DROPPED' || err.code === 'MG_ERR_RAFT_READ_INDEX_DROPPED') && this.currentLead() === NONE) {
      return new NoQuorumError();
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private confChange(cc: ConfChange, timeoutMs?: number): Promise<{ index: number }> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const noQuorum = this.noQuorum();
    if (noQuorum) return Promise.reject(noQuorum);
    const key = `${cc.kind}:${cc.node}`;
    if (this.confWaiters.has(key)) return Promise.reject(new ClusterError('MG_ERR_RAFT_BAD_COMMAND', `a ${cc.kind} of ${cc.node} is already in progress`));
    return new Promise((resolve, reject) => {
      const w = this.waiter(this.confWaiters, key, resolve, reject, `conf change ${key}`, timeoutMs);
      try {
        this.raw.proposeConfChange(cc);
      } catch (err) {
        this.io.timers.clearTimeout(w.timer);
        this.confWaiters.delete(key);
        reject(this.mapCoreError(err));
        return;
      }
      this.scheduleReady();
    });
  }

  private onTick(): void {
    if (this.stopped) return;
    // One tick per timer firing even after an event-loop stall: catching up several ticks at once would
    // fire election timeouts for messages that are sitting unread in our own socket buffers.
    this.raw.tick();
    // Say again, once per election timeout, what our routing includes: a report lost with a dropped
    // connection is made good, and followers (which exchange no Raft messages) keep hearing from each
    // other, so peersRouted can tell a live peer from a gone one.
    if (this.routedStarted && ++this.ticksSinceRouted >= this.electionTick) this.sendRouted();
    this.updateQuorum();
    this.scheduleReady();
  }

  private onPeerMessage(from: NodeId, payload: Uint8Array): void {
    if (this.stopped || !this.raw) return;
    if (isRoutedReport(payload)) return this.onRoutedReport(from, payload);
    let m;
    try {
      m = decodeMessage(payload);
    } catch (err) {
      this.log.warn({ peer: from, err }, 'raft: undecodable message from peer dropped');
      return;
    }
    // The transport authenticated `from`; a message claiming another sender or addressed elsewhere is a bug or an attack.
    if (m.from !== from || m.to !== this.opts.id) {
      this.log.warn({ peer: from, claimed: m.from, to: m.to }, 'raft: message with mismatched sender or destination dropped');
      return;
    }
    this.lastContact.set(from, this.io.now());
    try {
      this.raw.step(m);
    } catch (err) {
      // The core throws a RaftError for input it refuses (a response from a removed member, a malformed
      // message): drop and count it. Anything else is a broken invariant (raft/errors.ts), e.g. a peer
      // asking to commit past our log or to overwrite a committed entry: our state or the peer's can no
      // longer be trusted, so stop this peer loudly, as etcd panics, instead of running on.
      if (!(err instanceof RaftError)) {
        this.failStopped(new Error(`core invariant violated by a ${m.type} from ${from} (term ${m.term}): ${(err as Error)?.message ?? String(err)}`, { cause: err }));
        return;
      }
      this.rejectedMessages++;
      if (err.code !== 'MG_ERR_RAFT_STEP_PEER_NOT_FOUND') this.log.warn({ peer: from, type: m.type, err }, 'raft: message rejected by the core');
      return;
    }
    this.scheduleReady();
  }

  private onRoutedReport(from: NodeId, payload: Uint8Array): void {
    let r;
    try {
      r = decodeRoutedReport(payload);
    } catch (err) {
      this.log.warn({ peer: from, err }, 'raft: undecodable routed report from peer dropped');
      return;
    }
    if (r.from !== from || r.to !== this.opts.id) {
      this.log.warn({ peer: from, claimed: r.from, to: r.to }, 'raft: routed report with mismatched sender or destination dropped');
      return;
    }
    this.lastContact.set(from, this.io.now());
    this.routedReports.record(from, r.index);
  }

  private scheduleReady(): void {
    if (this.loopRunning || this.stopped) return;
    this.loopRunning = true;
    this.loopDone = this.readyLoop().finally(() => {
      this.loopRunning = false;
      // Work stepped after the loop's last hasReady() but before this callback found the loop still
      // marked running and left it to the loop. That happens whenever one socket read carries two
      // frames (an ack that makes no Ready, then a forwarded proposal): without this re-check the
      // proposal waited for the next tick, up to 50 ms, for 20% of forwarded writes in the bench.
      if (!this.stopped && this.raw.hasReady()) this.scheduleReady();
    });
  }

  private async readyLoop(): Promise<void> {
    try {
      while (!this.stopped && this.raw.hasReady()) {
        await this.handleReady(this.raw.ready());
      }
    } catch (err) {
      this.failStopped(err);
    }
  }

  /** Any driver or storage failure: stop for good (fail closed), keep the last applied membership. */
  private failStopped(err: unknown): void {
    if (this.failure) return;
    const failure = err instanceof StorageFailedError ? err : new StorageFailedError(`raft driver failed: ${(err as Error)?.message ?? String(err)}`, err);
    this.failure = failure;
    this.log.error({ err }, 'raft: node stopped (fail closed); membership stays at the last applied state');
    this.stop(failure);
    void this.transport.close();
  }

  private sendMessages(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const payload = encodeMessage(m);
      if (m.type === 'MsgSnap') {
        const to = m.to;
        this.transport.send(to, payload, (ok) => {
          if (!this.stopped) this.raw.reportSnapshot(to, ok);
        });
      } else {
        this.transport.send(m.to, payload, undefined, m.type === 'MsgVote' || m.type === 'MsgPreVote' || m.type === 'MsgTimeoutNow');
      }
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const writes = rd.snapshot !== undefined || rd.entries.length > 0;
    const early = (rd.sendBeforePersist && writes) || this.mutated('send-before-durable');
    let unsent = early ? [] : rd.messages;
    const answered = this.answered;
    const applyEarly = this.mutated('apply-before-persist');
    const changes = applyEarly ? this.applyReady(rd) : [];
    // 1. Durability first.
    if (writes) {
      const started = this.io.now();
      const written = this.storage.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, mustSync: rd.mustSync });
      // A leader replicates while it writes (thesis §10.2.1): the followers' fsyncs overlap its own.
      if (early) this.sendMessages(rd.messages);
      await written;
      if (!rd.snapshot) this.opts.timings?.walAppendSeconds?.((this.io.now() - started) / 1000);
      if (this.stopped) return;
      if (rd.snapshot) this.mem.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) this.mem.append(rd.entries);
      if (rd.hardState) this.mem.setHardState(rd.hardState);
    } else if (rd.hardState && rd.mustSync) {
      const started = this.io.now();
      const written = this.storage.persist({ hardState: rd.hardState, mustSync: true });
      if (early) this.sendMessages(rd.messages);
      await written;
      this.opts.timings?.walAppendSeconds?.((this.io.now() - started) / 1000);
      if (this.stopped) return;
      this.mem.setHardState(rd.hardState);
    } else {
      if (rd.hardState) {
        // A commit index alone is neither fsynced nor waited for (a quorum can tell it again after a
        // crash); the storage queue keeps it in order with later writes, and a failure still stops us.
        this.storage.persist({ hardState: rd.hardState, mustSync: false }).catch((err: unknown) => this.failStopped(err));
        this.mem.setHardState(rd.hardState);
      }
      if (early) this.sendMessages(rd.messages);
    }
    if (rd.hardState) this.term = rd.hardState.term;

    // 2. Messages, now that what they depend on is durable (a leader's appends may have left already).
    // Right away after a durable write: a follower's ack is what the leader is waiting for.
    // Also right away when no caller waits on this peer (e.g. a leader committing a write a follower
    // forwarded): applying first would only hold back the commit index the proposer waits for, behind
    // this peer's routing rebuild (traced at 1.25 ms with ~260 upstreams, most of a forwarded write's time).
    if (rd.mustSync || (unsent.length > 0 && !this.hasLocalCallers())) {
      this.sendMessages(unsent);
      unsent = [];
    }

    // 3. Apply.
    if (!applyEarly) changes.push(...this.applyReady(rd));

    // 4. Advance.
    this.raw.advance(rd);

    if (rd.softState) {
      const prevLead = this.lead;
      const prevRole = this.role;
      this.lead = rd.softState.lead;
      this.role = rd.softState.role;
      if (prevRole !== this.role) {
        // Logged by observability/state-log from the event; a driver without a bus (tests, tools) logs it itself.
        if (this.opts.events) this.opts.events.emit('raft:role', { role: this.role, term: this.term });
        else this.log.info({ role: this.role, term: this.term }, 'raft: role changed');
      }
      if (prevLead !== this.lead) {
        if (this.opts.events) this.opts.events.emit('raft:leader', { leader: this.lead === NONE ? undefined : this.lead, term: this.term });
        else this.log.info({ leader: this.lead, term: this.term }, 'raft: leader changed');
        // A read still waiting for its read index asked the old leader, which drops pending reads
        // when it steps down (etcd does the same): answer "retry" now instead of a timeout in 5 s. A
        // read that already has its index (readsAwaitingApply) stays valid and completes on apply.
        for (const [ctx, w] of [...this.reads]) {
          this.reads.delete(ctx);
          this.io.timers.clearTimeout(w.timer);
          w.reject(new ErrReadIndexDropped(`the leader changed (now ${this.lead === NONE ? 'none' : this.lead}) while it waited; retry`));
        }
        for (const lw of [...this.leaderWaiters]) {
          if (lw.check()) {
            this.io.timers.clearTimeout(lw.waiter.timer);
            this.leaderWaiters.delete(lw);
            lw.waiter.resolve(this.lead);
          }
        }
      }
      this.updateQuorum();
    }
    if (changes.length > 0) this.notifyMembership(changes);
    if (unsent.length > 0) {
      // Nothing was made durable for these messages (a commit broadcast, heartbeats), so they may follow
      // the apply (raw-node.ts, step 2). When the apply answered callers, let their replies leave first
      // (they are microtasks away): on a 2-core machine each loopback send can hand the CPU to the peer
      // it wakes, which measured ~0.3 ms per message in front of the reply.
      if (this.answered !== answered) await new Promise<void>((resolve) => this.io.timers.setImmediate(resolve));
      if (!this.stopped) this.sendMessages(unsent);
    }
    await this.maybeSnapshot();
  }

  /** Step 3 of a Ready: the snapshot, then the committed entries, then the read states it granted. */
  private applyReady(rd: Ready): MembershipChange[] {
    const changes: MembershipChange[] = [];
    if (rd.snapshot) {
      changes.push(...this.restoreSnapshot(rd.snapshot, true));
      this.log.info({ index: rd.snapshot.metadata.index, term: rd.snapshot.metadata.term }, 'raft: installed snapshot from the leader');
    }
    for (const e of rd.committedEntries) this.applyEntry(e, changes);
    for (const rs of rd.readStates) {
      const w = this.reads.get(rs.context);
      if (!w) continue;
      this.reads.delete(rs.context);
      this.readsAwaitingApply.set(rs.context, { index: rs.index, waiter: w });
      w.forget = () => this.readsAwaitingApply.delete(rs.context);
    }
    this.releaseReads();
    return changes;
  }

  private mutated(m: DriverMutationForTest): boolean {
    return this.opts.mutationsForTest?.has(m) ?? false;
  }

  /**
   * Applies one committed entry. Total (issue 13): an entry the state machine or the conf-change check
   * refuses, or whose apply throws, is recorded as rejected and skipped — the same on every peer, since
   * the checks depend on the entry's bytes alone — and `applied` moves past it either way.
   */
  private applyEntry(e: Entry, changes: MembershipChange[]): void {
    if (e.index <= this.applied) return;
    try {
      if (e.type === 'conf-change') this.applyConfChangeEntry(e);
      else if (e.data.length === 0) this.fsm.skip(e.index); // a new leader's no-op
      else this.applyCommandEntry(e, changes);
    } catch (err) {
      this.fsm.skip(e.index);
      this.recordRejected({ index: e.index, kind: e.type === 'conf-change' ? 'conf-change' : 'entry', reason: `apply failed: ${(err as Error)?.message ?? String(err)}` });
    }
    this.applied = e.index;
  }

  private applyConfChangeEntry(e: Entry): void {
    this.fsm.skip(e.index);
    const checked = checkConfChangeEntry(e.data);
    if (!checked.ok) {
      // Not applied to the core either: every peer refuses the same bytes, so the voter sets stay equal.
      this.recordRejected({ index: e.index, kind: 'conf-change', reason: checked.message });
      const w = checked.key === undefined ? undefined : this.confWaiters.get(checked.key);
      if (w) {
        this.io.timers.clearTimeout(w.timer);
        this.confWaiters.delete(checked.key!);
        w.reject(new BadCommandError(checked.message));
      }
      return;
    }
    const cc = checked.value;
    this.confState = this.raw.applyConfChange(cc);
    // From here the change is applied; a transport that cannot take the address is logged, not a rejection.
    const link = (f: () => void) => {
      try {
        f();
      } catch (err) {
        this.log.error({ err, peer: cc.node, index: e.index }, 'raft: transport refused a peer change that was applied');
      }
    };
    if (cc.kind === 'remove') {
      this.peers.delete(cc.node);
      if (cc.node === this.opts.id) {
        this.removed = true;
        this.log.warn({ index: e.index }, 'raft: this peer was removed from the group and stops taking part');
      } else {
        link(() => this.transport.removePeer(cc.node));
        // An admin write waiting for the removed peer's "routes by it" would otherwise wait out its
        // whole bound (PEERS_ROUTED_TIMEOUT_MS) for a peer that has stopped taking part.
        this.routedReports.forget(cc.node);
      }
      // Forgotten, so a peer whose data was lost can be added back under its id (identity.ts).
      this.identity.forget(cc.node);
    } else {
      // A peer removed and later added back under its id (the wiped-data-dir path of docs/architecture.md
      // "Cluster identity") replays its own removal first: the add that follows makes it a member again.
      if (cc.node === this.opts.id) this.removed = false;
      if (cc.address !== undefined) {
        this.peers.set(cc.node, cc.address);
        link(() => this.transport.setPeer(cc.node, cc.address!));
      }
    }
    const w = this.confWaiters.get(`${cc.kind}:${cc.node}`);
    if (w) {
      this.io.timers.clearTimeout(w.timer);
      this.confWaiters.delete(`${cc.kind}:${cc.node}`);
      w.resolve({ index: e.index });
    }
  }

  private applyCommandEntry(e: Entry, changes: MembershipChange[]): void {
    const { proposalId, command } = decodeProposal(e.data);
    const result = this.fsm.apply(e.index, command);
    if (result.ok && !result.duplicate) {
      changes.push(result.change);
      this.opts.events?.emit('membership:changed', { service: result.change.service, upstream: result.change.upstream, change: result.change.change, index: e.index });
    } else if (!result.ok && result.code === 'MG_ERR_MEMBERSHIP_INVALID') {
      this.recordRejected({ index: e.index, kind: 'entry', reason: result.message });
    }
    const w = proposalId === undefined ? undefined : this.proposals.get(proposalId);
    if (w) {
      this.io.timers.clearTimeout(w.timer);
      this.proposals.delete(proposalId!);
      this.answered++;
      w.resolve({ index: e.index, result });
    }
  }

  /** One refused entry or snapshot: status, event, metric, log line (issue 13). */
  private recordRejected(r: RejectedEntry): void {
    this.rejections.record(r);
    // The log line is written by the peer's state-change log (observability/state-log.ts) from this event;
    // a driver run without a bus (tests, tools) logs it itself.
    if (this.opts.events) this.opts.events.emit('raft:entry-rejected', r);
    else this.log.error({ index: r.index, kind: r.kind, reason: r.reason }, 'raft: committed entry rejected by this peer (skipped; the log goes on)');
    try {
      this.opts.timings?.entryRejected?.(r);
    } catch {
      // an observer must not stop the apply path
    }
  }

  /** Replaces state machine and address book from a snapshot; returns the membership diff. */
  private restoreSnapshot(s: Snapshot, diff: boolean): MembershipChange[] {
    const before = diff ? flattenMembership(this.fsm.view()) : undefined;
    // Total like an entry: what cannot be read is recorded as rejected, the rest is restored.
    const node = decodeNodeSnapshot(s.data);
    const restored = node.ok ? this.fsm.restore(node.fsm) : node;
    const dropped = [...(node.ok ? node.dropped : []), ...(restored.ok ? restored.dropped : [])];
    if (!restored.ok) this.recordRejected({ index: s.metadata.index, kind: 'snapshot', reason: restored.message });
    else if (dropped.length > 0) this.recordRejected({ index: s.metadata.index, kind: 'snapshot', reason: `left out what this version refuses: ${dropped.slice(0, 5).join(', ')}${dropped.length > 5 ? ` and ${dropped.length - 5} more` : ''}` });
    this.fsm.skip(s.metadata.index);
    this.confState = s.metadata.confState;
    for (const [id, addr] of node.ok ? node.peers : []) {
      this.peers.set(id, addr);
      try {
        if (this.started && this.transport) this.transport.setPeer(id, addr);
      } catch (err) {
        this.log.error({ err, peer: id }, 'raft: transport refused a peer address from a snapshot');
      }
    }
    this.applied = Math.max(this.applied, s.metadata.index);
    this.lastSnapshotIndex = s.metadata.index;
    if (!before) return [];
    const changes = membershipDiff(before, this.fsm.view(), (svc, up) => this.fsm.get(svc, up));
    for (const c of changes) this.opts.events?.emit('membership:changed', { service: c.service, upstream: c.upstream, change: c.change, index: s.metadata.index });
    return changes;
  }

  private releaseReads(): void {
    for (const [ctx, r] of this.readsAwaitingApply) {
      if (r.index <= this.applied) {
        this.readsAwaitingApply.delete(ctx);
        this.io.timers.clearTimeout(r.waiter.timer);
        this.answered++;
        r.waiter.resolve(r.index);
      }
    }
  }

  private notifyMembership(changes: MembershipChange[]): void {
    const u: MembershipUpdate = { index: this.applied, changes, membership: this.fsm.view() };
    for (const cb of this.membershipListeners) {
      try {
        cb(u);
      } catch (err) {
        this.log.warn({ err }, 'raft: membership listener threw');
      }
    }
  }

  private async maybeSnapshot(): Promise<void> {
    const every = this.opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    if (this.applied - this.lastSnapshotIndex < every || this.applied <= this.mem.snapshot().metadata.index) return;
    const index = this.applied;
    const snap = this.mem.createSnapshot(index, this.confState, encodeNodeSnapshot(this.peers, this.fsm.snapshot()));
    const trailing = this.opts.trailingEntries ?? DEFAULT_TRAILING_ENTRIES;
    const compactIndex = index - trailing;
    if (compactIndex >= this.mem.firstIndex()) {
      const retained = this.mem.entries(compactIndex + 1, this.mem.lastIndex() + 1);
      await this.storage.compact(snap, compactIndex, this.mem.term(compactIndex), retained);
      this.mem.compact(compactIndex);
    } else {
      await this.storage.compact(snap, 0, 0, []);
    }
    this.lastSnapshotIndex = index;
    this.log.info({ index, compactIndex: Math.max(0, compactIndex) }, 'raft: snapshot taken');
  }

  /**
   * Why a write made now could not commit (undefined when it could): no leader known, the leader not
   * reachable, or (on the leader) no majority of voters, itself included, reachable. A peer is reachable
   * when its link is up and it was heard from within two election timeouts; a SIGKILLed peer's link drops
   * at once. The one definition behind status().hasQuorum and the fail-fast refusal of writes and reads
   * (README: 503 MG_ERR_RAFT_NO_QUORUM), which happens before anything reaches the core, so a refused
   * write is known not to commit.
   */
  private quorumProblem(): string | undefined {
    const lead = this.currentLead();
    if (lead === NONE) return 'no raft leader is known';
    if (this.removed || this.failure) return 'this peer is not a member';
    const window = 2 * this.electionTick * this.tickMs;
    const now = this.io.now();
    const up = new Set(this.transport.peerStatus().filter((p) => p.connected).map((p) => p.id));
    const reachable = (id: NodeId): boolean => id === this.opts.id || (up.has(id) && now - (this.lastContact.get(id) ?? -Infinity) <= window);
    if (lead !== this.opts.id) return reachable(lead) ? undefined : `the leader ${lead} is unreachable`;
    const voters = this.confState.voters;
    const missing = voters.filter((v) => !reachable(v));
    const have = voters.length - missing.length;
    return have * 2 > voters.length ? undefined : `${have} of ${voters.length} voters reachable (not ${missing.join(', ')})`;
  }

  private noQuorum(): NoQuorumError | undefined {
    const problem = this.quorumProblem();
    return problem === undefined ? undefined : new NoQuorumError(`no quorum: ${problem}; membership is read-only on this peer`);
  }

  private updateQuorum(): void {
    const has = this.quorumProblem() === undefined;
    if (has !== this.quorum) {
      this.quorum = has;
      this.opts.events?.emit('raft:quorum', { hasQuorum: has });
    }
  }

  private stop(reason: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) this.io.timers.clearInterval(this.ticker);
    this.ticker = undefined;
    this.routedReports.close();
    const all: Waiter<never>[] = [
      ...(this.proposals.values() as Iterable<Waiter<never>>),
      ...(this.reads.values() as Iterable<Waiter<never>>),
      ...[...this.readsAwaitingApply.values()].map((r) => r.waiter as Waiter<never>),
      ...(this.confWaiters.values() as Iterable<Waiter<never>>),
      ...[...this.leaderWaiters].map((l) => l.waiter as Waiter<never>),
    ];
    this.proposals.clear();
    this.reads.clear();
    this.readsAwaitingApply.clear();
    this.confWaiters.clear();
    this.leaderWaiters.clear();
    for (const w of all) {
      this.io.timers.clearTimeout(w.timer);
      w.reject(reason);
    }
    if (this.quorum) {
      this.quorum = false;
      this.opts.events?.emit('raft:quorum', { hasQuorum: false });
    }
  }
}

function randomU32(io: NodeIo): number {
  return Math.floor(io.random() * 2 ** 32) >>> 0;
}

const DRIVER_MUTATIONS: ReadonlySet<string> = new Set<DriverMutationForTest>(['send-before-durable', 'apply-before-persist']);
const STORAGE_MUTATIONS: ReadonlySet<string> = new Set<StorageMutationForTest>(['recovery-skips-snapshot-clamp']);

function coreMutations(all: ReadonlySet<string> | undefined): ReadonlySet<RaftMutationForTest> | undefined {
  if (!all) return undefined;
  return new Set([...all].filter((m) => !DRIVER_MUTATIONS.has(m) && !STORAGE_MUTATIONS.has(m)) as RaftMutationForTest[]);
}

function storageMutations(all: ReadonlySet<string> | undefined): ReadonlySet<StorageMutationForTest> | undefined {
  if (!all) return undefined;
  return new Set([...all].filter((m) => STORAGE_MUTATIONS.has(m)) as StorageMutationForTest[]);
}
