/**
 * Cluster identity: the cluster id every frame's handshake carries, the record of which peer ids this
 * data dir has accepted connections from, and the first-boot rule that keeps a wiped data dir from
 * re-bootstrapping as a voter with term 0 and no vote (raft.md R-F6). Rules (docs/architecture.md,
 * "Cluster identity"):
 *
 * - Cluster id = first 16 bytes of SHA-256("meshgate-cluster-id-v1" | sorted "id=address" of
 *   cluster.bootstrap). Every bootstrap peer derives the same one without talking to the others; two
 *   clusters share it only if their bootstrap lists name the same ids at the same addresses. A peer that
 *   is not in cluster.bootstrap (a joiner) adopts the id the first authenticated dialer presents (the
 *   leader, which dials it to replicate) and makes it durable before it accepts any frame.
 * - `heard`: ids this data dir accepted an authenticated HELLO from, made durable before the first frame
 *   of that id is delivered. A vote or an ack is delivered only after this, so every peer that ever
 *   counted a peer's vote or ack remembers that the peer existed. Removing a peer forgets it (so it can be
 *   re-added under the same id after its data is gone).
 * - First boot (empty Raft storage): probe every other peer of cluster.bootstrap (decideFirstBoot).
 *
 * Stored in `<dataDir>/cluster.json`, written through storage.ts as temp file → fsync → rename → fsync dir.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CLUSTER_ID_BYTES, type ProbeReply } from './handshake.js';
import type { NodeId } from './raft/types.js';
import { nodeFs, readDataDirFile, writeDataDirFile } from './storage.js';
import type { StorageFs } from './storage-fs.js';

export const IDENTITY_FILE = 'cluster.json';
const IDENTITY_FORMAT = 1;

export interface PeerAddressEntry {
  readonly id: NodeId;
  readonly address: string;
}

export function deriveClusterId(bootstrap: readonly PeerAddressEntry[]): Buffer {
  const h = createHash('sha256').update('meshgate-cluster-id-v1\n');
  for (const line of bootstrap.map((p) => `${p.id}=${p.address}`).sort()) h.update(`${line}\n`);
  return h.digest().subarray(0, CLUSTER_ID_BYTES);
}

export class IdentityError extends Error {
  readonly code = 'MG_ERR_RAFT_IDENTITY';
}

/** The durable identity of one data dir. All writes are serialized; a failed write fails later ones too. */
export class ClusterIdentity {
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  private constructor(
    private readonly dir: string,
    private cid: Buffer | undefined,
    private readonly heard: Set<NodeId>,
    private readonly fs: StorageFs,
  ) {}

  /** `fs`: the data dir's filesystem (the driver simulator passes its simulated disk). */
  static async open(dataDir: string, fs: StorageFs = nodeFs): Promise<ClusterIdentity> {
    const dir = path.resolve(dataDir);
    const text = await readDataDirFile(path.join(dir, IDENTITY_FILE), fs);
    if (text === undefined) return new ClusterIdentity(dir, undefined, new Set(), fs);
    let doc: { format?: unknown; clusterId?: unknown; heard?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (err) {
      throw new IdentityError(`${path.join(dir, IDENTITY_FILE)} is unreadable: ${(err as Error).message}`);
    }
    const ok =
      doc.format === IDENTITY_FORMAT &&
      (doc.clusterId === null || (typeof doc.clusterId === 'string' && /^[0-9a-f]{32}$/.test(doc.clusterId))) &&
      Array.isArray(doc.heard) &&
      doc.heard.every((h) => typeof h === 'string');
    if (!ok) throw new IdentityError(`${path.join(dir, IDENTITY_FILE)} is not a format-${IDENTITY_FORMAT} identity file`);
    return new ClusterIdentity(dir, doc.clusterId === null ? undefined : Buffer.from(doc.clusterId as string, 'hex'), new Set(doc.heard as string[]), fs);
  }

  get clusterId(): Buffer | undefined {
    return this.cid;
  }

  get clusterIdHex(): string | undefined {
    return this.cid?.toString('hex');
  }

  hasHeard(id: NodeId): boolean {
    return this.heard.has(id);
  }

  /** Sets the cluster id (bootstrap or adoption); resolves once durable. */
  setClusterId(cid: Buffer): Promise<void> {
    if (this.cid && !this.cid.equals(cid)) return Promise.reject(new IdentityError(`cluster id is ${this.cid.toString('hex')}, refusing to change it to ${cid.toString('hex')}`));
    this.cid = Buffer.from(cid);
    return this.save();
  }

  /** Records that `id` authenticated to us; resolves once durable (immediately if already known). */
  recordHeard(id: NodeId): Promise<void> {
    if (this.heard.has(id)) return this.failure ? Promise.reject(this.failure) : Promise.resolve();
    this.heard.add(id);
    return this.save();
  }

  /** A removed peer is forgotten, so it can be added back under its id once its data is gone. */
  forget(id: NodeId): Promise<void> {
    if (!this.heard.delete(id)) return Promise.resolve();
    return this.save();
  }

  private save(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failure) throw this.failure;
      const doc = { format: IDENTITY_FORMAT, clusterId: this.cid?.toString('hex') ?? null, heard: [...this.heard].sort() };
      try {
        await writeDataDirFile(this.dir, IDENTITY_FILE, `${JSON.stringify(doc)}\n`, this.fs);
      } catch (err) {
        this.failure = err as Error;
        throw err;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

// ---------------------------------------------------------------------------------------------------
// First boot

export type ProbeAnswer = ProbeReply | 'unreachable';

export type FirstBootDecision =
  | { readonly action: 'start' }
  | { readonly action: 'wait'; readonly missing: readonly NodeId[]; readonly why: string }
  | { readonly action: 'refuse'; readonly reason: string };

/**
 * The first-boot rule, for a peer whose Raft storage is empty, from the answers of the other peers of
 * cluster.bootstrap:
 * 1. a peer whose cluster id differs from the one our cluster.bootstrap derives → refuse (another cluster,
 *    or bootstrap lists that differ between peers);
 * 2. a peer that accepted a connection from our id before → refuse: our data dir was wiped (a vote or an
 *    acknowledged entry of ours may be counted there), so we may come back only as a new member;
 * 3. some peer is at term > 0 (the cluster exists) and another did not answer → wait: the silent one may
 *    be the only one that counted our lost vote;
 * 4. otherwise start (bootstrap if we are listed, else wait to be added). All peers starting fresh
 *    together all answer term 0 and nobody has heard from anybody, so they all bootstrap.
 */
export function decideFirstBoot(self: NodeId, derived: Buffer | undefined, answers: ReadonlyMap<NodeId, ProbeAnswer>): FirstBootDecision {
  const missing: NodeId[] = [];
  let existing: { id: NodeId; term: number } | undefined;
  // Another cluster first: its "heard from you" would be about another peer that had our id.
  for (const [id, a] of answers) {
    if (a === 'unreachable' || !derived || !a.clusterId || a.clusterId.equals(derived)) continue;
    return {
      action: 'refuse',
      reason:
        `peer ${id} belongs to cluster ${a.clusterId.toString('hex')}, but this peer's cluster.bootstrap derives ${derived.toString('hex')}: ` +
        `cluster.bootstrap must list the same ids and addresses on every bootstrap peer (or that address belongs to another cluster)`,
    };
  }
  for (const [id, a] of answers) {
    if (a === 'unreachable') {
      missing.push(id);
      continue;
    }
    if (a.heardFromYou) {
      return {
        action: 'refuse',
        reason:
          `cluster.dataDir is empty, but peer ${id} (term ${a.term}) has accepted connections from ${self} before: this peer's Raft state was lost, ` +
          `and coming back as the same voter could count a lost vote or acknowledgement twice. Re-add it as a new member: ` +
          `on the leader, DELETE /api/v1/cluster/peers/${self}, then POST /api/v1/cluster/peers {"id":"${self}","address":…,"role":"learner"} ` +
          `(promote it to voter once it caught up); start it with ${self} not listed in its cluster.bootstrap (list the other peers, for their addresses).`,
      };
    }
    if (a.term > 0 && (!existing || a.term > existing.term)) existing = { id, term: a.term };
  }
  if (existing && missing.length > 0) {
    return { action: 'wait', missing, why: `the cluster exists (peer ${existing.id} is at term ${existing.term}) and ${missing.join(', ')} did not answer: it may hold a vote of ours` };
  }
  return { action: 'start' };
}
