/**
 * A three-peer meshgate cluster of real processes on loopback, for multi-process Raft tests.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from './meshgate.js';

export const SECRET = 'test-cluster-secret-0123456789';

export interface ClusterPeerSpec {
  id: string;
  dataPort: number;
  adminPort: number;
  raftPort: number;
  dir: string;
}

export interface RaftStatus {
  role: string;
  term: number;
  leader: string | undefined;
  commitIndex: number;
  appliedIndex: number;
  voters: string[];
  learners: string[];
  hasQuorum: boolean;
  transport: { droppedBadMac: number; handshakeFailures: number; delivered: number };
}

export class TestCluster {
  readonly specs: ClusterPeerSpec[] = [];
  readonly procs = new Map<string, PeerProcess>();

  constructor(private readonly serviceYaml: (spec: ClusterPeerSpec) => string, private readonly secret = SECRET) {}

  async allocate(ids: string[]): Promise<void> {
    const root = tempDir('meshgate-cluster-');
    for (const id of ids) {
      const dir = join(root, id);
      mkdirSync(dir, { recursive: true });
      this.specs.push({ id, dataPort: await freePort(), adminPort: await freePort(), raftPort: await freePort(), dir });
    }
  }

  spec(id: string): ClusterPeerSpec {
    return this.specs.find((s) => s.id === id)!;
  }

  configFor(spec: ClusterPeerSpec, bootstrapIds: string[], secret = this.secret): string {
    const boot = bootstrapIds.map((b) => `    - { id: ${b}, address: 127.0.0.1:${this.spec(b).raftPort} }`).join('\n');
    return `
node:
  id: ${spec.id}
  listen: 127.0.0.1:${spec.dataPort}
  admin: { listen: 127.0.0.1:${spec.adminPort}, token: admin-token }
  accessLog: false
  drainTimeout: 2s
cluster:
  listen: 127.0.0.1:${spec.raftPort}
  dataDir: ${join(spec.dir, 'data')}
  secret: ${secret}
  bootstrap:${bootstrapIds.length ? `\n${boot}` : ' []'}
${this.serviceYaml(spec)}`;
  }

  async start(id: string, bootstrapIds: string[], opts: { secret?: string; waitReady?: boolean } = {}): Promise<PeerProcess> {
    const spec = this.spec(id);
    const p = await startPeer(this.configFor(spec, bootstrapIds, opts.secret), { dir: spec.dir, dataPort: spec.dataPort, adminPort: spec.adminPort, waitReady: opts.waitReady });
    this.procs.set(id, p);
    return p;
  }

  async raft(id: string): Promise<RaftStatus | undefined> {
    const p = this.procs.get(id);
    if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return undefined;
    try {
      const r = await fetch(`${p.adminUrl}/api/v1/status`, { signal: AbortSignal.timeout(2000) });
      return ((await r.json()) as { raft: RaftStatus }).raft;
    } catch {
      return undefined;
    }
  }

  /** Waits until every live peer agrees on one leader (among the live ones); returns it. */
  async leader(timeoutMs = 15_000): Promise<string> {
    let found = '';
    await waitFor(async () => {
      const live = [...this.procs.keys()].filter((id) => this.isLive(id));
      const st = await Promise.all(live.map((id) => this.raft(id)));
      const leaders = st.filter((s) => s?.role === 'leader');
      if (leaders.length !== 1) return false;
      const lid = live[st.indexOf(leaders[0])]!;
      if (!st.every((s) => s?.leader === lid)) return false;
      found = lid;
      return true;
    }, timeoutMs, () => 'no agreed leader');
    return found;
  }

  isLive(id: string): boolean {
    const p = this.procs.get(id);
    return p !== undefined && p.proc.exitCode === null && p.proc.signalCode === null;
  }

  async kill(id: string): Promise<void> {
    await this.procs.get(id)?.stop('SIGKILL');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.stop('SIGKILL')));
  }

  /** An authenticated admin call; `timeoutMs` short in fault tests, so a paused peer is an unknown outcome, not a stall. */
  admin(id: string, path: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
    const p = this.procs.get(id)!;
    return fetch(`${p.adminUrl}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', authorization: 'Bearer admin-token', ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  }
}

/**
 * Starts every peer and waits for all of them, even when one fails: a bare Promise.all rejects at the
 * first failure while the others are still starting, and those land in `procs` after afterAll's
 * stopAll() ran — processes left behind. Rethrows the first failure once all have settled.
 */
export async function startAll(cluster: TestCluster, ids: string[]): Promise<void> {
  const results = await Promise.allSettled(ids.map((id) => cluster.start(id, ids)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The routing most cluster tests need: every path to service `api`, one static upstream at `url`. */
export function oneServiceYaml(url: string): string {
  return `
routes:
  - { match: { pathPrefix: / }, service: api }
services:
  api:
    upstreams:
      - { id: static, url: ${url} }
`;
}
