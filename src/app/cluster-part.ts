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
}

export interface ClusterPart {
  membership(): ClusterMembership;
  status(): ClusterStatus;
  putUpstream(service: string, id: string, value: { url: string; weight: number; state: 'active' | 'draining' | 'disabled' }, clientId: string | undefined): Promise<{ index: number }>;
  deleteUpstream(service: string, id: string, clientId: string | undefined): Promise<{ index: number; existed: boolean }>;
  addPeer(id: string, address: string, role: 'voter' | 'learner'): Promise<{ index: number }>;
  removePeer(id: string): Promise<{ index: number }>;
  transferLeadership(to: string | undefined): Promise<{ leader: string | undefined }>;
  readIndex(): Promise<void>;
  stop(): Promise<void>;
}

export async function startClusterPart(
  _cfg: Config,
  _bus: EventBus,
  _log: Logger,
  _metrics: Metrics,
  _onMembership: () => void,
): Promise<ClusterPart> {
  throw new AdminError(500, 'MG_ERR_CLUSTER_UNAVAILABLE', 'cluster support is not built into this binary yet');
}

const noCluster = () => new AdminError(409, 'MG_ERR_ADMIN_NO_CLUSTER', 'membership and peer changes need a `cluster:` block; this peer takes its upstreams from the config file only');

/** Validates admin write bodies and forwards them to the cluster. */
export class MembershipWrites {
  constructor(private readonly cluster: ClusterPart | undefined, private readonly config: () => Config) {}

  async put(service: string, id: string, body: unknown, clientId: string | undefined): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (!(service in this.config().services)) throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_SERVICE', `unknown service "${service}"`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id)) throw badRequest('upstream id: letters, digits, ".", "_" or "-", at most 63 characters');
    const b = body as { url?: unknown; weight?: unknown; state?: unknown };
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('body must be a JSON object {url, weight?, state?}');
    const extra = Object.keys(b).filter((k) => !['url', 'weight', 'state'].includes(k));
    if (extra.length) throw badRequest(`unknown field(s): ${extra.join(', ')}`);
    if (typeof b.url !== 'string' || !isOriginUrl(b.url)) throw badRequest('url must be an origin such as http://10.0.0.5:8080');
    const weight = b.weight === undefined ? 1 : b.weight;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight <= 0 || weight > 10_000) throw badRequest('weight must be an integer in 1..10000');
    const state = b.state === undefined ? 'active' : b.state;
    if (state !== 'active' && state !== 'draining' && state !== 'disabled') throw badRequest('state must be active, draining or disabled');
    const r = await this.cluster.putUpstream(service, id, { url: b.url, weight, state }, clientId);
    return { service, id, url: b.url, weight, state, commitIndex: r.index };
  }

  async remove(service: string, id: string, clientId: string | undefined): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    if (!(service in this.config().services)) throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_SERVICE', `unknown service "${service}"`);
    const r = await this.cluster.deleteUpstream(service, id, clientId);
    if (!r.existed) throw new AdminError(404, 'MG_ERR_ADMIN_UNKNOWN_UPSTREAM', `upstream "${id}" is not registered in the cluster for "${service}"`);
    return { service, id, deleted: true, commitIndex: r.index };
  }

  async addPeer(body: unknown): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    const b = body as { id?: unknown; address?: unknown; role?: unknown };
    if (typeof b?.id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(b.id)) throw badRequest('id is required (letters, digits, ".", "_" or "-")');
    if (typeof b.address !== 'string' || !/^[^:\s]+:\d{1,5}$/.test(b.address)) throw badRequest('address must be host:port');
    const role = b.role ?? 'learner';
    if (role !== 'voter' && role !== 'learner') throw badRequest('role must be voter or learner');
    const r = await this.cluster.addPeer(b.id, b.address, role);
    return { id: b.id, address: b.address, role, commitIndex: r.index };
  }

  async removePeer(id: string): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    const r = await this.cluster.removePeer(id);
    return { id, removed: true, commitIndex: r.index };
  }

  async transferLeadership(body: unknown): Promise<unknown> {
    if (!this.cluster) throw noCluster();
    const to = (body as { to?: unknown })?.to;
    if (to !== undefined && typeof to !== 'string') throw badRequest('to must be a peer id');
    return this.cluster.transferLeadership(to);
  }

  async consistentRead(): Promise<void> {
    await this.cluster?.readIndex();
  }
}

function isOriginUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && (u.pathname === '/' || u.pathname === '') && !u.search && !u.username;
  } catch {
    return false;
  }
}
