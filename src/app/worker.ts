/**
 * One data-plane worker of a peer with `node.workers: N > 1` (DESIGN.md §10, docs/workers.md): the
 * composition root of a worker process. It serves the data-plane listeners (shared with its sibling
 * workers through node:cluster) and nothing else: no Raft, no admin API, no active health checks.
 *
 * Routing: the primary sends the inputs of the routing snapshot (config, committed membership, health
 * eligibility; workers/protocol.ts); this worker runs the same pure build on them through its own
 * RoutingRefresh, then acks, so the primary can answer an admin write only once every worker routes
 * with it. Passive health outcomes go back to the primary (outlier detection counts across the peer);
 * circuit-breaker limits are split evenly between the workers (proxy/service-state.ts); pins live in
 * Redis, or without `redis:` in the primary's memory store (sticky/remote-pin-store.ts).
 *
 * Lifecycle: `drain` from the primary (its SIGTERM) or this process's own SIGTERM drains the data plane
 * like a single-process peer and exits 0; the primary's channel closing (the primary died) exits at once.
 */
import { randomInt } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { ClusterMembership, UpstreamId } from '../model/index.js';
import { EventBus } from '../observability/events.js';
import { createAccessLog, createLogger, flushAccessLogs, flushLogs, type Logger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { createSeededRandom } from '../lib/rng.js';
import type { RoutingRefresh } from '../proxy/routing-refresh.js';
import type { Eligibility } from '../proxy/routing.js';
import { ServiceStates } from '../proxy/service-state.js';
import { CertificateSet, type LoadedCertificate } from '../tls/certificates.js';
import { PrimaryChannel } from '../workers/channel.js';
import type { CertificateWire, EligibilityWire, RoutingState, ToWorker, WorkerStats } from '../workers/protocol.js';
import { createDataPart, type DataPart } from './data-part.js';
import { createRoutingPart, type RoutingPart } from './routing-part.js';
import { createStickyPart, type StickyPart } from './sticky-part.js';
import { followUpstreamSet } from './peer-metrics.js';
import { VERSION } from './version.js';

export function runWorker(): void {
  const w = new Worker();
  w.channel = new PrimaryChannel({
    onInit: (init) => w.init(init),
    onState: (state) => w.apply(state),
    stats: () => w.stats(),
    metrics: () => w.metrics.exportForPrimary(),
    onDrain: () => void w.stop(0),
    onPrimaryGone: () => {
      // The primary is gone (killed): its listeners with it; end now, nothing routes this worker's state.
      process.exit(0);
    },
  });
  process.once('SIGTERM', () => void w.stop(0));
  // SIGINT from a terminal reaches the whole process group: the primary drains everyone.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
}

class Worker {
  channel!: PrimaryChannel;
  readonly metrics = new Metrics({ version: VERSION });
  private readonly bus = new EventBus();
  private readonly random = createSeededRandom(randomInt(2 ** 31));
  private log!: Logger;
  private config!: Config;
  private generation = 0;
  private membership: ClusterMembership | undefined;
  private readonly eligibility = new Map<string, Eligibility>();
  private certificates: CertificateSet | undefined;
  private routingPart: RoutingPart | undefined;
  private routing!: RoutingRefresh;
  private states!: ServiceStates;
  private sticky!: StickyPart;
  private data!: DataPart;
  private stopping: Promise<void> | undefined;
  private tlsPort = 0;

  async init(init: Extract<ToWorker, { t: 'init' }>): Promise<void> {
    const state = init.state;
    const cfg = state.config!;
    this.log = createLogger({ level: cfg.node.logLevel, nodeId: cfg.node.id, pretty: init.pretty }).child({ worker: init.index });
    this.takeState(state);
    const al = cfg.node.accessLog;
    const accessLog = al.enabled ? createAccessLog({ nodeId: cfg.node.id, settings: al, pretty: init.pretty, colour: al.file === undefined && process.stdout.isTTY === true }) : undefined;
    // Bus events (a breaker opening, the sticky store going down) are the peer's: the primary logs them and streams them.
    this.bus.subscribe((ev) => this.channel.send({ t: 'event', type: ev.type, data: ev.data }));
    this.states = new ServiceStates((service, kind, upstream) => this.bus.emit('breaker:open', { service, kind, ...(upstream ? { upstream } : {}) }), init.count);
    this.states.configure(cfg.services);
    this.sticky = createStickyPart(cfg, this.bus, this.log, this.metrics, this.random, (op, args, timeoutMs) => this.channel.callPin(op, args, timeoutMs));
    this.routingPart = createRoutingPart({ metrics: this.metrics, log: this.log, sticky: this.sticky }, {
      config: () => this.config,
      generation: () => this.generation,
      membership: () => this.membership,
      eligibility: (service) => this.eligibility.get(service),
    }, (snapshot, batch) => {
      if (batch.some((e) => e.event.kind !== 'health')) followUpstreamSet(this.metrics, this.sticky, snapshot);
    });
    this.routing = this.routingPart.refresh;
    this.routingPart.start();
    const health = {
      eligibility: (service: string) => this.eligibility.get(service),
      recordResult: (service: string, upstream: string, result: { kind: string }) => this.channel.record(service, upstream, result),
    };
    this.data = createDataPart(cfg, this.certificates, {
      routing: this.routing, health, states: (s) => this.states.get(s), metrics: this.metrics, log: this.log, accessLog, random: this.random,
    });
    let ports: { dataPort: number; tlsPort: number };
    try {
      ports = await this.data.listen();
    } catch (err) {
      this.channel.send({ t: 'failed', message: `listen: ${(err as Error).message}` });
      flushLogs();
      process.exit(1);
    }
    this.tlsPort = ports.tlsPort;
    this.channel.send({ t: 'ready', ...ports });
  }

  /** A later state: the changed inputs, then one rebuild that includes them. */
  async apply(state: RoutingState): Promise<void> {
    const changed = this.takeState(state);
    if (changed.config) {
      this.states.configure(this.config.services);
      this.routing.request({ kind: 'reload' });
      const tls = this.data.dataPlane.tls;
      if (tls && this.certificates) tls.setCertificates(this.certificates);
      this.data.dataPlane.redirectToPort = this.config.node.tls?.redirectHttp && tls ? this.tlsPort : undefined;
    }
    if (changed.membership) this.routing.request({ kind: 'membership' });
    for (const service of changed.services) this.routing.request({ kind: 'health', service });
    const outcome = await this.routing.applied();
    if (!outcome.ok) throw outcome.error;
  }

  private takeState(state: RoutingState): { config: boolean; membership: boolean; services: string[] } {
    let config = false;
    if (state.config !== undefined && state.generation !== this.generation) {
      this.config = state.config;
      this.generation = state.generation;
      config = true;
      if (state.certificates) this.certificates = certificateSet(state.certificates);
    }
    const membership = state.membership !== undefined;
    if (membership) this.membership = state.membership ?? undefined;
    const services: string[] = [];
    for (const [name, wire] of state.eligibility) {
      this.eligibility.set(name, eligibilityOf(wire));
      services.push(name);
    }
    return { config, membership, services };
  }

  stats(): WorkerStats {
    const snapshot = this.routing?.snapshot;
    const upstreams: Array<[string, string, number, number, number, number, number | undefined, number | undefined]> = [];
    const services: Array<[string, number, number, number[]]> = [];
    for (const [name, svc] of snapshot?.services ?? []) {
      for (const [id, rt] of svc.upstreams) {
        const lat = rt.latencyPercentiles();
        upstreams.push([name, id, rt.inFlight, rt.requests, rt.failures, rt.series.responses5xx, lat?.p50, lat?.p99]);
      }
      const t = this.metrics.serviceTraffic(name);
      services.push([name, t.requests, t.errors5xx, t.buckets]);
    }
    const dp = this.data?.dataPlane;
    return {
      requests: this.metrics.requestsAnswered(),
      inFlight: dp?.requestsInFlight ?? 0,
      websockets: this.data?.upgrades.openCount ?? 0,
      draining: dp?.isDraining ?? false,
      upstreams,
      services,
      sticky: ((this.sticky?.status() as { services?: Record<string, unknown> } | undefined)?.services) ?? {},
    };
  }

  /** Drains the data plane (up to `node.drainTimeout`), closes everything, exits. Idempotent. */
  stop(code: number): Promise<void> {
    this.stopping ??= (async () => {
      // Told to stop before its init arrived: nothing serves yet, nothing to drain.
      if (this.config === undefined) {
        this.channel.close();
        process.exit(code);
      }
      const drained = await this.data?.dataPlane.drain(this.config.node.drainTimeout);
      await this.routingPart?.close(drained?.forced ?? false);
      await this.sticky?.close();
      await flushAccessLogs();
      this.channel.flush();
      this.channel.close();
      flushLogs();
      // Let the last IPC messages (results, events) leave before the process ends.
      setImmediate(() => process.exit(code));
    })();
    return this.stopping;
  }
}

function eligibilityOf(w: EligibilityWire): Eligibility {
  const usable = new Set<UpstreamId>(w.usable);
  return Object.freeze({
    pickable: Object.freeze([...w.pickable]),
    usable: (id: UpstreamId) => usable.has(id),
    panic: w.panic,
    version: w.version,
    healthy: w.healthy,
    total: w.total,
    eligibleSinceMs: () => undefined,
  });
}

/** The primary loaded and checked these; a worker only builds the OpenSSL contexts. */
function certificateSet(wire: readonly CertificateWire[]): CertificateSet {
  return new CertificateSet(wire.map((c): LoadedCertificate => {
    const options = c.options as SecureContextOptions;
    return { files: c.files, names: c.names, notAfter: c.notAfter, options, context: createSecureContext(options) };
  }));
}
