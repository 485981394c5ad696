/**
 * Micro-benchmark of the pure Raft core (src/cluster/raft): a 3-voter group in one process with
 * MemoryStorage and a synchronous in-memory network, driven through the RawNode Ready loop exactly as a
 * driver would (persist → send → apply → advance), without disk or sockets. It measures the CPU cost of
 * the consensus logic itself, the figure etcd reports as "3.7 µs/op single node, 5.9 µs/op 3 nodes"
 * (etcd-io/etcd PR #2598; raft.md §6).
 *
 * Figures: committed proposals per CPU-second one at a time (each proposal waits for its commit, so
 * every round trip is paid) and in batches of 64 (the group-commit shape), and RawNode.step calls per
 * CPU-second. Run standalone: `node dist/bench/micro/raft-step.js` (after `npm run build`).
 */
import { pathToFileURL } from 'node:url';
import { MemoryStorage, RawNode, type Message, type Ready } from '../../src/cluster/raft/index.js';
import { createSeededRandom } from '../../src/lib/rng.js';

interface Peer { node: RawNode; storage: MemoryStorage; applied: number }

/** 256-byte commands, the size raft.md §9 R-H uses. */
const PAYLOAD = new Uint8Array(256).fill(7);
const BATCH = 64;
const ROUND_MS = 400;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

class Cluster {
  readonly peers = new Map<string, Peer>();
  steps = 0;
  private queue: Message[] = [];

  constructor(ids: string[]) {
    for (const id of ids) {
      const storage = new MemoryStorage({ confState: { voters: ids, learners: [] } });
      const node = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(ids.indexOf(id) + 1) });
      this.peers.set(id, { node, storage, applied: 0 });
    }
    this.peers.get(ids[0]!)!.node.campaign();
    this.settle();
  }

  private handle(p: Peer, rd: Ready): void {
    if (rd.snapshot) p.storage.applySnapshot(rd.snapshot);
    p.storage.append(rd.entries);
    if (rd.hardState) p.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.queue.push(m);
    if (rd.committedEntries.length > 0) p.applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
    p.node.advance(rd);
  }

  settle(): void {
    for (;;) {
      for (const p of this.peers.values()) while (p.node.hasReady()) this.handle(p, p.node.ready());
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        this.steps++;
        this.peers.get(m.to)!.node.step(m);
      }
    }
  }

  leader(): Peer {
    for (const p of this.peers.values()) if (p.node.status().role === 'leader') return p;
    throw new Error('no leader');
  }
}

function measure(batch: number): { commitsPerSec: number; stepsPerSec: number } {
  const c = new Cluster(['a', 'b', 'c']);
  const lead = c.leader();
  let commits = 0;
  const t0 = cpuMs();
  let t = t0;
  while (t - t0 < ROUND_MS) {
    for (let i = 0; i < 200; i++) {
      for (let k = 0; k < batch; k++) lead.node.propose(PAYLOAD);
      c.settle();
      commits += batch;
    }
    t = cpuMs();
  }
  // Every proposal must really be committed and applied on all peers, or the figure is meaningless.
  for (const p of c.peers.values()) if (p.applied < commits) throw new Error(`peer applied ${p.applied} < ${commits}`);
  const s = (t - t0) / 1000;
  return { commitsPerSec: commits / s, stepsPerSec: c.steps / s };
}

export async function run(): Promise<{ name: string; value: number; unit: string }[]> {
  const rows: { name: string; value: number; unit: string }[] = [];
  for (const batch of [1, BATCH]) {
    let best = { commitsPerSec: 0, stepsPerSec: 0 };
    for (let r = 0; r < 3; r++) {
      const m = measure(batch);
      if (m.commitsPerSec > best.commitsPerSec) best = m;
    }
    rows.push({ name: `raft 3 voters in-memory, proposals in batches of ${batch}: commits`, value: Math.round(best.commitsPerSec), unit: 'commits/CPU-s' });
    rows.push({ name: `raft 3 voters in-memory, proposals in batches of ${batch}: steps`, value: Math.round(best.stepsPerSec), unit: 'steps/CPU-s' });
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await run()) console.log(`${r.name.padEnd(72)} ${String(r.value).padStart(10)} ${r.unit}`);
}
