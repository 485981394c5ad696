/**
 * The routing state the data path reads: routes → services → live upstream set → balancer.
 *
 * Invariants:
 * - A RoutingTable is built whole (from a validated config and the cluster membership) and then
 *   swapped in with one assignment; a request reads `router.table` once and uses that table to the end,
 *   so in-flight requests finish on the routing they started with.
 * - A service's balancer is rebuilt off the hot path (on a health or membership change) and swapped in
 *   with one assignment; a pick never sees a half-built ring or table.
 * - Upstream runtimes (stats, pools) survive a rebuild when (service, id, url) is unchanged.
 */
import { createBalancer } from '../balance/index.js';
import type { Balancer, PickCandidate, UpstreamLoad } from '../balance/balancer.js';
import type { ClusterMembership, ServiceName, UpstreamId, UpstreamSpec } from '../model/index.js';
import type { Config, ServiceConfig } from '../config/schema.js';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';
import type { Metrics } from '../observability/metrics.js';
import { RouteTable } from './route-table.js';
import { UpstreamPools } from './upstream-pools.js';
import { UpstreamRuntime } from './upstream-runtime.js';
import { serverNameFor } from './upstream-tls.js';

/** What the passive health check learns from one call (health/outlier-detector's CallResult). */
export type CallResult =
  | { kind: 'success' }
  | { kind: '5xx'; status: number }
  | { kind: 'local-origin'; cause: 'connect-failure' | 'reset' | 'timeout' };

export interface Eligibility {
  readonly pickable: readonly UpstreamSpec[];
  usable(id: string): boolean;
  readonly panic: boolean;
}

/** The health module as the data path sees it (health/HealthMonitor satisfies it). */
export interface HealthView {
  eligibility(service: string): Eligibility | undefined;
  recordResult(service: string, upstream: string, result: CallResult): void;
}

export class ServiceRoute {
  balancer: Balancer;
  panic = false;
  usable: (id: string) => boolean;
  readonly load: (id: UpstreamId) => UpstreamLoad | undefined;
  readonly hashOn: HashSource | undefined;

  constructor(
    readonly name: ServiceName,
    readonly cfg: ServiceConfig,
    readonly members: readonly UpstreamSpec[],
    readonly upstreams: ReadonlyMap<UpstreamId, UpstreamRuntime>,
    health: HealthView | undefined,
    nowMs: number,
    /** The route this one replaces: an upstream pickable now but not there starts its slow start. */
    previous?: ServiceRoute,
  ) {
    this.load = (id) => this.upstreams.get(id);
    this.hashOn = cfg.hashOn ? parseHashOn(cfg.hashOn) : undefined;
    if (previous) this.wasPickable = previous.wasPickable;
    const { balancer, usable } = this.build(health, nowMs, previous?.balancer);
    this.balancer = balancer;
    this.usable = usable;
  }

  /** Rebuilds the balancer from current eligibility and swaps it in (off the hot path). */
  rebuild(health: HealthView | undefined, nowMs: number): void {
    const { balancer, usable } = this.build(health, nowMs, this.balancer);
    this.balancer = balancer;
    this.usable = usable;
  }

  private build(health: HealthView | undefined, nowMs: number, previous: Balancer | undefined): { balancer: Balancer; usable: (id: string) => boolean } {
    const elig = health?.eligibility(this.name);
    const pickable = elig ? elig.pickable : this.members.filter((m) => m.state === 'active');
    this.panic = elig?.panic ?? false;
    const candidates: PickCandidate[] = [];
    for (const spec of pickable) {
      const rt = this.upstreams.get(spec.id);
      if (!rt) continue;
      // Slow start counts from when an upstream becomes pickable again (new, or recovered).
      if (previous !== undefined && !this.wasPickable.has(spec.id)) rt.eligibleSinceMs = nowMs;
      candidates.push(rt.eligibleSinceMs === undefined ? { id: spec.id, weight: spec.weight } : { id: spec.id, weight: spec.weight, eligibleSinceMs: rt.eligibleSinceMs });
    }
    this.wasPickable = new Set(candidates.map((c) => c.id));
    const usable = elig ? (id: string) => elig.usable(id) : (id: string) => {
      const m = this.upstreams.get(id);
      return m !== undefined && m.spec.state !== 'disabled';
    };
    const balancer = createBalancer(this.cfg.balancer, { candidates }, {
      boundedLoad: this.cfg.boundedLoad,
      minRingSize: this.cfg.ringSize,
      tableSize: this.cfg.maglevTableSize,
      activeRequestBias: this.cfg.activeRequestBias,
      peakEwma: this.cfg.peakEwma,
      slowStartMs: this.cfg.slowStart,
    });
    return { balancer, usable };
  }

  private wasPickable = new Set<string>();
}

export type HashSource =
  | { kind: 'header'; name: string }
  | { kind: 'cookie'; name: string }
  | { kind: 'query'; name: string }
  | { kind: 'path' }
  | { kind: 'client-ip' };

function parseHashOn(s: string): HashSource {
  if (s === 'path') return { kind: 'path' };
  if (s === 'client-ip') return { kind: 'client-ip' };
  const colon = s.indexOf(':');
  const kind = s.slice(0, colon) as 'header' | 'cookie' | 'query';
  const name = s.slice(colon + 1);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

export class RoutingTable {
  constructor(
    readonly generation: number,
    readonly routes: RouteTable,
    readonly services: ReadonlyMap<ServiceName, ServiceRoute>,
    readonly config: Config,
  ) {}
}

/** Live members of a service: static upstreams ∪ cluster entries; a cluster entry overrides the same id. */
export function liveMembers(svcName: string, svc: ServiceConfig, cluster: ClusterMembership | undefined): UpstreamSpec[] {
  const byId = new Map<string, UpstreamSpec>();
  for (const u of svc.upstreams) byId.set(u.id, { id: u.id, url: u.url, weight: u.weight, state: u.state, source: 'file' });
  const reg = cluster?.get(svcName);
  if (reg) for (const [id, u] of reg) byId.set(id, { id, url: u.url, weight: u.weight, state: u.state, source: 'cluster' });
  return [...byId.values()];
}

/**
 * Holds the current RoutingTable and the long-lived pieces under it (pools, upstream runtimes).
 */
export class Router {
  table: RoutingTable | undefined;
  private readonly runtimes = new Map<string, UpstreamRuntime>();
  health: HealthView | undefined;

  constructor(
    readonly pools: UpstreamPools,
    private readonly metrics: Metrics,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /**
   * Builds a table for `config` + `cluster` and swaps it in; closes pools that nothing names any more.
   * Total: an upstream whose pool cannot be made is left out, and a service whose balancer cannot be
   * built keeps its previous route (or none), each listed in `problems`, so one bad member (say, a
   * cluster registration from an older version) never freezes the routing of the others.
   */
  apply(config: Config, cluster: ClusterMembership | undefined, generation: number): RoutingTable {
    const now = this.nowMs();
    const services = new Map<ServiceName, ServiceRoute>();
    const keepRuntimes = new Set<string>();
    const keepPools = new Set<string>();
    const problems: string[] = [];
    for (const [name, svc] of Object.entries(config.services)) {
      const members: UpstreamSpec[] = [];
      const upstreams = new Map<UpstreamId, UpstreamRuntime>();
      for (const spec of liveMembers(name, svc, cluster)) {
        const key = `${name}\u0000${spec.id}`;
        const poolOpts = { connectTimeoutMs: svc.timeouts.connect, tls: svc.upstreamTls?.material };
        const poolKey = UpstreamPools.keyOf(spec.url, poolOpts);
        let rt = this.runtimes.get(key);
        if (!rt || rt.poolKey !== poolKey) {
          try {
            const https = /^https:/i.test(spec.url);
            // A config that names upstreamTls but was never loaded from disk has no PEM text: dialling
            // with the system store instead of the configured CA would be a silent downgrade.
            if (https && svc.upstreamTls !== undefined && svc.upstreamTls.material === undefined) throw new Error('upstreamTls files were not loaded');
            rt = new UpstreamRuntime(spec, this.pools.get(spec.url, poolOpts), poolKey, this.metrics.bindUpstream(name, spec.id), https ? dispatchServername(spec.url, poolOpts.tls) : undefined);
          } catch (err) {
            problems.push(`service ${name}: upstream ${spec.id} (${spec.url}) left out: ${(err as Error).message}`);
            continue;
          }
          if (this.table !== undefined) rt.eligibleSinceMs = now;
          this.runtimes.set(key, rt);
        } else {
          rt.spec = spec;
        }
        members.push(spec);
        keepRuntimes.add(key);
        keepPools.add(poolKey);
        upstreams.set(spec.id, rt);
      }
      const previous = this.table?.services.get(name);
      try {
        services.set(name, new ServiceRoute(name, svc, members, upstreams, this.health, now, previous));
      } catch (err) {
        problems.push(`service ${name}: routing not rebuilt, ${previous ? 'keeps its previous members' : 'has no route'}: ${(err as Error).message}`);
        if (previous) {
          services.set(name, previous);
          for (const id of previous.upstreams.keys()) keepRuntimes.add(`${name}\u0000${id}`);
          for (const rt of previous.upstreams.values()) keepPools.add(rt.poolKey);
        }
      }
    }
    const routes = new RouteTable(config.routes.map((r) => ({ host: r.match.host, pathPrefix: r.match.pathPrefix, service: r.service })));
    const table = new RoutingTable(generation, routes, services, config);
    this.table = table;
    this.problems = problems;
    for (const key of this.runtimes.keys()) if (!keepRuntimes.has(key)) this.runtimes.delete(key);
    void this.pools.retain(keepPools);
    return table;
  }

  /** What the last apply() had to leave out (empty when everything was built). */
  problems: readonly string[] = [];

  /** Health changed for a service: rebuild its balancer from the new eligibility. */
  rebuildService(name: string): void {
    try {
      this.table?.services.get(name)?.rebuild(this.health, this.nowMs());
    } catch (err) {
      // The previous balancer keeps serving (rebuild swaps only after a successful build).
      this.problems = [...this.problems, `service ${name}: balancer not rebuilt: ${(err as Error).message}`];
    }
  }
}

/** Any fixed value per pool will do (upstream-runtime.ts); the name it verifies reads best in a debugger. */
function dispatchServername(url: string, material: UpstreamTlsMaterial | undefined): string {
  const host = new URL(url).hostname;
  return serverNameFor(host, material) ?? host;
}
