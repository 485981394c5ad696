/**
 * The status document of /api/v1/status and the dashboard (DESIGN.md §4): peer id, version, uptime,
 * config generation and last reload, raft, sticky, and per service each upstream's source, state,
 * health, in-flight, counters, latency and ring share.
 */
import type { HealthMonitor } from '../health/index.js';
import type { Metrics } from '../observability/metrics.js';
import type { RoutingSnapshot } from '../proxy/routing-snapshot.js';
import type { ReloadOutcome } from './peer.js';
import type { StickyPart } from './sticky-part.js';
import type { WorkerFleet } from './worker-fleet.js';
import { VERSION } from './version.js';

/** What the status document reads: a narrow view of the peer, not its internals. */
export interface StatusSources {
  readonly nodeId: string;
  readonly startedAt: number;
  readonly generation: number;
  readonly lastReload: ReloadOutcome | undefined;
  readonly snapshot: RoutingSnapshot | undefined;
  readonly health: Pick<HealthMonitor, 'upstreamHealth'>;
  readonly metrics: Pick<Metrics, 'serviceTraffic'>;
  readonly dataPlane: { serving: boolean; inFlight: number; websockets: number };
  readonly eventClients: number;
  readonly raft: unknown;
  readonly sticky: Pick<StickyPart, 'status'> | undefined;
  /** The data-plane workers (`node.workers > 1`). */
  readonly fleet: Pick<WorkerFleet, 'upstreamTotals' | 'serviceTraffic' | 'stickyServices' | 'views'> | undefined;
}

export function buildStatus(peer: StatusSources) {
  const { health, snapshot } = peer;
  // With workers the counters live in them: their last heartbeat's figures, summed (≤ 1 s old).
  const fleet = peer.fleet;
  const totals = fleet?.upstreamTotals();
  const services: Record<string, unknown> = {};
  for (const [name, svc] of snapshot?.services ?? []) {
    const shares = svc.balancer.shares?.();
    services[name] = {
      balancer: svc.cfg.balancer,
      hashOn: svc.cfg.hashOn,
      sticky: svc.cfg.sticky ? { cookie: svc.cfg.sticky.cookie, header: svc.cfg.sticky.header } : undefined,
      panic: svc.panic,
      traffic: fleet ? fleet.serviceTraffic(name, peer.metrics.serviceTraffic(name)) : peer.metrics.serviceTraffic(name),
      upstreams: [...svc.upstreams.values()].map((rt) => {
        const h = health.upstreamHealth(name, rt.spec.id);
        const t = totals?.get(`${name}\u0000${rt.spec.id}`);
        const lat = totals ? (t?.p50 !== undefined && t.p99 !== undefined ? { p50: t.p50, p99: t.p99 } : undefined) : rt.latencyPercentiles();
        return {
          id: rt.spec.id,
          url: rt.spec.url,
          weight: rt.spec.weight,
          source: rt.spec.source,
          state: rt.spec.state,
          health: h?.health ?? 'unknown',
          ejected: h?.ejected ?? false,
          ejectedUntil: h?.ejectedUntilMs ? new Date(h.ejectedUntilMs).toISOString() : undefined,
          timesEjected: h?.timesEjected ?? 0,
          lastCheck: h?.lastCheck,
          healthSince: h?.healthSinceMs === undefined ? undefined : new Date(h.healthSinceMs).toISOString(),
          responses5xx: totals ? t?.responses5xx ?? 0 : rt.series.responses5xx,
          eligible: svc.pickable.some((p) => p.id === rt.spec.id),
          inFlight: totals ? t?.inFlight ?? 0 : rt.inFlight,
          requests: totals ? t?.requests ?? 0 : rt.requests,
          failures: totals ? t?.failures ?? 0 : rt.failures,
          latencyMs: lat ? { p50: round(lat.p50), p99: round(lat.p99) } : undefined,
          ringShare: shares?.get(rt.spec.id),
        };
      }),
    };
  }
  const dp = peer.dataPlane;
  return {
    id: peer.nodeId,
    version: VERSION,
    uptimeSeconds: Math.round((Date.now() - peer.startedAt) / 1000),
    generation: peer.generation,
    lastReload: peer.lastReload,
    serving: dp.serving,
    inFlight: dp.inFlight,
    websockets: dp.websockets,
    ...(fleet ? { workers: fleet.views() } : {}),
    eventClients: peer.eventClients,
    raft: peer.raft,
    sticky: stickyStatus(peer),
    services,
  };
}

/** With workers the resolvers that count live in them: their stats, merged, under the primary's store view. */
function stickyStatus(peer: StatusSources): unknown {
  if (!peer.sticky) return { configured: false };
  const own = peer.sticky.status() as { configured: boolean; services?: Record<string, unknown> };
  if (!peer.fleet || !own.configured) return own;
  return { ...own, services: peer.fleet.stickyServices() };
}

export function serviceUpstreams(peer: StatusSources, service: string) {
  const status = buildStatus(peer) as { services: Record<string, unknown> };
  return status.services[service];
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
