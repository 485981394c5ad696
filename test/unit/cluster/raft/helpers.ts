/**
 * Test fixtures for the Raft core's unit and scenario tests, in the style of etcd-io/raft's
 * raft_test.go `network` helper: in-process nodes, a synchronous message pump, and link controls
 * (drop, cut, isolate, ignore a message type). Deterministic: every node draws its election timeout
 * from a seeded PRNG.
 *
 * `persist` plays the driver: it writes each Ready's snapshot, entries and hard state to the node's
 * MemoryStorage before its messages are delivered, applies committed entries (recording them and
 * applying conf changes), then advances — the order documented in raw-node.ts.
 */
import { createSeededRandom } from '../../../../src/lib/rng.js';
import { resolveConfig, type RaftConfig } from '../../../../src/cluster/raft/config.js';
import { MemoryStorage } from '../../../../src/cluster/raft/memory-storage.js';
import { decodeConfChange, Raft } from '../../../../src/cluster/raft/raft.js';
import { RawNode } from '../../../../src/cluster/raft/raw-node.js';
import type { ConfState, Entry, Message, MessageType, NodeId } from '../../../../src/cluster/raft/types.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: enc(data) };
}

export function storageWith(voters: NodeId[], learners: NodeId[] = [], entries: Entry[] = [], term = 0): MemoryStorage {
  const s = new MemoryStorage({ confState: { voters, learners } });
  s.append(entries);
  if (term > 0) s.setHardState({ term, vote: '', commit: 0 });
  return s;
}

export type TestOpts = Partial<Omit<RaftConfig, 'id' | 'storage'>> & { seed?: number };

/** A bare Raft state machine (as etcd's newTestRaft) for init/step/check paper tests. */
export function newTestRaft(id: NodeId, voters: NodeId[], election = 10, heartbeat = 1, storage?: MemoryStorage, opts: TestOpts = {}): Raft {
  const { seed, ...rest } = opts;
  return new Raft(resolveConfig({
    id,
    storage: storage ?? storageWith(voters),
    electionTick: election,
    heartbeatTick: heartbeat,
    rand: createSeededRandom(seed ?? hashId(id)),
    preVote: false,
    checkQuorum: false,
    ...rest,
  }));
}

function hashId(id: string): number {
  let h = 7;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

/** Takes and clears the outgoing messages of r. */
export function readMessages(r: Raft): Message[] {
  const m = r.msgs;
  r.msgs = [];
  return m;
}

/** Moves the unstable log of r into its storage and reports it durable (what a driver does after fsync + advance). */
export function persistRaft(r: Raft, storage: MemoryStorage): void {
  const ents = r.raftLog.unstableEntries();
  const snap = r.raftLog.unstable.snapshot;
  if (snap) {
    storage.applySnapshot(snap);
    r.raftLog.stableSnapTo(snap.metadata.index);
  }
  if (ents.length > 0) {
    storage.append(ents);
    const last = ents[ents.length - 1]!;
    r.raftLog.stableTo(last.index, last.term);
    r.onEntriesStable(last.index, last.term);
  }
}

export function tickN(r: Raft, n: number): void {
  for (let i = 0; i < n; i++) r.tick();
}

export function msg(type: MessageType, from: NodeId, to: NodeId, term: number, rest: Partial<Message> = {}): Message {
  return { type, from, to, term, ...rest };
}

// ------------------------------------------------------------------ multi-node network of RawNodes

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  confState: ConfState;
  readStates: { index: number; context: string }[];
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Links (from→to) that drop every message. */
  private readonly cut = new Set<string>();
  private readonly ignored = new Set<MessageType>();
  /** Every message delivered, in order (for assertions on traffic). */
  readonly trace: Message[] = [];
  private queue: Message[] = [];

  constructor(voters: NodeId[], readonly opts: TestOpts = {}, learners: NodeId[] = []) {
    for (const id of [...voters, ...learners]) this.add(id, storageWith(voters, learners));
  }

  add(id: NodeId, storage: MemoryStorage): TestNode {
    const { seed, ...rest } = this.opts;
    const node = new RawNode({
      id,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      rand: createSeededRandom((seed ?? 1) * 1000 + hashId(id)),
      preVote: false,
      checkQuorum: false,
      ...rest,
    });
    const tn: TestNode = { id, node, storage, applied: [], confState: storage.initialState().confState, readStates: [] };
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.get(id).node.raftForTest();
  }

  /** Handles every node's Ready (persist → queue messages → apply → advance). */
  processReady(): boolean {
    let any = false;
    for (const tn of this.nodes.values()) {
      while (tn.node.hasReady()) {
        any = true;
        const rd = tn.node.ready();
        if (rd.snapshot) {
          tn.storage.applySnapshot(rd.snapshot);
          tn.confState = rd.snapshot.metadata.confState;
        }
        tn.storage.append(rd.entries);
        if (rd.hardState) tn.storage.setHardState(rd.hardState);
        this.queue.push(...rd.messages);
        for (const e of rd.committedEntries) {
          tn.applied.push(e);
          if (e.type === 'conf-change') tn.confState = tn.node.applyConfChange(decodeConfChange(e.data));
        }
        tn.readStates.push(...rd.readStates);
        tn.node.advance(rd);
      }
    }
    return any;
  }

  /** Delivers messages until the network is quiet. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      this.processReady();
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliver(m);
    }
    throw new Error('network did not stabilize');
  }

  private deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`) || this.ignored.has(m.type)) return;
    const tn = this.nodes.get(m.to);
    if (!tn) return;
    this.trace.push(m);
    try {
      tn.node.step(m);
    } catch (e) {
      if ((e as { code?: string }).code === 'MG_ERR_RAFT_STEP_PEER_NOT_FOUND') return;
      throw e;
    }
  }

  send(...ms: Message[]): void {
    this.queue.push(...ms);
    this.stabilize();
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.get(id).node.propose(enc(data));
    this.stabilize();
  }

  /** Ticks every node once (or only `ids`) and stabilizes. */
  tick(n = 1, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const tn of this.nodes.values()) if (!ids || ids.includes(tn.id)) tn.node.tick();
      this.stabilize();
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}->${b}`);
    this.cut.add(`${b}->${a}`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.cut.clear();
    this.ignored.clear();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.node.status().role === 'leader').map((n) => n.id);
  }

  appliedData(id: NodeId): string[] {
    return this.get(id).applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => dec(e.data));
  }
}
