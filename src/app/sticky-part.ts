/**
 * Sticky sessions as the peer wires them: one pin store (Redis when `redis:` is set, process memory
 * otherwise) shared by one resolver per sticky service, adapted to the data path's StickyView.
 *
 * The stateless fallback (`onStoreDown: hash`) hashes the session key onto a ring-hash of the
 * service's pickable upstreams, built from upstream ids only, so every peer computes the same answer.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Config, ServiceConfig } from '../config/schema.js';
import type { EventBus } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { StickyDecision, StickyView } from '../proxy/sticky-view.js';
import { createRingHashBalancer, type RingHashBalancer } from '../balance/index.js';
import type { UpstreamSpec } from '../model/index.js';
import { protoOf } from '../proxy/headers.js';
import { MemoryPinStore, REMOTE_PIN_BUDGET_MS, RedisPinStore, RemotePinStore, StickyResolver, sessionCookie, sessionKeyFrom, type PinStore, type RemotePinCall } from '../sticky/index.js';

export interface StickyPart {
  /** The resolver handle of `service` with its current `sticky:` settings; a changed setting gets a new resolver. */
  viewFor(service: string, svc: ServiceConfig): StickyView;
  /** Closes the resolvers of services that are no longer sticky (after a snapshot swap). */
  retain(services: ReadonlySet<string>): void;
  status(): unknown;
  /** The pin store (made on first use): the primary of a peer with workers serves their calls from it. */
  store(): PinStore;
  close(): Promise<void>;
}

/**
 * The sticky part of a peer. The pin store is made when the first sticky service appears (at start or
 * by a reload), from the running `redis:` block (restart-only); each sticky service gets a resolver
 * made for its settings (ttl, cacheTtl, onStoreDown), replaced when they change.
 */
export function createStickyPart(
  cfg: Config, bus: EventBus, log: Logger, metrics: Metrics, random: () => number,
  /** In a worker without `redis:`: the primary's memory store, reached through this call. */
  remote?: RemotePinCall,
): StickyPart {
  let storeUp = true;
  const r = cfg.redis;
  let store: PinStore | undefined;
  const storeOf = (): PinStore => {
    if (store) return store;
    store = !r && remote ? new RemotePinStore(remote) : makeStore(cfg, log, metrics);
    if (!r && cfg.cluster) log.warn('sticky sessions without `redis:` keep pins in this peer only; other peers will pin the same session elsewhere');
    metrics.enableSticky();
    metrics.stickyStoreUp.set(1);
    return store;
  };
  bus.subscribe((ev) => {
    if (ev.type === 'sticky:store') {
      storeUp = (ev.data as { up: boolean }).up;
      metrics.stickyStoreUp.set(storeUp ? 1 : 0);
    }
  });
  const resolvers = new Map<string, { key: string; resolver: StickyResolver; view: StickyView }>();
  // Ring of the pickable set for the stateless fallback, rebuilt only when that set changes (and then
  // derived from the service's previous ring: only the changed upstreams' points are made).
  const rings = new WeakMap<readonly UpstreamSpec[], { ring: RingHashBalancer; ids: Set<string> }>();
  const lastRing = new Map<string, RingHashBalancer>();
  const ringFor = (service: string, pickable: readonly UpstreamSpec[]) => {
    let r2 = rings.get(pickable);
    if (!r2) {
      r2 = { ring: createRingHashBalancer({ candidates: pickable.map((p) => ({ id: p.id, weight: p.weight })) }, {}, lastRing.get(service)), ids: new Set(pickable.map((p) => p.id)) };
      rings.set(pickable, r2);
      lastRing.set(service, r2.ring);
    }
    return r2;
  };
  const makeView = (resolver: StickyResolver): StickyView => ({
    // Reads only the request's own ServiceSnapshot: the snapshot it started with, to its end.
    async resolve(ex): Promise<StickyDecision> {
      const svc = ex.svc;
      const cfgSticky = svc.cfg.sticky;
      if (!cfgSticky) return { kind: 'none' };
      const { ring, ids } = ringFor(svc.name, svc.pickable);
      const result = await resolver.resolve({
        service: svc.name,
        sessionKey: sessionKeyFrom(ex.req.headers as IncomingHttpHeaders, cfgSticky),
        usable: (id) => svc.upstreams.has(id) && svc.usable(id),
        pickable: (id) => ids.has(id),
        pick: () => ex.pick(),
        hashPick: (key) => ring.pick({ hashKey: key }),
      });
      if (result.kind !== 'pinned') return result;
      const setCookie = result.newSessionKey !== undefined && cfgSticky.cookie !== undefined
        ? sessionCookie(cfgSticky.cookie, result.newSessionKey, { secure: protoOf(ex.req.socket) === 'https' }) // Secure behind TLS (DESIGN.md §5)
        : undefined;
      // Header sessions: the minted key goes back in the same header for the client to resend.
      const sessionHeader = result.newSessionKey !== undefined && cfgSticky.header !== undefined ? ([cfgSticky.header.toLowerCase(), result.newSessionKey] as const) : undefined;
      return { kind: 'pinned', upstream: result.upstream, fence: result.fence, setCookie, sessionHeader };
    },
  });

  return {
    viewFor(service, svc) {
      const s = svc.sticky!;
      const key = `${s.ttl}|${s.cacheTtl}|${s.onStoreDown}`;
      const found = resolvers.get(service);
      if (found?.key === key) return found.view;
      found?.resolver.close();
      const resolver = new StickyResolver({
        store: storeOf(),
        ttlMs: s.ttl,
        cacheTtlMs: s.cacheTtl,
        onStoreDown: s.onStoreDown,
        // The primary's memory store (workers, no `redis:`) is a local IPC hop: see REMOTE_PIN_BUDGET_MS.
        budgetMs: r?.budget ?? (remote ? REMOTE_PIN_BUDGET_MS : undefined),
        random,
        bus,
        onMetric: (m) => {
          if (m.type === 'resolve') metrics.stickyPins.labels(m.service, m.outcome).inc();
          else if (m.type === 'store') {
            metrics.stickyStoreDuration.observe(m.ms / 1000);
            if (!m.ok) metrics.stickyStoreErrors.inc();
          }
        },
      });
      const entry = { key, resolver, view: makeView(resolver) };
      resolvers.set(service, entry);
      return entry.view;
    },
    retain(services) {
      for (const [name, e] of resolvers) {
        if (services.has(name)) continue;
        e.resolver.close();
        resolvers.delete(name);
        lastRing.delete(name);
      }
    },
    status() {
      if (store === undefined) return { configured: false };
      const services: Record<string, unknown> = {};
      for (const [name, e] of resolvers) services[name] = e.resolver.stats();
      const redis = store instanceof RedisPinStore ? store.connection.topology() : undefined;
      return { configured: true, store: r ? 'redis' : 'memory', storeUp, ...(redis ? { redis } : {}), services };
    },
    store: storeOf,
    async close() {
      for (const e of resolvers.values()) e.resolver.close();
      resolvers.clear();
      await store?.close();
    },
  };
}

function makeStore(cfg: Config, log: Logger, metrics: Metrics): PinStore {
  const r = cfg.redis;
  if (!r) return new MemoryPinStore();
  const store: RedisPinStore = new RedisPinStore({
    topology: r.cluster ? { kind: 'cluster', nodes: r.cluster } : r.sentinels ? { kind: 'sentinel', sentinels: r.sentinels, name: r.name ?? '' } : { kind: 'single', url: r.url ?? '' },
    keyPrefix: r.keyPrefix,
    budgetMs: r.budget,
    ...(r.password ? { password: r.password } : {}),
    onEvent: (e) => {
      if (e.type === 'error' || e.type === 'close') log.warn({ redis: e.type, message: e.message }, 'sticky store connection');
      if (e.type === 'ready') log.info('sticky store connected');
      if (e.type === 'topology' || e.type === 'ready') {
        const t = store.connection.topology();
        metrics.stickyRedisPrimary.reset();
        for (const p of t.primaries) metrics.stickyRedisPrimary.labels(t.kind, p.node).set(p.slots ?? 16384);
      }
      if (e.type === 'unreplicated') metrics.stickyUnreplicatedMoves.inc();
      if (e.type === 'failover') {
        metrics.stickyRedisFailovers.inc();
        log.warn({ redis: 'failover', message: e.message }, 'sticky store failover seen');
      }
    },
  });
  return store;
}
