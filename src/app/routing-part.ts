/**
 * The routing of one process, as the single-process peer and each worker (node.workers > 1) build it:
 * the RoutingRefresh, the upstream pools its snapshots hold and the thread that builds its big tables;
 * rebuild failures logged and never thrown, the in-flight gauges read from the current snapshot, the
 * start build made inline, and one close. One builder, so a worker routes exactly as a single-process
 * peer does; only where the inputs of a build come from differs.
 */
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { OFF_THREAD_MIN_COST, RoutingRefresh, type RefreshSources, type RoutingRefreshOptions } from '../proxy/routing-refresh.js';
import { ThreadTableBuilder } from '../proxy/table-builds.js';
import { UpstreamPools } from '../proxy/upstream-pools.js';
import { wireInFlight } from './peer-metrics.js';
import type { StickyPart } from './sticky-part.js';

export interface RoutingPartDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly sticky: StickyPart;
}

export interface RoutingPart {
  readonly refresh: RoutingRefresh;
  /**
   * The first snapshot, built inline before anything listens (a failure fails the start). Not done by
   * createRoutingPart: the caller's onApplied may read the refresh, so the caller holds it first.
   */
  start(): void;
  /** Stops rebuilding, ends the table thread, closes the pools (`forced`: requests still in them are cut). */
  close(forced: boolean): Promise<void>;
}

/** `sources`: the peer's own config, Raft and health; a worker's, what the primary sent it. */
export function createRoutingPart(d: RoutingPartDeps, sources: Omit<RefreshSources, 'sticky'>, onApplied: RoutingRefreshOptions['onApplied']): RoutingPart {
  const pools = new UpstreamPools();
  // Big ring-hash / Maglev tables are built on this thread, not the event loop (issue 14).
  const tables = new ThreadTableBuilder();
  const refresh = new RoutingRefresh({
    pools,
    metrics: d.metrics,
    tables: { builder: tables, minCost: OFF_THREAD_MIN_COST },
    sources: { ...sources, sticky: (service, svc) => d.sticky.viewFor(service, svc) },
    onApplied,
    // Never thrown back into the Raft apply path or a health callback (issue 13): the last snapshot keeps serving.
    onFailed: (err) => d.log.error({ err }, 'routing rebuild failed; the previous routing snapshot keeps serving'),
  });
  wireInFlight(d.metrics, refresh);
  return {
    refresh,
    start() {
      refresh.request({ kind: 'start' });
      const first = refresh.flushNow();
      if (!first.ok) throw first.error;
    },
    async close(forced) {
      refresh.close();
      await tables.close();
      await pools.closeAll(forced);
    },
  };
}
