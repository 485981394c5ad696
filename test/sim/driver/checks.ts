/**
 * Safety invariants of the driver simulator, checked after every task (Raft §5.2–5.4; raft.md R-C2):
 *  - Election Safety: at most one leader per term;
 *  - State Machine Safety: every peer's entry at a committed index is the one first seen committed there
 *    (term, type and bytes), across crashes, restarts and snapshots;
 *  - Log Matching: two entries anywhere with the same index and term are the same entry (checked on
 *    every entry as it appears in any peer's durable log — MemoryStorage, filled once a write is on
 *    disk; the prefix half follows by induction, Raft §5.3);
 *  - Leader Completeness, which is what "a committed entry is never lost after a crash-restart" means to a
 *    client: a peer that becomes leader of term T holds every entry committed in a term before T (or a
 *    snapshot past it);
 *  - a leader's progress is what it was told: its match for a peer never exceeds the highest index that
 *    peer acknowledged to it in its term (the frames each peer sent, decoded as they leave);
 *  - a leader's progress is true: what it believes a follower of its term holds (match) is on that
 *    follower's durable log, with the leader's term at that index (a follower acks only what is
 *    durable, so this holds across its crashes too; an ack counted for entries the follower holds only
 *    in memory is as wrong as one it never sent). It catches a wrong ack when it is counted, before a
 *    later crash has to turn it into a lost entry;
 *  - a commit is on a quorum (Raft §5.3: committed means stored on a majority): when a leader advances
 *    its commit index in its term, no more of its voters than a quorum may leave out run with a durable
 *    log that lacks the entry (or holds another one there). A peer that is down counts as holding it
 *    (what it acked is durable); one whose snapshot covers the index holds it. It catches a commit
 *    counted on a wrong ack when it happens, not only once a crash loses it;
 *  - fail closed only for a reason: a peer that stops (storage failure, a core invariant broken by a
 *    message, a driver exception) fails the seed, since the simulator injects no disk errors.
 * The state of a peer is read from the production objects it runs (RaftNode's core and log), through
 * the one cast in coreOf.
 */
import type { RaftNode } from '../../../src/cluster/node.js';
import type { RawNode } from '../../../src/cluster/raft/raw-node.js';
import type { Entry, Message, NodeId } from '../../../src/cluster/raft/types.js';

export class DriverSimViolation extends Error {
  constructor(readonly invariant: string, detail: string, readonly time: number) {
    super(`${invariant} violated at t=${time.toFixed(1)}ms: ${detail}`);
  }
}

/** The core a RaftNode drives (private there; read-only here). Undefined until start() has built it. */
export function coreOf(node: RaftNode): RawNode | undefined {
  return (node as unknown as { raw?: RawNode }).raw;
}

function entryKey(e: Entry): string {
  return `${e.term}|${e.type}|${Buffer.from(e.data).toString('base64')}`;
}

export interface CheckedPeer {
  readonly id: NodeId;
  readonly node: RaftNode | undefined;
  /** Highest committed index of this node instance already compared with the committed record. */
  checkedCommit: number;
  /** Log Matching: entries up to this index (of this term there) were already checked. */
  checkedLog?: { index: number; term: number };
}

export class SafetyChecker {
  private readonly leaders = new Map<number, NodeId>();
  private readonly committed = new Map<number, string>();
  /** "index:term" → the entry first seen there, in any log. */
  private readonly seen = new Map<string, string>();
  /**
   * Index → the lowest term a peer was in when it was seen committed there: at or above the term of the
   * leader that committed it (a peer learns a commit in its leader's term, and keeps its term durably).
   */
  private readonly committedIn = new Map<number, number>();
  private readonly leaderSeen = new Set<string>();
  /** "follower>leader@term" → the highest index the follower acknowledged to that leader in that term. */
  private readonly acked = new Map<string, number>();
  /** "leader@term" → the commit index already checked by commitOnQuorum, and the voters then. */
  private readonly leaderCommit = new Map<string, { commit: number; voters: NodeId[] }>();
  leaderTerms = 0;

  /**
   * `leaderOwnsUnsynced`: the core runs the 'self-ack-on-append' variant, where a leader's commit may
   * count its own copy while that copy is still on its way to disk (etcd's classic contract: nothing
   * leaves or is applied before the write is durable). The commit-on-quorum check then takes the
   * leader's in-memory log as its own copy; whether anything acted on such a commit too early is left
   * to the client history and State Machine Safety.
   */
  constructor(private readonly now: () => number, private readonly leaderOwnsUnsynced = false) {}

  /** A message a peer sent (decoded from its bytes): its acknowledgements bound what a leader may count. */
  noteSent(from: NodeId, m: Message): void {
    if (m.type !== 'MsgAppResp' || m.reject) return;
    const key = `${from}>${m.to}@${m.term}`;
    this.acked.set(key, Math.max(this.acked.get(key) ?? 0, m.index ?? 0));
  }

  get committedEntries(): number {
    return this.committed.size;
  }

  check(peers: readonly CheckedPeer[]): void {
    for (const p of peers) {
      const node = p.node;
      const raw = node && coreOf(node);
      if (!node || !raw) continue;
      if (node.failed) throw new DriverSimViolation('FailClosedWithoutCause', `${p.id} stopped: ${node.failed.message}`, this.now());
      const r = raw.raftForTest();
      const log = r.raftLog;
      // Under 'self-ack-on-append' a leader's commit index may run ahead of its own disk, and a power cut
      // then takes back a commit nobody was told of: only what is also on this peer's disk is committed.
      const seen = this.leaderOwnsUnsynced ? Math.min(log.committed, log.storage.lastIndex()) : log.committed;
      if (seen > p.checkedCommit) {
        const from = Math.max(p.checkedCommit + 1, log.firstIndex());
        const ents = from <= seen ? log.slice(from, seen + 1) : [];
        for (const e of ents) this.recordCommitted(p.id, e, r.term);
        p.checkedCommit = seen;
      }
      // Durable entries only: an entry a crash took before it reached the disk was never seen by anyone
      // (a leader re-elected in the same term after such a crash writes other entries there).
      const st = log.storage;
      this.logMatching(p, {
        committed: log.committed,
        firstIndex: () => st.firstIndex(),
        lastIndex: () => st.lastIndex(),
        termOr0: (i) => (i < st.firstIndex() - 1 || i > st.lastIndex() ? 0 : st.term(i)),
        slice: (lo, hi) => st.entries(lo, hi),
      });
      if (r.role === 'leader') {
        const holder = this.leaders.get(r.term);
        if (holder !== undefined && holder !== p.id) throw new DriverSimViolation('ElectionSafety', `${holder} and ${p.id} both leaders of term ${r.term}`, this.now());
        if (holder === undefined) {
          this.leaders.set(r.term, p.id);
          this.leaderTerms++;
        }
        this.progressIsTrue(p.id, r.term, log, raw, peers);
        const key = `${p.id}@${r.term}`;
        // From the first sight of this leader on: what it committed before was checked by its leaders then.
        const voters = [...r.trk.voters];
        const was = this.leaderCommit.get(key) ?? { commit: log.committed, voters };
        this.leaderCommit.set(key, { commit: log.committed, voters });
        // The commit may have been counted in the configuration of the last check: one conf change can
        // commit and apply within one task.
        if (log.committed > was.commit) this.commitOnQuorum(p.id, r.term, log.committed, log.termOr0(log.committed), [voters, was.voters], peers, log);
        if (!this.leaderSeen.has(key)) {
          this.leaderSeen.add(key);
          this.leaderCompleteness(p.id, r.term, log);
        }
      }
    }
  }

  /**
   * A voter's durable log at `index` (the MemoryStorage under its core, which the driver fills only
   * once a write is on disk): the term there, 'covered' when its snapshot is at or past the index,
   * 'missing' past its end; undefined for a voter that is not running (not knowable from its objects).
   */
  private durableAt(peers: readonly CheckedPeer[], id: NodeId, index: number): number | 'covered' | 'missing' | undefined {
    const node = peers.find((q) => q.id === id)?.node;
    const st = node && coreOf(node)?.raftForTest().raftLog.storage;
    if (!st) return undefined;
    if (index < st.firstIndex()) return 'covered';
    if (index > st.lastIndex()) return 'missing';
    return st.term(index);
  }

  private commitOnQuorum(id: NodeId, term: number, index: number, entryTerm: number, configs: readonly (readonly NodeId[])[], peers: readonly CheckedPeer[], log: { termOr0(i: number): number }): void {
    let why = '';
    for (const voters of configs) {
      const lacking: string[] = [];
      for (const v of voters) {
        const have = v === id && this.leaderOwnsUnsynced ? log.termOr0(index) : this.durableAt(peers, v, index);
        if (have !== undefined && have !== 'covered' && have !== entryTerm) lacking.push(`${v}:${have === 'missing' ? 'missing' : `term ${have}`}`);
      }
      // A quorum holds it unless more lack it than the voters a quorum can leave out.
      if (lacking.length <= voters.length - (Math.floor(voters.length / 2) + 1)) return;
      why += ` voters ${voters.join(',')}: ${lacking.join(', ')} lack it;`;
    }
    throw new DriverSimViolation('CommitOnQuorum', `${id} (term ${term}) committed index ${index} (term ${entryTerm}) without a quorum holding it on disk:${why}`, this.now());
  }

  private progressIsTrue(id: NodeId, term: number, log: { termOr0(i: number): number; lastIndex(): number }, raw: RawNode, peers: readonly CheckedPeer[]): void {
    const progress = raw.status().progress ?? {};
    for (const [fid, pr] of Object.entries(progress)) {
      if (fid === id || pr.match === 0) continue;
      // A leader's match for a peer comes from that peer's acknowledgements in this term (Raft §5.3;
      // etcd drops every message of a lower term): never above the highest one the peer sent it.
      const said = this.acked.get(`${fid}>${id}@${term}`) ?? 0;
      if (pr.match > said) throw new DriverSimViolation('LeaderProgress', `${id} (term ${term}) counts ${fid} as holding index ${pr.match}, but ${fid} acknowledged ${said === 0 ? 'nothing' : `at most index ${said}`} to it in term ${term}`, this.now());
      if (pr.match > log.lastIndex()) throw new DriverSimViolation('LeaderProgress', `${id} (term ${term}) counts ${fid} as holding index ${pr.match}, past its own last index ${log.lastIndex()}`, this.now());
      const f = peers.find((q) => q.id === fid)?.node;
      const fr = f && coreOf(f)?.raftForTest();
      if (!fr || fr.term !== term) continue;
      const want = log.termOr0(pr.match);
      const have = this.durableAt(peers, fid, pr.match);
      if (have === 'missing' || (typeof have === 'number' && want !== 0 && have !== 0 && want !== have)) {
        throw new DriverSimViolation('LeaderProgress', `${id} (term ${term}) counts ${fid} as holding index ${pr.match} (term ${want}), but ${fid}'s durable log has ${have === 'missing' ? `only ${fr.raftLog.storage.lastIndex()} entries` : `term ${have} there`}`, this.now());
      }
    }
  }

  private logMatching(p: CheckedPeer, log: { committed: number; firstIndex(): number; lastIndex(): number; termOr0(i: number): number; slice(lo: number, hi: number): Entry[] }): void {
    let from = p.checkedLog && log.termOr0(p.checkedLog.index) === p.checkedLog.term ? p.checkedLog.index + 1 : Math.min(p.checkedLog?.index ?? 0, log.committed) + 1;
    from = Math.max(from, log.firstIndex());
    const last = log.lastIndex();
    if (from <= last) {
      for (const e of log.slice(from, last + 1)) {
        const at = `${e.index}:${e.term}`;
        const k = entryKey(e);
        const was = this.seen.get(at);
        if (was === undefined) this.seen.set(at, k);
        else if (was !== k) throw new DriverSimViolation('LogMatching', `${p.id} holds another entry at index ${e.index} term ${e.term} than one seen before`, this.now());
      }
    }
    p.checkedLog = { index: last, term: log.termOr0(last) };
  }

  private recordCommitted(id: NodeId, e: Entry, term: number): void {
    const k = entryKey(e);
    const was = this.committed.get(e.index);
    if (was === undefined) this.committed.set(e.index, k);
    else if (was !== k) {
      throw new DriverSimViolation('StateMachineSafety', `${id} committed index ${e.index} as ${k.slice(0, 60)}, first committed as ${was.slice(0, 60)}`, this.now());
    }
    this.committedIn.set(e.index, Math.min(this.committedIn.get(e.index) ?? term, term));
  }

  /**
   * Raft §5.4: a leader of term T holds every entry committed in a term before T. (A leader of an older
   * term can still appear after a newer commit — its votes were on their way — and may lack it.)
   */
  private leaderCompleteness(id: NodeId, term: number, log: { firstIndex(): number; lastIndex(): number; slice(lo: number, hi: number): Entry[] }): void {
    let need = 0;
    for (const [index, at] of this.committedIn) if (at < term && index > need) need = index;
    if (need === 0) return;
    if (log.lastIndex() < need) {
      throw new DriverSimViolation('LeaderCompleteness', `${id} leads term ${term} with last index ${log.lastIndex()}, but index ${need} was committed before (an acknowledged entry lost)`, this.now());
    }
    const from = Math.max(1, log.firstIndex());
    if (from > need) return;
    for (const e of log.slice(from, need + 1)) {
      const want = this.committed.get(e.index);
      if (want !== undefined && want !== entryKey(e)) {
        throw new DriverSimViolation('LeaderCompleteness', `${id} leads term ${term} with another entry at committed index ${e.index}`, this.now());
      }
    }
  }
}
