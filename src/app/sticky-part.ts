/**
 * Sticky sessions as the peer wires them: one pin store (Redis when `redis:` is set, process memory
 * otherwise) shared by one resolver per sticky service, adapted to the data path's StickyView.
 *
 * The stateless fallback (`onStoreDown: hash`) hashes the session key onto a ring-hash of the
 * service's pickable upstreams, built from upstream ids only, so every peer computes the same answer.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config/schema.js';
import type { EventBus } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Router } from '../proxy/routing.js';
import type { StickyDecision, StickyView } from '../proxy/sticky-view.js';
import type { HealthMonitor } from '../health/index.js';
import { createBalancer } from '../balance/index.js';
import type { Balancer } from '../balance/balancer.js';
import type { UpstreamSpec } from '../model/index.js';
import { protoOf } from '../proxy/headers.js';
import { MemoryPinStore, RedisPinStore, StickyResolver, sessionCookie, sessionKeyFrom, type PinStore } from '../sticky/index.js';

export interface StickyPart {
  view(router: Router, health: () => HealthMonitor): StickyView;
  status(): unknown;
  close(): Promise<void>;
}

export async function createStickyPart(cfg: Config, bus: EventBus, log: Logger, metrics: Metrics, random: () => number): Promise<StickyPart | undefined> {
  const sticky = Object.entries(cfg.services).filter(([, s]) => s.sticky !== undefined);
  if (sticky.length === 0) return undefined;
  let storeUp = true;
  const r = cfg.redis;
  const store: PinStore = r
    ? new RedisPinStore({
        topology: r.cluster ? { kind: 'cluster', nodes: r.cluster } : r.sentinels ? { kind: 'sentinel', sentinels: r.sentinels, name: r.name ?? '' } : { kind: 'single', url: r.url ?? '' },
        keyPrefix: r.keyPrefix,
        budgetMs: r.budget,
        ...(r.password ? { password: r.password } : {}),
        onEvent: (e) => {
          if (e.type === 'error' || e.type === 'close') log.warn({ redis: e.type, message: e.message }, 'sticky store connection');
          if (e.type === 'ready') log.info('sticky store connected');
          if ((e.type === 'topology' || e.type === 'ready') && store instanceof RedisPinStore) {
            const t = store.connection.topology();
            metrics.stickyRedisPrimary.reset();
            for (const p of t.primaries) metrics.stickyRedisPrimary.labels(t.kind, p.node).set(p.slots ?? 16384);
          }
          if (e.type === 'failover') {
            metrics.stickyRedisFailovers.inc();
            log.warn({ redis: 'failover', message: e.message }, 'sticky store failover seen');
          }
        },
      })
    : new MemoryPinStore();
  if (!r && cfg.cluster) log.warn('sticky sessions without `redis:` keep pins in this peer only; other peers will pin the same session elsewhere');
  metrics.stickyStoreUp.set(1);
  bus.subscribe((ev) => {
    if (ev.type === 'sticky:store') {
      storeUp = (ev.data as { up: boolean }).up;
      metrics.stickyStoreUp.set(storeUp ? 1 : 0);
    }
  });
  const resolvers = new Map<string, StickyResolver>();
  for (const [name, svc] of sticky) {
    resolvers.set(
      name,
      new StickyResolver({
        store,
        ttlMs: svc.sticky!.ttl,
        cacheTtlMs: svc.sticky!.cacheTtl,
        onStoreDown: svc.sticky!.onStoreDown,
        budgetMs: r?.budget,
        random,
        bus,
        onMetric: (m) => {
          if (m.type === 'resolve') metrics.stickyPins.labels(m.service, m.outcome).inc();
          else if (m.type === 'store') {
            metrics.stickyStoreDuration.observe(m.ms / 1000);
            if (!m.ok) metrics.stickyStoreErrors.inc();
          }
        },
      }),
    );
  }
  // Ring of the pickable set for the stateless fallback, rebuilt only when that set changes.
  const rings = new WeakMap<readonly UpstreamSpec[], { ring: Balancer; ids: Set<string> }>();
  const ringFor = (pickable: readonly UpstreamSpec[]) => {
    let r2 = rings.get(pickable);
    if (!r2) {
      r2 = { ring: createBalancer('ring-hash', { candidates: pickable.map((p) => ({ id: p.id, weight: p.weight })) }, {}), ids: new Set(pickable.map((p) => p.id)) };
      rings.set(pickable, r2);
    }
    return r2;
  };

  return {
    view(router: Router, health: () => HealthMonitor): StickyView {
      return {
        async resolve(ex): Promise<StickyDecision> {
          const service = ex.svc.name;
          const resolver = resolvers.get(service);
          const cfgSticky = ex.svc.cfg.sticky;
          if (!resolver || !cfgSticky) return { kind: 'none' };
          const elig = health().eligibility(service);
          const { ring, ids } = ringFor(elig.pickable);
          const svcRoute = router.table?.services.get(service) ?? ex.svc;
          const result = await resolver.resolve({
            service,
            sessionKey: sessionKeyFrom(ex.req.headers as IncomingHttpHeaders, cfgSticky),
            usable: (id) => svcRoute.upstreams.has(id) && elig.usable(id),
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
      };
    },
    status() {
      const services: Record<string, unknown> = {};
      for (const [name, res] of resolvers) services[name] = res.stats();
      const redis = store instanceof RedisPinStore ? store.connection.topology() : undefined;
      return { configured: true, store: r ? 'redis' : 'memory', storeUp, ...(redis ? { redis } : {}), services };
    },
    async close() {
      for (const res of resolvers.values()) res.close();
      await store.close();
    },
  };
}
