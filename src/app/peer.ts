/**
 * The composition root: builds every concrete piece of one meshgate peer, owns the start and stop
 * order, reloads, and the status the admin API and dashboard show. Nothing imports app/.
 *
 * Start order: config → logs/metrics/bus → health → router (first table) → cluster (membership) →
 * sticky → admin → data plane. Stop order is the reverse, with the data plane drained first
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
import { createAccessLog, createLogger, flushLogs, type AccessLog, type Logger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { withRequestMetrics } from '../observability/access-tee.js';
import { logStateChanges } from '../observability/state-log.js';
import { routedUpstreams, wirePeerMetrics } from './peer-metrics.js';
import { HealthMonitor } from '../health/index.js';
import { createHealthProbe, type HealthProbeHandle } from '../proxy/health-probe.js';
import { Router } from '../proxy/routing.js';
import { UpstreamPools } from '../proxy/upstream-pools.js';
import { ServiceStates } from '../proxy/service-state.js';
import { UpgradeProxy } from '../proxy/upgrade.js';
import { DataPlane } from '../proxy/server.js';
import type { StickyView } from '../proxy/sticky-view.js';
import { AdminServer } from '../admin/server.js';
import { EventStreams } from '../admin/sse.js';
import { dashboardAsset, dashboardHtml } from '../dashboard/index.js';
import type { ClusterMembership } from '../model/index.js';
import { healthSettingsFor } from './health-settings.js';
import { buildStatus, serviceUpstreams } from './status.js';
import { MembershipWrites, type ClusterPart } from './cluster-part.js';
import { createStickyPart, type StickyPart } from './sticky-part.js';
import { VERSION } from './version.js';
import { certificatesOf } from './config-files.js';
import type { CertificateSet } from '../tls/certificates.js';

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
  private readonly pools = new UpstreamPools();
  private router!: Router;
  private states!: ServiceStates;
  private health!: HealthMonitor;
  private probe!: HealthProbeHandle;
  private upgrades!: UpgradeProxy;
  private dataPlane!: DataPlane;
  private admin!: AdminServer;
  private events!: EventStreams;
  private watcher: ConfigWatcher | undefined;
  cluster: ClusterPart | undefined;
  sticky: StickyPart | undefined;
  private writes!: MembershipWrites;
  private stopping: Promise<void> | undefined;
  private reloading: Promise<ReloadOutcome> = Promise.resolve(undefined as unknown as ReloadOutcome);
  /** True inside applyConfig, which rebuilds every service itself once health is configured. */
  private applyingConfig = false;
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
    this.router = new Router(this.pools, this.metrics);
    this.metrics.inFlightSource = (set) => {
      for (const [name, svc] of this.router.table?.services ?? []) for (const [id, rt] of svc.upstreams) set(name, id, rt.inFlight);
    };
    this.router.health = this.health;
    this.states = new ServiceStates((service, kind, upstream) => this.bus.emit('breaker:open', { service, kind, ...(upstream ? { upstream } : {}) }));
    this.health.onChange((service) => {
      // During applyConfig the whole table is rebuilt right after health is configured; rebuilding
      // here too did every balancer (a 2 M-point ring at 1,000 upstreams) twice per membership write.
      if (this.applyingConfig) return;
      this.router.rebuildService(service);
      this.updateHealthMetrics(service);
    });
    this.bus.subscribe((ev) => {
      if (ev.type === 'outlier:ejected') {
        const d = ev.data as { service: string; upstream: string };
        this.metrics.ejectionsTotal.labels(d.service, d.upstream).inc();
      }
    });

    if (cfg.cluster) {
      const { startClusterPart } = await import('./cluster-part.js');
      this.cluster = await startClusterPart(cfg, this.bus, this.log, this.metrics, () => this.rebuildRouting('membership'));
    }
    this.writes = new MembershipWrites(this.cluster, () => this.config);
    this.applyConfig(cfg);

    this.sticky = await createStickyPart(cfg, this.bus, this.log, this.metrics, this.random);
    const stickyView: StickyView | undefined = this.sticky?.view(this.router, () => this.health);
    this.upgrades = new UpgradeProxy({
      router: this.router,
      states: (s) => this.states.get(s),
      metrics: this.metrics,
      log: this.log,
      accessLog: this.accessLog,
      sticky: stickyView,
      random: this.random,
    });
    this.dataPlane = new DataPlane(
      {
        router: this.router,
        states: (s) => this.states.get(s),
        metrics: this.metrics,
        log: this.log,
        accessLog: withRequestMetrics(this.metrics, this.accessLog),
        sticky: stickyView,
        maxBodyBytes: cfg.node.maxBodySize,
        bodyIdleMs: cfg.node.bodyIdleTimeout,
        requestBufferBytes: cfg.node.requestBufferSize,
        random: this.random,
      },
      this.upgrades,
      this.metrics,
      this.log,
      {
        maxHeaderBytes: cfg.node.maxHeaderSize,
        keepAliveTimeoutMs: cfg.node.keepAliveTimeout,
        headersTimeoutMs: cfg.node.headersTimeout,
        requestTimeoutMs: cfg.node.requestTimeout,
        maxHeadersCount: cfg.node.maxHeadersCount,
        maxConnections: cfg.node.maxConnections,
        bodyIdleTimeoutMs: cfg.node.bodyIdleTimeout,
      },
    );
    const tls = cfg.node.tls && this.certificates ? this.dataPlane.enableTls(this.certificates, cfg.node.tls.http2) : undefined;
    wirePeerMetrics(this.metrics, { bus: this.bus, dataServer: this.dataPlane.server, tlsServer: tls?.server, websockets: () => this.upgrades.openCount, router: this.router, health: this.health, cluster: this.cluster, sticky: this.sticky !== undefined });
    this.events = new EventStreams(this.bus);
    this.admin = new AdminServer(this.adminBackend(), this.events, {
      token: cfg.node.admin.token || undefined,
      maxBodyBytes: cfg.node.admin.maxBodySize,
      allowedHosts: cfg.node.admin.allowedHosts,
    });
    const [ah, ap] = splitHostPort(cfg.node.admin.listen);
    this.adminPort = await this.admin.listen(ah, ap);
    const [dh, dp] = splitHostPort(cfg.node.listen);
    if (tls && cfg.node.tls) {
      const [th, tp] = splitHostPort(cfg.node.tls.listen);
      this.tlsPort = await tls.listen(th, tp);
      this.dataPlane.redirectToPort = cfg.node.tls.redirectHttp ? this.tlsPort : undefined;
    }
    this.dataPort = await this.dataPlane.listen(dh, dp);

    if (this.opts.watch !== false) {
      // The certificate files too: a renewal that replaces them reloads like an edit of the config.
      this.watcher = new ConfigWatcher([this.opts.configFile, ...(this.certificates?.files ?? [])], () => void this.reload('file'));
      this.watcher.start();
    }
    this.log.info({ data: `${dh}:${this.dataPort}`, ...(tls ? { tls: `${cfg.node.tls!.listen.replace(/:\d+$/, '')}:${this.tlsPort}` } : {}), admin: `${ah}:${this.adminPort}`, version: VERSION }, 'meshgate peer started');
    return { ok: true };
  }

  /** Builds and swaps the routing table for `cfg` + current cluster membership; configures health. */
  private applyConfig(cfg: Config): void {
    const membership = this.cluster?.membership();
    this.applyingConfig = true;
    try {
      this.configureHealth(cfg, membership);
    } finally {
      this.applyingConfig = false;
    }
    this.router.apply(cfg, membership, this.generation);
    for (const p of this.router.problems) this.log.error(`routing: ${p}`);
    this.metrics.retainUpstreams(routedUpstreams(this.router));
    for (const name of Object.keys(cfg.services)) this.updateHealthMetrics(name);
  }

  private configureHealth(cfg: Config, membership: ClusterMembership | undefined): void {
    this.states.configure(cfg.services);
    for (const [name, svc] of Object.entries(cfg.services)) this.health.setService(name, healthSettingsFor(name, svc, membership));
    for (const name of this.health.serviceNames()) if (!(name in cfg.services)) this.health.removeService(name);
  }

  /** Membership changed (Raft apply): rebuild routing from the running config. */
  private rebuildRouting(why: string): void {
    if (!this.router) return;
    try {
      this.applyConfig(this.config);
    } catch (err) {
      // Called from the Raft apply path: never throw back into it (issue 13). Routing keeps its last table.
      this.log.error({ err, why }, 'routing rebuild failed; the previous routing table keeps serving');
    }
  }

  private updateHealthMetrics(service: string): void {
    const svc = this.router.table?.services.get(service);
    if (!svc) return;
    let ejected = 0;
    for (const id of svc.upstreams.keys()) {
      const h = this.health.upstreamHealth(service, id);
      this.metrics.upstreamHealthy.labels(service, id).set(h && h.health !== 'unhealthy' && !h.ejected ? 1 : 0);
      if (h?.ejected) ejected++;
    }
    this.metrics.ejectionsActive.labels(service).set(ejected);
    this.metrics.panic.labels(service).set(this.health.eligibility(service).panic ? 1 : 0);
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
    this.generation++;
    this.config = cfg;
    try {
      this.applyConfig(cfg);
    } catch (err) {
      // The schema should have refused whatever throws here; if it did not, refuse the reload like an
      // invalid file and put the old config back (never an uncaught error in a running peer).
      this.generation--;
      this.config = old;
      this.applyConfig(old);
      return this.rejectReload(source, at, [`${this.opts.configFile}: the new config could not be applied: ${(err as Error).message}`]);
    }
    this.applyTls(cfg, certs.certificates);
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
    const tls = this.dataPlane.tls;
    if (tls === undefined || certs === undefined) return;
    tls.setCertificates(certs);
    this.certificates = certs;
    this.dataPlane.redirectToPort = cfg.node.tls?.redirectHttp ? this.tlsPort : undefined;
    this.watcher?.setFiles([this.opts.configFile, ...certs.files]);
    this.watcher?.markSeen();
  }

  private adminBackend() {
    return {
      isServing: () => !this.dataPlane.isDraining && this.stopping === undefined,
      metrics: () => {
        this.refreshGauges();
        return this.metrics.render();
      },
      status: () => buildStatus(this),
      serviceUpstreams: (svc: string) => serviceUpstreams(this, svc),
      putUpstream: (svc: string, id: string, body: unknown, rid: string | undefined) => this.writes.put(svc, id, body, rid),
      deleteUpstream: (svc: string, id: string, rid: string | undefined) => this.writes.remove(svc, id, rid),
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

  /** Internals the status builder reads. */
  get internals() {
    return { router: this.router, health: this.health, dataPlane: this.dataPlane, events: this.events, upgrades: this.upgrades };
  }

  /** Graceful stop: drain the data plane, hand leadership over, close everything. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const t0 = Date.now();
      this.watcher?.stop();
      this.log.info({ inFlight: this.dataPlane?.requestsInFlight }, 'draining');
      const drained = await this.dataPlane?.drain(this.config.node.drainTimeout);
      await this.cluster?.stop();
      await this.sticky?.close();
      this.health?.close();
      await this.probe?.close();
      await this.admin?.close();
      await this.pools.closeAll(drained?.forced ?? false);
      this.log.info({ forced: drained?.forced ?? false, ms: Date.now() - t0 }, 'stopped');
      flushLogs();
    })();
    return this.stopping;
  }
}


function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return [host, Number(s.slice(i + 1))];
}

export type { ClusterMembership };
