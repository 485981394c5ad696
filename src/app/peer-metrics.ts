/**
 * Wires the scrape-time sources of the peer's control-plane metrics: health-check counts, the Raft
 * transport's counters and leader changes (the data plane's are wired by data-part.ts, in every
 * process that serves it). Kept out of peer.ts so the
 * composition root only calls it once the parts exist.
 */
import type { EventBus } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import type { HealthMonitor } from '../health/index.js';
import type { RoutingSnapshot } from '../proxy/routing-snapshot.js';
import type { ClusterPart } from './cluster-part.js';

/** The scrape-time sources of the control plane: health-check counts, the Raft transport, leader changes. */
export function wireControlMetrics(
  metrics: Metrics,
  parts: { bus: EventBus; routing: { readonly snapshot: RoutingSnapshot | undefined }; health: HealthMonitor; cluster: ClusterPart | undefined },
): void {
  metrics.healthCheckSource = (add) => {
    for (const [name, svc] of parts.routing.snapshot?.services ?? []) {
      if (!svc.cfg.healthCheck) continue;
      for (const id of svc.upstreams.keys()) {
        const h = parts.health.upstreamHealth(name, id);
        if (h) add(name, id, h.checksPassed, h.checksFailed);
      }
    }
  };
  const cluster = parts.cluster;
  if (cluster) {
    metrics.enableCluster();
    metrics.raftTransportSource = () => (cluster.status() as unknown as { transport: Record<string, number> }).transport;
    let leader: string | undefined = cluster.status().leader;
    parts.bus.subscribe((ev) => {
      if (ev.type !== 'raft:leader') return;
      const next = (ev.data as { leader: string | undefined }).leader;
      if (next !== leader) metrics.raftLeaderChanges.inc();
      leader = next;
    });
  }
}

/** service → upstream ids of a routing snapshot (for Metrics.retainUpstreams). */
export function routedUpstreams(snapshot: RoutingSnapshot): Map<string, Iterable<string>> {
  const live = new Map<string, Iterable<string>>();
  for (const [name, svc] of snapshot.services) live.set(name, svc.upstreams.keys());
  return live;
}

/** Upstream in-flight gauges read from the current snapshot's runtimes at scrape time. */
export function wireInFlight(metrics: Metrics, routing: { readonly snapshot: RoutingSnapshot | undefined }): void {
  metrics.inFlightSource = (set) => {
    for (const [name, svc] of routing.snapshot?.services ?? []) for (const [id, rt] of svc.upstreams) set(name, id, rt.inFlight);
  };
}

/**
 * After a swap whose batch changed more than health: the metrics series and sticky resolvers follow
 * the routed upstream set (series of gone upstreams removed, resolvers of no-longer-sticky services closed).
 */
export function followUpstreamSet(metrics: Metrics, sticky: { retain(services: ReadonlySet<string>): void }, snapshot: RoutingSnapshot): void {
  metrics.retainUpstreams(routedUpstreams(snapshot));
  sticky.retain(new Set([...snapshot.services.values()].filter((s) => s.sticky !== undefined).map((s) => s.name)));
}
