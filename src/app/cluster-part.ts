/**
 * The cluster as the rest of the peer sees it: membership for routing, status for the admin API,
 * and membership writes. With no `cluster:` block, writes are refused with a clear error: membership
 * then comes from the file alone (DESIGN.md §2).
 */
import type { Config } from '../config/schema.js';
import type { ClusterMembership } from '../model/index.js';
import type { EventBus } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { AdminError, badRequest } from '../admin/errors.js';
import { RaftNode } from '../cluster/index.js';
import { checkPeerId, checkUpstreamFields, checkUpstreamId, parsePeerAddress } from '../model/validate/index.js';

export interface ClusterStatus {
  role: string;
  term: number;
  leader: string | undefined;
  commitIndex: number;
  appliedIndex: number;
  voters: string[];
  learners: string[];
  hasQuorum: boolean;
  peers?: unknown;
  /** Raft transport counters (TransportStats): frames and connections refused, by reason. */
  transport?: Readonly<Record<string, number>>;
}

export interface ClusterPart {
  membership(): ClusterMembership;
  status(): ClusterStatus;
  putUpstream(service: string, id: string, value: { url: string; weight: number; state: 'active' | 'draining' | 'disabled' }, clientSeq: string | undefined): Promise<{ index: number }>;
  deleteUpstream(service: string, id: string, clientSeq: string | undefined): Promise<{ index: number; existed: boolean }>;
  addPeer(id: string, address: string, role: 'voter' | 'learner'): Promise<{ index: number }>;
  removePeer(id: string): Promise<{ index: number }>;
  transferLeadership(to: string | undefined): Promise<{ leader: string | undefined }>;
  readIndex(): Promise<void>;
  /** This peer's routing includes everything applied so far (called once routing is first built). */
  routingCurrent(): void;
  /** Waits (bounded) until the other members route by entry `index`; see cluster/routed-reports.ts. */
  peersRouted(index: number): Promise<{ confirmed: string[]; unconfirmed: string[] }>;
  stop(): Promise<void>;
}

/**
 * How long an admin write waits for the other peers to confirm they route by it. A reachable peer
 * applies a committed entry within one append round trip and an fsync (milliseconds); this bounds the
 * wait when one is stalled (SIGSTOP, a disk that hangs). A peer not heard from for two election
 * timeouts is not waited for at all.
 */
const PEERS_ROUTED_TIMEOUT_MS = 2_000;

export async function startClusterPart(
  cfg: Config,
  bus: EventBus,
  log: Logger,
  metrics: Metrics,
  onMembership: () => void,
  /** Resolves once this peer's routing (every worker's too) includes every change applied so far. */
  routed: () => Promise<unknown>,
): Promise<ClusterPart> {
  const c = cfg.cluster!;
  const node = new RaftNode({
    id: cfg.node.id,
    listen: c.listen,
    dataDir: c.dataDir,
    secret: c.secret,
    bootstrap: c.bootstrap,
    events: bus,
    logger: log.child({ area: 'raft' }),
    tickMs: c.tickInterval,
    timings: {
      proposeSeconds: (s) => metrics.raftProposeDuration.observe(s),
      walAppendSeconds: (s) => metrics.raftWalAppendDuration.observe(s),
      entryRejected: (r) => metrics.raftEntriesRejected.labels(r.kind).inc(),
    },
  });
  await node.start();
  node.onMembershipChange((u) => {
    onMembership();
    // Reported to the other peers only once routed here, so "confirmed" means "routes by it".
    routed().then(
      () => node.reportRouted(u.index),
      (err: unknown) => log.warn({ err, index: u.index }, 'routing did not confirm a membership change; not reported to the other peers'),
    );
  });
  const seqOf = (clientSeq: string | undefined) => parseClientSeq(clientSeq);
  return {
    membership: () => node.membership(),
    status: () => {
      const s = node.status();
      return {
        configured: true,
        role: s.role,
        term: s.term,
        leader: s.leader,
        commitIndex: s.commitIndex,
        appliedIndex: s.appliedIndex,
        lastIndex: s.lastIndex,
        snapshotIndex: s.snapshotIndex,
        voters: [...s.voters],
        learners: [...s.learners],
        hasQuorum: s.hasQuorum,
        lastLeaderContactMs: s.lastLeaderContactMs,
        removed: s.removed,
        failed: s.failed,
        rejectedEntries: s.rejectedEntries,
        // Without quorum the routing snapshot keeps the last membership this peer applied.
        routingOn: s.hasQuorum ? 'current membership' : 'last known membership (no quorum)',
        peers: s.peers,
        transport: node.transportStats(),
      };
    },
    async putUpstream(service, id, value, clientSeq) {
      const r = await node.propose({ op: 'put-upstream', service, id, url: value.url, weight: value.weight, state: value.state, ...seqOf(clientSeq) });
      if (!r.result.ok) throw new AdminError(r.result.code === 'MG_ERR_MEMBERSHIP_INVALID' ? 400 : 409, r.result.code, r.result.message);
      return { index: r.index };
    },
    async deleteUpstream(service, id, clientSeq) {
      const r = await node.propose({ op: 'delete-upstream', service, id, ...seqOf(clientSeq) });
      if (!r.result.ok) {
        if (r.result.code === 'MG_ERR_MEMBERSHIP_NOT_FOUND') return { index: r.index, existed: false };
        throw new AdminError(409, r.result.code, r.result.message);
      }
      return { index: r.index, existed: true };
    },
    addPeer: (id, address, role) => node.addPeer(id, address, role),
    removePeer: (id) => node.removePeer(id),
    async transferLeadership(to) {
      return { leader: await node.transferLeadership(to) };
    },
    async readIndex() {
      await node.readIndex();
    },
    routingCurrent: () => node.reportRouted(node.status().appliedIndex),
    peersRouted: (index) => node.peersRouted(index, PEERS_ROUTED_TIMEOUT_MS),
    async stop() {
      await node.close({ transferLeadership: true });
    },
  };
}

/**
 * Retried admin writes apply once: a client sends `x-meshgate-client: <id>:<seq>` (seq rising per
 * client; the unparsed value is called `clientSeq` wherever it is passed on); the state machine remembers each client's last seq and answers a repeat with the first
 * result instead of applying it again.
 */
function parseClientSeq(header: string | undefined): { clientId?: string; seq?: number } {
  if (!header) return {};
  const m = /^([A-Za-z0-9._-]{1,64}):(\d{1,15})$/.exec(header);
  if (!m) throw badRequest('x-meshgate-client must be <client-id>:<sequence number>');
  return { clientId: m[1]!, seq: Number(m[2]) };
}

const noCluster = () => new AdminError(409, 'MG_ERR_ADMIN_NO_CLUSTER', 'membership and peer changes need a `cluster:` block; this peer takes its upstreams from the config file only');

/** Validates admin write bodies and forwards them to the cluster. */
export class MembershipWrites {
  constructor(
    private readonly cluster: ClusterPart | undefined,
    private readonly config: () => Config,
    /** Resolves once this peer's routing includes every change applied so far (read-your-write for the caller). */
    private readonly routed: () => Promise<unknown> = () => Promise.resolve(),
  ) {}

  private selfId(): string {
    return this.config().node.id;
  }

  async put(service: string, id: string, body: unknown, clientSeq: string | undefined): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (!Object.hasOwn(this.config().services, service)) throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_SERVICE', `unknown service "${service}"`);
    // The validators the config schema and the membership state machine use (model/validate).
    const idOk = checkUpstreamId(id);
    if (!idOk.ok) throw badRequest(idOk.message);
    const fields = checkUpstreamFields(body);
    if (!fields.ok) throw badRequest(fields.message);
    const { url, weight = 1, state = 'active' } = fields.value;
    const r = await this.cluster.putUpstream(service, id, { url, weight, state }, clientSeq);
    const peers = await this.everyPeerRoutes(r.index);
    return { service, id, url, weight, state, commitIndex: r.index, ...peers };
  }

  async remove(service: string, id: string, clientSeq: string | undefined): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (!Object.hasOwn(this.config().services, service)) throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_SERVICE', `unknown service "${service}"`);
    const idOk = checkUpstreamId(id);
    if (!idOk.ok) throw badRequest(idOk.message);
    const r = await this.cluster.deleteUpstream(service, id, clientSeq);
    if (!r.existed) {
      await this.routed();
      throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_UPSTREAM', `upstream "${id}" is not registered in the cluster for "${service}"`);
    }
    const peers = await this.everyPeerRoutes(r.index);
    return { service, id, deleted: true, commitIndex: r.index, ...peers };
  }

  /**
   * A write is answered once this peer routes by it, and every other peer has said it does too (or
   * could not say so in time: `unconfirmedPeers`, whose routing may still be the old one for a moment).
   */
  private async everyPeerRoutes(index: number): Promise<{ routedBy: string[]; unconfirmedPeers?: string[] }> {
    await this.routed();
    const { confirmed, unconfirmed } = await this.cluster!.peersRouted(index);
    const routedBy = [this.selfId(), ...confirmed].sort();
    return unconfirmed.length > 0 ? { routedBy, unconfirmedPeers: unconfirmed.sort() } : { routedBy };
  }

  async addPeer(body: unknown): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('body must be a JSON object {id, address, role?}');
    const b = body as { id?: unknown; address?: unknown; role?: unknown };
    const extra = Object.keys(b).filter((k) => !['id', 'address', 'role'].includes(k));
    if (extra.length) throw badRequest(`unknown field(s): ${extra.slice(0, 5).join(', ')}`);
    const id = checkPeerId(b.id);
    if (!id.ok) throw badRequest(id.message);
    const address = parsePeerAddress(b.address);
    if (!address.ok) throw badRequest(`address: ${address.message}`);
    const role = b.role ?? 'learner';
    if (role !== 'voter' && role !== 'learner') throw badRequest('role must be voter or learner');
    const r = await this.cluster.addPeer(id.value, b.address as string, role);
    return { id: id.value, address: b.address, role, commitIndex: r.index };
  }

  async removePeer(id: string): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    const idOk = checkPeerId(id);
    if (!idOk.ok) throw badRequest(idOk.message);
    const r = await this.cluster.removePeer(id);
    return { id, removed: true, commitIndex: r.index };
  }

  async transferLeadership(body: unknown): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('body must be a JSON object {to?}');
    const to = (body as { to?: unknown }).to;
    const extra = Object.keys(body).filter((k) => k !== 'to');
    if (extra.length) throw badRequest(`unknown field(s): ${extra.slice(0, 5).join(', ')}`);
    if (to === undefined) return this.cluster.transferLeadership(undefined);
    const peer = checkPeerId(to);
    if (!peer.ok) throw badRequest(`to: ${peer.message}`);
    return this.cluster.transferLeadership(peer.value);
  }

  /**
   * A linearizable read point: the ReadIndex is applied here, and the routing snapshot the answer is
   * read from has taken it in (the snapshot is rebuilt a turn after an apply, so without the second
   * wait a read could see the state machine's new value but the routing's old one).
   */
  async consistentRead(): Promise<void> {
    await this.cluster?.readIndex();
    await this.routed();
  }
}
