/**
 * The composition root: builds every concrete piece of one meshgate peer, owns the start and stop
 * order, reloads, and the status the admin API and dashboard show. Nothing imports app/.
 *
 * Start order: config → logs/metrics/bus → health → cluster (membership) → sticky → routing (first
 * snapshot) → admin → data plane.
 *
 * Routing: the peer owns no routing state of its own. Start, reload, membership apply and health
 * changes each hand RoutingRefresh (proxy/routing-refresh.ts, built by app/routing-part.ts as in a
 * worker) an event; it rebuilds the one routing
 * snapshot in a later event-loop turn, from this peer's running config, the committed membership and
 * the health module's eligibility, after `prepareRouting` has given the health module the new members. Stop order is the reverse, with the data plane drained first
 * (DESIGN.md §6: stop accepting, finish in-flight up to the drain timeout, hand Raft leadership over,
 * close pools, exit 0).
 */
import { randomInt } from 'node:crypto';
import { createSeededRandom } from '../lib/rng.js';
import { loadConfigFile, formatIssue, type ConfigIssue } from '../config/load.js';
import { effectiveConfig, restartRequired } from '../config/diff.js';
import { ConfigWatcher } from '../config/watch.js';
import type { Config } from '../config/schema.js';
import { EventBus } from '../observability/events.js';
import { createAccessLog, createLogger, flushAccessLogs, flushLogs, type AccessLog, type Logger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { logStateChanges } from '../observability/state-log.js';
import { followUpstreamSet, wireControlMetrics } from './peer-metrics.js';
import { HealthMonitor } from '../health/index.js';
import { createHealthProbe, type HealthProbeHandle } from '../proxy/health-probe.js';
import type { RoutingRefresh, SequencedEvent } from '../proxy/routing-refresh.js';
import type { RoutingSnapshot } from '../proxy/routing-snapshot.js';
import { ServiceStates } from '../proxy/service-state.js';
import { AdminServer } from '../admin/server.js';
import { EventStreams } from '../admin/sse.js';
import { dashboardAsset, dashboardHtml } from '../dashboard/index.js';
import type { ClusterMembership } from '../model/index.js';
import type { ServiceConfig } from '../config/schema.js';
import { healthSettingsFor } from './health-settings.js';
import { buildStatus, serviceUpstreams, type StatusSources } from './status.js';
import { MembershipWrites, type ClusterPart } from './cluster-part.js';
import { createStickyPart, type StickyPart } from './sticky-part.js';
import { VERSION } from './version.js';
import { certificatesOf } from './config-files.js';
import type { CertificateSet } from '../tls/certificates.js';
import { splitHostPort } from '../lib/listen.js';
import { createDataPart, type DataPart } from './data-part.js';
import { createRoutingPart, type RoutingPart } from './routing-part.js';
import { WorkerFleet, workerCountOf, type FleetParts } from './worker-fleet.js';

export interface ReloadOutcome {
  ok: boolean;
  generation: number;
  source: string;
  at: string;
  errors?: string[];
  restartRequired?: string[];
}

export interface PeerOptions {
  readonly configFile: string;
  readonly prettyLogs?: boolean;
  /** Start the file watcher (default true). */
  readonly watch?: boolean;
}

export class Peer {
  readonly bus = new EventBus();
  readonly metrics = new Metrics({ version: VERSION });
  readonly startedAt = Date.now();
  config!: Config;
  log!: Logger;
  generation = 0;
  lastReload: ReloadOutcome | undefined;
  private accessLog: AccessLog | undefined;
  private readonly random = createSeededRandom(randomInt(2 ** 31));
  private routingPart: RoutingPart | undefined;
  private routing!: RoutingRefresh;
  private states!: ServiceStates;
  private health!: HealthMonitor;
  private probe!: HealthProbeHandle;
  /** The data plane of this process (`node.workers: 1`); undefined when workers serve it. */
  private data: DataPart | undefined;
  /** The data-plane workers (`node.workers > 1`). */
  fleet: WorkerFleet | undefined;
  private admin!: AdminServer;
  private events!: EventStreams;
  private watcher: ConfigWatcher | undefined;
  cluster: ClusterPart | undefined;
  sticky!: StickyPart;
  private writes!: MembershipWrites;
  private stopping: Promise<void> | undefined;
  private reloading: Promise<ReloadOutcome> = Promise.resolve(undefined as unknown as ReloadOutcome);
  /** Per service, what the health module was last configured from (its config object, its live members). */
  private readonly healthInputs = new Map<string, { svc: ServiceConfig; members: string }>();
  dataPort = 0;
  adminPort = 0;
  /** The HTTPS listener's port (0 without `node.tls`). */
  tlsPort = 0;
  /** The certificates the TLS listener serves (the last set that loaded). */
  certificates: CertificateSet | undefined;

  constructor(private readonly opts: PeerOptions) {}

  /** Loads the config; returns its issues instead of starting when it is invalid. */
  async start(): Promise<{ ok: true } | { ok: false; issues: ConfigIssue[] }> {
    const loaded = loadConfigFile(this.opts.configFile);
    if (!loaded.ok) return { ok: false, issues: loaded.issues };
    const cfg = loaded.config;
    const certs = certificatesOf(cfg, loaded.text, this.opts.configFile);
    if (!certs.ok) return { ok: false, issues: certs.issues };
    this.certificates = certs.certificates;
    this.config = cfg;
    this.log = createLogger({ level: cfg.node.logLevel, nodeId: cfg.node.id, pretty: this.opts.prettyLogs ?? false });
    const al = cfg.node.accessLog;
    this.accessLog = al.enabled ? createAccessLog({ nodeId: cfg.node.id, settings: al, pretty: this.opts.prettyLogs ?? false, colour: al.file === undefined && process.stdout.isTTY === true }) : undefined;
    logStateChanges(this.bus, this.log);
    this.generation = 1;
    this.metrics.configAccepted(1);
    this.lastReload = { ok: true, generation: 1, source: 'start', at: new Date().toISOString() };

    this.probe = createHealthProbe();
    this.health = new HealthMonitor({ bus: this.bus, probe: this.probe.probe, random: this.random });
    this.states = new ServiceStates((service, kind, upstream) => this.bus.emit('breaker:open', { service, kind, ...(upstream ? { upstream } : {}) }));
    // An ejection is decided inside undici's response callback: the rebuild it needs runs a turn later.
    this.health.onChange((service) => this.routing?.request({ kind: 'health', service }));
    this.bus.subscribe((ev) => {
      if (ev.type === 'outlier:ejected') {
        const d = ev.data as { service: string; upstream: string };
        this.metrics.ejectionsTotal.labels(d.service, d.upstream).inc();
      }
    });

    if (cfg.cluster) {
      const { startClusterPart } = await import('./cluster-part.js');
      // The seam between Raft and routing: a committed membership change is one refresh event, nothing more.
      this.cluster = await startClusterPart(cfg, this.bus, this.log, this.metrics, () => this.routing?.request({ kind: 'membership' }), () => this.routed());
    }
    this.sticky = createStickyPart(cfg, this.bus, this.log, this.metrics, this.random);
    this.routingPart = createRoutingPart({ metrics: this.metrics, log: this.log, sticky: this.sticky }, {
      config: () => this.config,
      generation: () => this.generation,
      membership: () => this.cluster?.membership(),
      eligibility: (service) => this.health.eligibility(service),
      prepare: (batch) => this.prepareRouting(batch),
    }, (snapshot, batch, previous) => this.routingApplied(snapshot, batch, previous));
    this.routing = this.routingPart.refresh;
    this.routingPart.start();
    // A write is answered once this peer routes by it (the rebuild runs a turn after the Raft apply).
    // With workers: once every worker routes by it too (DESIGN.md §10).
    this.writes = new MembershipWrites(this.cluster, () => this.config, () => this.routed());

    const workers = workerCountOf(cfg.node.workers);
    if (workers > 1) {
      const fleet = new WorkerFleet(workers, this.fleetParts(), this.log, this.opts.prettyLogs ?? false);
      this.fleet = fleet;
      this.metrics.enableWorkers(() => fleet.views().map((w) => ({ index: w.index, ready: w.state === 'ready' && w.pid !== undefined, restarts: w.restarts })));
    } else {
      this.data = createDataPart(cfg, this.certificates, {
        routing: this.routing, health: this.health, states: (s) => this.states.get(s), metrics: this.metrics, log: this.log, accessLog: this.accessLog, random: this.random,
      });
    }
    wireControlMetrics(this.metrics, { bus: this.bus, routing: this.routing, health: this.health, cluster: this.cluster });
    this.events = new EventStreams(this.bus);
    const running = () => this.config.node.admin;
    this.admin = new AdminServer(this.adminBackend(), this.events, {
      token: cfg.node.admin.token || undefined,
      // Read per request, so a reload's values hold for the next admin call (LIVE_KEYS, config/diff.ts).
      get maxBodyBytes() {
        return running().maxBodySize;
      },
      get allowedHosts() {
        return running().allowedHosts;
      },
    });
    const [ah, ap] = splitHostPort(cfg.node.admin.listen);
    this.adminPort = await this.admin.listen(ah, ap);
    const ports = this.fleet ? await this.fleet.start() : await this.data!.listen();
    this.dataPort = ports.dataPort;
    this.tlsPort = ports.tlsPort;
    // Serving now, by every membership change applied so far (workers: fleet.start waited for them).
    this.cluster?.routingCurrent();

    if (this.opts.watch !== false) {
      // The certificate files too: a renewal that replaces them reloads like an edit of the config.
      this.watcher = new ConfigWatcher([this.opts.configFile, ...(this.certificates?.files ?? [])], () => void this.reload('file'));
      this.watcher.start();
    }
    const dh = splitHostPort(cfg.node.listen)[0];
    this.log.info({ data: `${dh}:${this.dataPort}`, ...(cfg.node.tls ? { tls: `${cfg.node.tls.listen.replace(/:\d+$/, '')}:${this.tlsPort}` } : {}), admin: `${ah}:${this.adminPort}`, ...(this.fleet ? { workers } : {}), version: VERSION }, 'meshgate peer started');
    return { ok: true };
  }

  /** Resolves once this peer's routing, and with workers every worker's, includes every change so far. */
  private routed(): Promise<unknown> {
    return this.routing.applied().then(() => this.fleet?.synced());
  }

  /**
   * Before a build: gives the health module each service's live members and settings, only for services
   * whose config or members changed (a membership write to one service re-configures that one).
   */
  private prepareRouting(batch: readonly SequencedEvent[]): void {
    if (!batch.some((e) => e.event.kind !== 'health')) return;
    const cfg = this.config;
    const membership = this.cluster?.membership();
    this.states.configure(cfg.services);
    for (const [name, svc] of Object.entries(cfg.services)) {
      const reg = membership?.get(name);
      let members = '';
      if (reg) for (const [id, u] of reg) members += `${id}=${u.url},${u.weight},${u.state};`;
      const seen = this.healthInputs.get(name);
      if (seen?.svc === svc && seen.members === members) continue;
      this.health.setService(name, healthSettingsFor(name, svc, membership));
      this.healthInputs.set(name, { svc, members });
    }
    for (const name of this.health.serviceNames()) {
      if (name in cfg.services) continue;
      this.health.removeService(name);
      this.healthInputs.delete(name);
    }
  }

  /** After a swap: log what the build left out, follow the upstream set in metrics and sticky. */
  private routingApplied(snapshot: RoutingSnapshot, batch: readonly SequencedEvent[], previous: RoutingSnapshot | undefined): void {
    const known = new Set(previous?.problems ?? []);
    for (const p of snapshot.problems) if (!known.has(p)) this.log.error(`routing: ${p}`);
    const changed = new Set<string>();
    if (batch.some((e) => e.event.kind !== 'health')) {
      followUpstreamSet(this.metrics, this.sticky, snapshot);
      for (const name of snapshot.services.keys()) changed.add(name);
    } else {
      for (const e of batch) if (e.event.kind === 'health') changed.add(e.event.service);
    }
    for (const name of changed) this.updateHealthMetrics(name);
    this.fleet?.broadcast(snapshot, batch);
  }

  private updateHealthMetrics(service: string): void {
    const svc = this.routing.snapshot?.services.get(service);
    if (!svc) return;
    let ejected = 0;
    for (const id of svc.upstreams.keys()) {
      const h = this.health.upstreamHealth(service, id);
      this.metrics.upstreamHealthy.labels(service, id).set(h && h.health !== 'unhealthy' && !h.ejected ? 1 : 0);
      if (h?.ejected) ejected++;
    }
    this.metrics.ejectionsActive.labels(service).set(ejected);
    this.metrics.panic.labels(service).set(svc.panic ? 1 : 0);
  }

  /** Reloads the config file (file watch, SIGHUP, admin call). Serialized: one reload at a time. */
  reload(source: string): Promise<ReloadOutcome> {
    this.reloading = this.reloading.then(() => this.reloadNow(source), () => this.reloadNow(source));
    return this.reloading;
  }

  private async reloadNow(source: string): Promise<ReloadOutcome> {
    const at = new Date().toISOString();
    this.watcher?.markSeen();
    const loaded = loadConfigFile(this.opts.configFile);
    if (!loaded.ok) return this.rejectReload(source, at, loaded.issues.map(formatIssue));
    const restart = restartRequired(this.config, loaded.config);
    const cfg = restart.length ? effectiveConfig(this.config, loaded.config) : loaded.config;
    // Certificates are read again on every reload; a pair that does not load rejects the reload like an
    // invalid file, and the running pair keeps serving.
    const certs = certificatesOf(cfg, loaded.text, this.opts.configFile);
    if (!certs.ok) return this.rejectReload(source, at, certs.issues.map(formatIssue));
    const old = this.config;
    const oldCerts = this.certificates;
    this.generation++;
    this.config = cfg;
    // Workers get the certificates with the config of this generation (the broadcast follows the rebuild).
    if (certs.certificates) this.certificates = certs.certificates;
    this.routing.request({ kind: 'reload' });
    const applied = await this.routing.applied();
    if (!applied.ok) {
      this.certificates = oldCerts;
      // The schema should have refused whatever throws here; if it did not, refuse the reload like an
      // invalid file and put the old config back (never an uncaught error in a running peer).
      this.generation--;
      this.config = old;
      this.routing.request({ kind: 'reload' });
      await this.routing.applied();
      return this.rejectReload(source, at, [`${this.opts.configFile}: the new config could not be applied: ${applied.error.message}`]);
    }
    this.applyTls(cfg, certs.certificates);
    await this.fleet?.synced(); // a reload is answered once every worker routes with it
    this.metrics.configAccepted(this.generation);
    this.metrics.configReloads.labels('applied').inc();
    this.lastReload = { ok: true, generation: this.generation, source, at, ...(restart.length ? { restartRequired: restart } : {}) };
    this.bus.emit('config:reloaded', { generation: this.generation, source, restartRequired: restart }); // logged by logStateChanges
    return this.lastReload;
  }

  private rejectReload(source: string, at: string, errors: string[]): ReloadOutcome {
    this.lastReload = { ok: false, generation: this.generation, source, at, errors };
    this.metrics.configReloads.labels('rejected').inc();
    this.metrics.configLastSuccessful.set(0);
    this.bus.emit('config:rejected', { source, errors }); // logged by logStateChanges
    return this.lastReload;
  }

  /** The reloaded TLS settings on the running listener: certificates (new handshakes), redirectHttp. */
  private applyTls(cfg: Config, certs: CertificateSet | undefined): void {
    if (certs === undefined) return;
    this.certificates = certs;
    const dp = this.data?.dataPlane;
    if (dp?.tls) {
      dp.tls.setCertificates(certs);
      dp.redirectToPort = cfg.node.tls?.redirectHttp ? this.tlsPort : undefined;
    }
    this.watcher?.setFiles([this.opts.configFile, ...certs.files]);
    this.watcher?.markSeen();
  }

  private adminBackend() {
    return {
      isServing: () => (this.fleet ? this.fleet.serving : !this.data!.dataPlane.isDraining) && this.stopping === undefined,
      metrics: async () => {
        this.refreshGauges();
        // With workers: the whole peer, every worker's families summed with this process's.
        return this.fleet ? this.metrics.renderMerged(await this.fleet.metrics()) : this.metrics.render();
      },
      status: () => buildStatus(this.statusSources()),
      serviceUpstreams: (svc: string) => serviceUpstreams(this.statusSources(), svc),
      putUpstream: (svc: string, id: string, body: unknown, clientSeq: string | undefined) => this.writes.put(svc, id, body, clientSeq),
      deleteUpstream: (svc: string, id: string, clientSeq: string | undefined) => this.writes.remove(svc, id, clientSeq),
      addPeer: (body: unknown) => this.writes.addPeer(body),
      removePeer: (id: string) => this.writes.removePeer(id),
      transferLeadership: (body: unknown) => this.writes.transferLeadership(body),
      consistentRead: () => this.writes.consistentRead(),
      reload: () => this.reload('admin'),
      dashboardHtml,
      dashboardAsset,
    };
  }

  private refreshGauges(): void {
    const st = this.cluster?.status();
    if (st) {
      this.metrics.raftTerm.set(st.term);
      this.metrics.raftIsLeader.set(st.role === 'leader' ? 1 : 0);
      this.metrics.raftCommitIndex.set(st.commitIndex);
      this.metrics.raftAppliedIndex.set(st.appliedIndex);
      this.metrics.raftHasQuorum.set(st.hasQuorum ? 1 : 0);
    }
  }

  /** What the worker fleet reads from this peer (live: a reload changes them). */
  private fleetParts(): FleetParts {
    return {
      config: () => this.config,
      generation: () => this.generation,
      certificates: () => this.certificates,
      membership: () => this.cluster?.membership(),
      routing: () => this.routing.snapshot,
      health: this.health,
      bus: this.bus,
      pinStore: () => this.sticky.store(),
    };
  }

  /** What /api/v1/status reads (status.ts), read at the call. */
  private statusSources(): StatusSources {
    return {
      nodeId: this.config.node.id,
      startedAt: this.startedAt,
      generation: this.generation,
      lastReload: this.lastReload,
      snapshot: this.routing.snapshot,
      health: this.health,
      metrics: this.metrics,
      dataPlane: this.dataPlaneStatus(),
      eventClients: this.events.count,
      raft: this.cluster ? this.cluster.status() : { configured: false },
      sticky: this.sticky,
      fleet: this.fleet,
    };
  }

  /** The data plane as the status page shows it: this process's, or every worker's summed. */
  dataPlaneStatus(): { serving: boolean; inFlight: number; websockets: number } {
    if (this.fleet) return this.fleet.totals();
    const dp = this.data?.dataPlane;
    return { serving: dp !== undefined && !dp.isDraining, inFlight: dp?.requestsInFlight ?? 0, websockets: this.data?.upgrades.openCount ?? 0 };
  }

  /** Graceful stop: drain the data plane, hand leadership over, close everything. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const t0 = Date.now();
      this.watcher?.stop();
      this.log.info({ inFlight: this.dataPlaneStatus().inFlight }, 'draining');
      const drained = await this.data?.dataPlane.drain(this.config.node.drainTimeout);
      await this.fleet?.stop(this.config.node.drainTimeout);
      await this.cluster?.stop();
      await this.routingPart?.close(drained?.forced ?? false);
      await this.sticky?.close();
      this.health?.close();
      await this.probe?.close();
      await this.admin?.close();
      this.log.info({ forced: drained?.forced ?? false, ms: Date.now() - t0 }, 'stopped');
      await flushAccessLogs();
      flushLogs();
    })();
    return this.stopping;
  }
}


export type { ClusterMembership };
