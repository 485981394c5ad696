/**
 * The routing snapshot: one immutable value that carries everything a request needs — the route
 * matcher, per service its live upstreams, balancer, eligibility, sticky settings and resolver handle,
 * timeouts and retry policy (its config), and the body limits — built by one function from (config,
 * committed membership, eligibility).
 *
 * Who builds it: only `buildRoutingSnapshot`, called only by RoutingRefresh (routing-refresh.ts) on
 * start, reload, membership apply and health change. Who reads it: a request (HTTP, Upgrade) reads
 * the current snapshot once when it arrives and uses that snapshot's ServiceSnapshot to its end,
 * retries and sticky resolution included; status and metrics read the current one.
 *
 * Invariants:
 * - Nothing in a snapshot is changed after it is built (a balancer's own pick state — round-robin
 *   cursor — and the upstream runtimes' live counters are the only moving parts, and both are meant to
 *   be shared by the snapshots that reuse them).
 * - Deterministic in its inputs: the same inputs give a snapshot that routes alike. The only effects go
 *   through `resources` (pools, per-upstream metrics series, sticky resolvers), which the caller caches,
 *   and slow start (an upstream runtime's `eligibleSinceMs`, stamped when it becomes pickable).
 * - A service whose balancer inputs (its balancer settings and pickable candidates) did not change
 *   keeps the previous snapshot's balancer instance: a health change of one service, or a membership
 *   write to one, rebuilds that service's balancer only; a ring-hash ring is derived from the previous
 *   one (the points of unchanged upstreams kept, only the changed ones' made and merged in).
 * - Total: an upstream whose pool cannot be made is left out, and a service whose balancer cannot be
 *   built keeps its previous ServiceSnapshot (or has none), each listed in `problems`.
 */
import { MaglevBalancer, RingHashBalancer, createBalancer, createMaglevBalancer, createRingHashBalancer } from '../balance/index.js';
import type { Balancer, BalancerOptions, PickCandidate, UpstreamLoad } from '../balance/balancer.js';
import type { Config, ServiceConfig } from '../config/schema.js';
import type { ClusterMembership, ServiceName, UpstreamId, UpstreamSpec } from '../model/index.js';
import { RouteMatcher } from './route-matcher.js';
import { liveMembers, parseHashOn, type Eligibility, type HashSource } from './routing.js';
import type { StickyView } from './sticky-view.js';
import type { PoolOptions } from './upstream-pools.js';
import type { UpstreamRuntime } from './upstream-runtime.js';

/** `node.maxBodySize`, `node.bodyIdleTimeout`, `node.requestBufferSize` as the request path reads them. */
export interface BodyLimits {
  readonly maxBodyBytes: number;
  /** ms; 0 disables. */
  readonly bodyIdleMs: number;
  /** bytes; 0 disables. */
  readonly requestBufferBytes: number;
}

/** A service's part of a snapshot. */
export interface ServiceSnapshot {
  readonly name: ServiceName;
  /** Timeouts, retries, sticky settings, hashOn: the service's config at this snapshot. */
  readonly cfg: ServiceConfig;
  readonly members: readonly UpstreamSpec[];
  readonly upstreams: ReadonlyMap<UpstreamId, UpstreamRuntime>;
  readonly balancer: Balancer;
  /** Fingerprint of what `balancer` was built from (equal → the balancer is reused). */
  readonly balancerKey: string;
  /** Where new requests (and new pins) may go, and whether panic mode put everyone there. */
  readonly pickable: readonly UpstreamSpec[];
  readonly panic: boolean;
  /** Existing pins may stay on `id`. */
  usable(id: string): boolean;
  readonly load: (id: UpstreamId) => UpstreamLoad | undefined;
  readonly hashOn: HashSource | undefined;
  /** The sticky resolver of this service's settings; undefined for a service without `sticky:`. */
  readonly sticky: StickyView | undefined;
}

export interface RoutingSnapshot {
  /** The config generation this snapshot was built from. */
  readonly generation: number;
  /** The last refresh event (RoutingRefresh sequence number) this snapshot includes. */
  readonly through: number;
  readonly routes: RouteMatcher;
  readonly services: ReadonlyMap<ServiceName, ServiceSnapshot>;
  readonly limits: BodyLimits;
  readonly config: Config;
  /** What had to be left out (empty when everything was built). */
  readonly problems: readonly string[];
}

export interface RoutingInputs {
  readonly config: Config;
  readonly generation: number;
  readonly membership: ClusterMembership | undefined;
  /** The health module's eligibility of a service; undefined → every `active` member is pickable. */
  eligibility(service: ServiceName): Eligibility | undefined;
  readonly nowMs: number;
  readonly through: number;
}

/** The effectful, cached pieces a build asks for; the caller keeps them across snapshots. */
export interface SnapshotResources {
  /** The long-lived runtime of (service, upstream) for this spec and pool options; throws when its pool cannot be made. */
  runtime(service: ServiceName, spec: UpstreamSpec, opts: PoolOptions): UpstreamRuntime;
  /** The resolver handle of a sticky service's current settings. */
  sticky(service: ServiceName, svc: ServiceConfig): StickyView | undefined;
  /**
   * A balancer for these inputs built elsewhere (routing-refresh.ts: a big ring or Maglev table made
   * off the event loop), or undefined to build it here. `key` is the inputs' fingerprint.
   */
  balancer?(svc: ServiceConfig, candidates: readonly PickCandidate[], previous: Balancer | undefined, key: string): Balancer | undefined;
}

export function bodyLimitsOf(config: Config): BodyLimits {
  return { maxBodyBytes: config.node.maxBodySize, bodyIdleMs: config.node.bodyIdleTimeout, requestBufferBytes: config.node.requestBufferSize };
}

/** The one build of a routing snapshot (see the file comment). `previous`: the snapshot it replaces. */
export function buildRoutingSnapshot(inputs: RoutingInputs, previous: RoutingSnapshot | undefined, resources: SnapshotResources): RoutingSnapshot {
  const services = new Map<ServiceName, ServiceSnapshot>();
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(inputs.config.services)) {
    const before = previous?.services.get(name);
    try {
      services.set(name, buildService(name, svc, inputs, before, resources, problems));
    } catch (err) {
      problems.push(`service ${name}: routing not rebuilt, ${before ? 'keeps its previous members' : 'has no route'}: ${(err as Error).message}`);
      if (before) services.set(name, before);
    }
  }
  const routes = new RouteMatcher(inputs.config.routes.map((r) => ({ host: r.match.host, pathPrefix: r.match.pathPrefix, service: r.service })));
  return Object.freeze({ generation: inputs.generation, through: inputs.through, routes, services, limits: Object.freeze(bodyLimitsOf(inputs.config)), config: inputs.config, problems: Object.freeze(problems) });
}

function buildService(name: ServiceName, svc: ServiceConfig, inputs: RoutingInputs, before: ServiceSnapshot | undefined, resources: SnapshotResources, problems: string[]): ServiceSnapshot {
  const members: UpstreamSpec[] = [];
  const upstreams = new Map<UpstreamId, UpstreamRuntime>();
  const poolOpts = { connectTimeoutMs: svc.timeouts.connect, tls: svc.upstreamTls?.material };
  for (const spec of liveMembers(name, svc, inputs.membership)) {
    try {
      // A config that names upstreamTls but was never loaded from disk has no PEM text: dialling with
      // the system store instead of the configured CA would be a silent downgrade.
      if (/^https:/i.test(spec.url) && svc.upstreamTls !== undefined && svc.upstreamTls.material === undefined) throw new Error('upstreamTls files were not loaded');
      upstreams.set(spec.id, resources.runtime(name, spec, poolOpts));
      members.push(spec);
    } catch (err) {
      problems.push(`service ${name}: upstream ${spec.id} (${spec.url}) left out: ${(err as Error).message}`);
    }
  }
  const elig = inputs.eligibility(name);
  const pickable = elig ? elig.pickable : members.filter((m) => m.state === 'active');
  const wasPickable = before === undefined ? undefined : new Set(before.pickable.map((p) => p.id));
  const candidates: PickCandidate[] = [];
  for (const spec of pickable) {
    const rt = upstreams.get(spec.id);
    if (!rt) continue;
    // Slow start counts from when an upstream becomes pickable again (new, or recovered).
    if (wasPickable !== undefined && !wasPickable.has(spec.id)) rt.eligibleSinceMs = inputs.nowMs;
    candidates.push(rt.eligibleSinceMs === undefined ? { id: spec.id, weight: spec.weight } : { id: spec.id, weight: spec.weight, eligibleSinceMs: rt.eligibleSinceMs });
  }
  const balancerKey = balancerKeyOf(svc, candidates);
  const balancer = before !== undefined && before.balancerKey === balancerKey
    ? before.balancer
    : resources.balancer?.(svc, candidates, before?.balancer, balancerKey) ?? buildBalancer(svc, candidates, before?.balancer);
  // Without a health view: a member this snapshot holds as active or draining (its own specs, not the
  // runtime's, which a later snapshot updates).
  const served = elig ? undefined : new Set(members.filter((m) => m.state !== 'disabled').map((m) => m.id));
  const usable = elig ? (id: string) => elig.usable(id) : (id: string) => served!.has(id);
  return Object.freeze({
    name,
    cfg: svc,
    members,
    upstreams,
    balancer,
    balancerKey,
    pickable: candidates.length === pickable.length ? pickable : pickable.filter((p) => upstreams.has(p.id)),
    panic: elig?.panic ?? false,
    usable,
    load: (id: UpstreamId) => upstreams.get(id),
    hashOn: svc.hashOn ? parseHashOn(svc.hashOn) : undefined,
    sticky: svc.sticky ? resources.sticky(name, svc) : undefined,
  });
}

/** The balancer options a service's config gives (one mapping for every build, here or off-thread). */
export function balancerOptionsOf(svc: ServiceConfig): BalancerOptions {
  return {
    boundedLoad: svc.boundedLoad,
    minRingSize: svc.ringSize,
    tableSize: svc.maglevTableSize,
    activeRequestBias: svc.activeRequestBias,
    peakEwma: svc.peakEwma,
    slowStartMs: svc.slowStart,
  };
}

/**
 * A new balancer; a ring-hash one derives its ring from the ring it replaces (only changed upstreams'
 * points are made), a Maglev one takes the permutations of the upstreams it shares with the one it
 * replaces (only the fill runs).
 */
function buildBalancer(svc: ServiceConfig, candidates: readonly PickCandidate[], previous: Balancer | undefined): Balancer {
  const opts = balancerOptionsOf(svc);
  if (svc.balancer === 'ring-hash' && previous instanceof RingHashBalancer) return createRingHashBalancer({ candidates }, opts, previous);
  if (svc.balancer === 'maglev' && previous instanceof MaglevBalancer) return createMaglevBalancer({ candidates }, opts, previous);
  return createBalancer(svc.balancer, { candidates }, opts);
}

/** What a balancer is built from, as a string: its settings and its candidates (id, weight, slow start). */
function balancerKeyOf(svc: ServiceConfig, candidates: readonly PickCandidate[]): string {
  let key = `${svc.balancer}|${svc.boundedLoad}|${svc.ringSize}|${svc.maglevTableSize}|${svc.activeRequestBias}|${svc.peakEwma}|${svc.slowStart}`;
  for (const c of candidates) key += `|${c.id}:${c.weight}:${c.eligibleSinceMs ?? ''}`;
  return key;
}
