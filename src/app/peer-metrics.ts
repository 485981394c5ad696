/**
 * Wires the scrape-time sources of the peer's metrics: client connections and bytes, WebSockets,
 * health-check counts, the Raft transport's counters and leader changes. Kept out of peer.ts so the
 * composition root only calls it once the parts exist.
 */
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { EventBus } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import { trackConnections } from '../observability/connections.js';
import type { HealthMonitor } from '../health/index.js';
import type { RoutingSnapshot } from '../proxy/routing-snapshot.js';
import type { ClusterPart } from './cluster-part.js';

export function wirePeerMetrics(
  metrics: Metrics,
  parts: { bus: EventBus; dataServer: Server; tlsServer?: NetServer | undefined; websockets: () => number; routing: { readonly snapshot: RoutingSnapshot | undefined }; health: HealthMonitor; cluster: ClusterPart | undefined },
): void {
  metrics.downstreamSource = trackConnections(parts.tlsServer ? [parts.dataServer, parts.tlsServer] : [parts.dataServer]);
  metrics.websocketSource = parts.websockets;
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
