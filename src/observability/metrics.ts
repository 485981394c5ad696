/**
 * Every Prometheus metric meshgate exports, declared in one place (Envoy's stats lists). The only
 * importer of prom-client. Names follow `meshgate_<area>_<what>_<unit>`.
 *
 * Hot-path cost: the per-request series of one (service, upstream) live in an UpstreamSeries as plain
 * numbers (a request does array indexing, not label hashing: prom-client's bound children still
 * hash and validate their label set on every inc/observe). The registry reads them at scrape time.
 *
 * Honesty rules: a family for a feature this peer does not run is not registered at all (no
 * `meshgate_raft_has_quorum 0` without `cluster:`; enableCluster/enableSticky add them); every label
 * is bounded by the config (service, upstream, a fixed set of classes/reasons; never a path or a
 * client value); the series of an upstream that left the routing snapshot are removed (retainUpstreams).
 * prom-client's default process and Node.js metrics keep their standard names (`process_*`,
 * `nodejs_*`) so stock Node.js dashboards match them.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { HistogramCells, histogramText, labelText } from './histogram-text.js';

/** Upper bounds of meshgate_upstream_request_duration_seconds: 1 ms to 30 s, loopback latency up to
 *  the default response timeout. */
const DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_NAME = 'meshgate_upstream_request_duration_seconds';
const DURATION_HELP = 'Time from request start to response headers from the upstream.';
/** Client-side: request start to the last byte handed to the client (retries and body included). */
const REQUEST_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const REQUEST_NAME = 'meshgate_request_duration_seconds';
const REQUEST_HELP = 'Client-side request duration: from the request at meshgate to the end of the response (retries and body included).';
/** The causes UpstreamSeries.connectError is called with (forward.ts classifyError minus `aborted`). */
const CONNECT_CAUSES = ['connect-failure', 'reset', 'timeout', 'malformed'] as const;

export class Metrics {
  readonly registry = new Registry();

  /** Every series bound so far, by service and upstream (like prom-client's own label map, never shrinks). */
  private readonly series = new Map<string, UpstreamSeries>();
  /** Folds the requests counted since the last scrape into the counter. */
  readonly requests: Counter<'service' | 'upstream' | 'class'> = new Counter({
    name: 'meshgate_upstream_requests_total',
    help: 'Requests proxied, by service, upstream and status class (1xx..5xx).',
    labelNames: ['service', 'upstream', 'class'] as const,
    registers: [this.registry],
    collect: () => {
      for (const s of this.series.values()) s.flushRequests(this.requests);
    },
  });
  /** Per service: client-side requests and durations (plain numbers, read at scrape time). */
  private readonly services = new Map<string, ServiceSeries>();
  readonly clientRequests: Counter<'service' | 'class'> = new Counter({
    name: 'meshgate_requests_total',
    help: 'Client requests answered, by service and status class of the answer (meshgate\'s own 502/503/504 included).',
    labelNames: ['service', 'class'] as const,
    registers: [this.registry],
    collect: () => {
      for (const s of this.services.values()) s.flush(this.clientRequests);
    },
  });
  /** Client requests by protocol and scheme (DESIGN.md §9), as four plain numbers folded in at scrape:
   *  index = (HTTP/2 ? 2 : 0) + (TLS ? 1 : 0). A series of its own rather than a label on
   *  meshgate_requests_total, so the existing series, alerts and dashboards keep their shape. */
  private readonly protocolCounts = [0, 0, 0, 0];
  readonly requestsByProtocol: Counter<'protocol' | 'scheme'> = new Counter({
    name: 'meshgate_requests_by_protocol_total',
    help: 'Client requests answered, by protocol (http1, h2) and scheme (http, https).',
    labelNames: ['protocol', 'scheme'] as const,
    registers: [this.registry],
    collect: () => {
      this.requestsByProtocol.reset();
      this.protocolCounts.forEach((n, i) => this.requestsByProtocol.inc({ protocol: i >= 2 ? 'h2' : 'http1', scheme: i % 2 === 1 ? 'https' : 'http' }, n));
    },
  });

  countProtocol(httpVersion: string | undefined, tls: boolean): void {
    this.protocolCounts[(httpVersion === '2.0' ? 2 : 0) + (tls ? 1 : 0)]!++;
  }

  /** Read at scrape time from the data path's own counters (no per-request label hashing). */
  inFlightSource: ((set: (service: string, upstream: string, value: number) => void) => void) | undefined;
  readonly inFlight: Gauge<'service' | 'upstream'> = new Gauge({
    name: 'meshgate_upstream_requests_in_flight',
    help: 'Requests in flight to each upstream from this peer.',
    labelNames: ['service', 'upstream'] as const,
    registers: [this.registry],
    collect: () => {
      this.inFlight.reset();
      this.inFlightSource?.((service, upstream, value) => this.inFlight.labels(service, upstream).set(value));
    },
  });
  readonly connectErrors = new Counter({
    name: 'meshgate_upstream_connect_errors_total',
    help: 'Failed connection attempts (refused, timeout, reset before response).',
    labelNames: ['service', 'upstream', 'cause'] as const,
    registers: [this.registry],
  });
  readonly localResponses = new Counter({
    name: 'meshgate_local_responses_total',
    help: 'Responses meshgate answered itself (400/413/431 bad request, 502/503/504), by reason.',
    labelNames: ['service', 'status', 'reason'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'meshgate_upstream_retries_total',
    help: 'Retries to another upstream, and retries refused by the budget.',
    labelNames: ['service', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly hashFallbacks = new Counter({
    name: 'meshgate_balancer_hash_key_missing_total',
    help: 'Requests to a hash balancer without the hash key (picked without the hash).',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly upstreamHealthy = new Gauge({
    name: 'meshgate_upstream_healthy',
    help: '1 when the upstream is healthy in this peer\'s view (active checks and outlier detection), else 0.',
    labelNames: ['service', 'upstream'] as const,
    registers: [this.registry],
  });
  readonly ejectionsActive = new Gauge({
    name: 'meshgate_outlier_ejections_active',
    help: 'Upstreams currently ejected by outlier detection.',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly ejectionsTotal = new Counter({
    name: 'meshgate_outlier_ejections_enforced_total',
    help: 'Ejections enforced by outlier detection.',
    labelNames: ['service', 'upstream'] as const,
    registers: [this.registry],
  });
  readonly panic = new Gauge({
    name: 'meshgate_balancer_panic',
    help: '1 while a service routes in panic mode (too few healthy upstreams: all are used).',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly breakerRejections = new Counter({
    name: 'meshgate_circuit_breaker_rejections_total',
    help: 'Requests refused by a circuit breaker (max in-flight per upstream, max pending per service).',
    labelNames: ['service', 'kind'] as const,
    registers: [this.registry],
  });
  readonly configGeneration = new Gauge({
    name: 'meshgate_config_generation',
    help: 'Generation of the config in effect (1 at start, +1 per accepted reload).',
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: 'meshgate_config_reloads_total',
    help: 'Config reload attempts by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly configLastSuccess = new Gauge({
    name: 'meshgate_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last config accepted (start or reload), as Prometheus reports its own.',
    registers: [this.registry],
  });
  readonly configLastSuccessful = new Gauge({
    name: 'meshgate_config_last_reload_successful',
    help: '1 when the last reload attempt was accepted, 0 when it was rejected (the old config keeps serving).',
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'meshgate_build_info',
    help: 'Always 1; the labels say which meshgate and Node.js this peer runs.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [this.registry],
  });
  /** Set by the peer: the data-plane listener's connection and byte counts (read at scrape time). */
  downstreamSource: (() => { open: number; received: number; sent: number }) | undefined;
  /** Set by the peer: open WebSocket (upgraded) connections. */
  websocketSource: (() => number) | undefined;
  readonly downstreamConnections: Gauge = new Gauge({
    name: 'meshgate_downstream_connections_open',
    help: 'Client connections open on the data-plane listener (WebSockets included).',
    registers: [this.registry],
    collect: () => {
      this.downstreamConnections.set(this.downstreamSource?.().open ?? 0);
    },
  });
  readonly downstreamBytes: Counter<'direction'> = new Counter({
    name: 'meshgate_downstream_bytes_total',
    help: 'Bytes read from and written to client connections (headers and bodies, WebSockets included).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
    collect: () => {
      const d = this.downstreamSource?.();
      this.downstreamBytes.reset();
      this.downstreamBytes.inc({ direction: 'received' }, d?.received ?? 0);
      this.downstreamBytes.inc({ direction: 'sent' }, d?.sent ?? 0);
    },
  });
  readonly websocketsOpen: Gauge = new Gauge({
    name: 'meshgate_websockets_open',
    help: 'WebSocket (HTTP upgrade) connections proxied right now.',
    registers: [this.registry],
    collect: () => {
      this.websocketsOpen.set(this.websocketSource?.() ?? 0);
    },
  });
  /** Set by the peer: health-check results per upstream so far (read at scrape time). */
  healthCheckSource: ((add: (service: string, upstream: string, passed: number, failed: number) => void) => void) | undefined;
  readonly healthChecks: Counter<'service' | 'upstream' | 'result'> = new Counter({
    name: 'meshgate_health_checks_total',
    help: 'Active health checks completed, by result (passed: expected status in time; failed: anything else).',
    labelNames: ['service', 'upstream', 'result'] as const,
    registers: [this.registry],
    collect: () => {
      this.healthChecks.reset();
      this.healthCheckSource?.((service, upstream, passed, failed) => {
        this.healthChecks.inc({ service, upstream, result: 'passed' }, passed);
        this.healthChecks.inc({ service, upstream, result: 'failed' }, failed);
      });
    },
  });

  // --- Raft: registered by enableCluster() only (a peer without `cluster:` has none of these). ---
  readonly raftTerm = new Gauge({ name: 'meshgate_raft_term', help: 'Current Raft term.', registers: [] });
  readonly raftIsLeader = new Gauge({ name: 'meshgate_raft_is_leader', help: '1 when this peer is the Raft leader.', registers: [] });
  readonly raftCommitIndex = new Gauge({ name: 'meshgate_raft_commit_index', help: 'Raft commit index.', registers: [] });
  readonly raftAppliedIndex = new Gauge({ name: 'meshgate_raft_applied_index', help: 'Raft applied index.', registers: [] });
  readonly raftHasQuorum = new Gauge({ name: 'meshgate_raft_has_quorum', help: '1 when this peer knows a leader with quorum.', registers: [] });
  readonly raftLeaderChanges = new Counter({
    name: 'meshgate_raft_leader_changes_total',
    help: 'Times this peer saw the Raft leader change (a new leader, or none), as etcd_server_leader_changes_seen_total.',
    registers: [],
  });
  /** Set by the peer: the Raft transport's counters (read at scrape time). */
  raftTransportSource: (() => Readonly<Record<string, number>>) | undefined;
  readonly raftTransportDropped: Counter<'reason'> = new Counter({
    name: 'meshgate_raft_transport_dropped_frames_total',
    help: 'Raft frames dropped by the peer transport, by reason (bad-mac, oversize, malformed, wrong-destination, queue-full, unknown-peer, wrong-cluster, non-member; handshake-failed, handshake-timeout and evicted-unauthenticated count connections).',
    labelNames: ['reason'] as const,
    registers: [],
    collect: () => {
      const t = this.raftTransportSource?.();
      this.raftTransportDropped.reset();
      for (const [key, reason] of TRANSPORT_DROPS) this.raftTransportDropped.inc({ reason }, t?.[key] ?? 0);
    },
  });
  readonly raftEntriesRejected = new Counter({
    name: 'meshgate_raft_entries_rejected_total',
    help: 'Committed Raft entries or snapshots this peer refused to apply (skipped; the log goes on).',
    labelNames: ['kind'] as const,
    registers: [],
  });
  // 0.25 ms to 1 s: a commit on a quiet loopback cluster takes about one fsync (0.4–0.6 ms here) plus a
  // round trip; the upper buckets catch elections and stalled disks.
  readonly raftProposeDuration = new Histogram({
    name: 'meshgate_raft_propose_duration_seconds',
    help: 'Membership write proposed on this peer until committed and applied here (Raft only, no HTTP).',
    // Fine steps up to 10 ms: a forwarded write (one more round trip) lands in 3–7 ms, and quantiles
    // are interpolated within a bucket.
    buckets: [0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075, 0.01, 0.025, 0.1, 1],
    registers: [],
  });
  readonly raftWalAppendDuration = new Histogram({
    name: 'meshgate_raft_wal_append_duration_seconds',
    help: 'Durable Raft log append (one O_DSYNC write); the disk floor of every commit (etcd: wal_fsync_duration).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1],
    registers: [],
  });
  // --- Sticky sessions: registered by enableSticky() only (no service with `sticky:`, none of these). ---
  readonly stickyPins = new Counter({
    name: 'meshgate_sticky_pins_total',
    help: 'Sticky pin outcomes per request: hit, created, renewed, moved, fallback-last-known, fallback-hash, reject.',
    labelNames: ['service', 'event'] as const,
    registers: [],
  });
  // Workers (node.workers > 1) each hold a connection: the peer's store is up only when every worker's is.
  readonly stickyStoreUp = new Gauge({ name: 'meshgate_sticky_store_up', help: '1 when the pin store answers within budget (breaker closed).', registers: [], aggregator: 'min' });
  readonly stickyStoreDuration = new Histogram({
    name: 'meshgate_sticky_store_duration_seconds',
    help: 'Latency of pin store calls (Redis round trips), including the ones that failed.',
    // 0.1 ms to 100 ms: loopback Redis answers in well under 1 ms; the default budget is 50 ms.
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [],
  });
  readonly stickyStoreErrors = new Counter({ name: 'meshgate_sticky_store_errors_total', help: 'Pin store calls that failed or ran past the budget.', registers: [] });
  readonly stickyRedisFailovers = new Counter({ name: 'meshgate_sticky_redis_failovers_total', help: 'Redis failovers this peer saw (Sentinel: a new primary address; Cluster: a replica took over slots).', registers: [] });
  readonly stickyUnreplicatedMoves = new Counter({
    name: 'meshgate_sticky_unreplicated_moves_total',
    help: 'Pin moves no Redis replica acknowledged within half the budget (WAIT 1): a failover in that window can bring the old pin and fence back.',
    registers: [],
  });
  readonly stickyRedisPrimary = new Gauge({
    name: 'meshgate_sticky_redis_primary',
    help: 'Redis primaries as this peer sees them (1 per primary): topology single | sentinel | cluster, node host:port, slots it owns (Cluster) or 16384.',
    labelNames: ['topology', 'node'] as const,
    registers: [],
    aggregator: 'max',
  });

  // --- Workers (node.workers > 1): registered by enableWorkers() only; per process, so a `worker` label. ---
  /** Set by the peer: each worker slot's state and restarts (read at scrape time). */
  workerSource: (() => ReadonlyArray<{ index: number; ready: boolean; restarts: number }>) | undefined;
  readonly workersUp: Gauge<'worker'> = new Gauge({
    name: 'meshgate_worker_up',
    help: 'Per data-plane worker (node.workers > 1): 1 while it serves, 0 while it starts, drains or is being replaced.',
    labelNames: ['worker'] as const,
    registers: [],
    collect: () => {
      for (const w of this.workerSource?.() ?? []) this.workersUp.labels(String(w.index)).set(w.ready ? 1 : 0);
    },
  });
  readonly workerRestarts: Counter<'worker'> = new Counter({
    name: 'meshgate_worker_restarts_total',
    help: 'Per data-plane worker slot: times its process was replaced (it exited or stopped answering).',
    labelNames: ['worker'] as const,
    registers: [],
    collect: () => {
      this.workerRestarts.reset();
      for (const w of this.workerSource?.() ?? []) this.workerRestarts.inc({ worker: String(w.index) }, w.restarts);
    },
  });

  private clusterOn = false;
  private stickyOn = false;

  constructor(opts: { defaultMetrics?: boolean; version?: string } = {}) {
    // No prefix: process_cpu_seconds_total, nodejs_eventloop_lag_seconds… as every Node.js dashboard expects.
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named *_total break the naming rules (`promtool check metrics` flags them); each is the
      // sum of its per-type sibling (nodejs_active_handles{type}…), which stays.
      for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(n);
    }
    this.buildInfo.labels(opts.version ?? 'unknown', process.versions.node).set(1);
    this.configLastSuccessful.set(1);
  }

  /** Registers the Raft families (the peer runs `cluster:`). Idempotent. */
  enableCluster(): void {
    if (this.clusterOn) return;
    this.clusterOn = true;
    for (const m of [this.raftTerm, this.raftIsLeader, this.raftCommitIndex, this.raftAppliedIndex, this.raftHasQuorum, this.raftLeaderChanges, this.raftTransportDropped, this.raftEntriesRejected, this.raftProposeDuration, this.raftWalAppendDuration]) {
      this.registry.registerMetric(m as Metric);
    }
  }

  /** Registers the worker families (the peer runs node.workers > 1). */
  enableWorkers(source: () => ReadonlyArray<{ index: number; ready: boolean; restarts: number }>): void {
    this.workerSource = source;
    this.registry.registerMetric(this.workersUp as Metric);
    this.registry.registerMetric(this.workerRestarts as Metric);
  }

  /** Registers the sticky-session families (some service has `sticky:`). Idempotent. */
  enableSticky(): void {
    if (this.stickyOn) return;
    this.stickyOn = true;
    for (const m of [this.stickyPins, this.stickyStoreUp, this.stickyStoreDuration, this.stickyStoreErrors, this.stickyRedisFailovers, this.stickyUnreplicatedMoves, this.stickyRedisPrimary]) this.registry.registerMetric(m as Metric);
  }

  /** A config was accepted (at start or by a reload). */
  configAccepted(generation: number, atMs = Date.now()): void {
    this.configGeneration.set(generation);
    this.configLastSuccess.set(Math.floor(atMs / 1000));
    this.configLastSuccessful.set(1);
  }

  /** One client request answered (Exchange.finish, through the access-log hook): client-side duration and class. */
  observeRequest(service: string, status: number, durationMs: number): void {
    let s = this.services.get(service);
    if (s === undefined) {
      s = new ServiceSeries(service);
      this.services.set(service, s);
    }
    s.observe(status, durationMs / 1000);
  }

  /** Client requests answered so far, every service (a worker's heartbeat reports it). */
  requestsAnswered(): number {
    let n = 0;
    for (const s of this.services.values()) n += s.cells.count;
    return n;
  }

  /** The per-request series of one upstream (the same object for the same service and upstream). */
  bindUpstream(service: string, upstream: string): UpstreamSeries {
    const key = `${service}\u0000${upstream}`;
    let s = this.series.get(key);
    if (s === undefined) {
      s = new UpstreamSeries(service, upstream, this.connectErrors);
      this.series.set(key, s);
    }
    return s;
  }

  /**
   * A service's client-side totals for the dashboard's time series: requests, 5xx answers and the
   * cumulative duration buckets (the page takes deltas between polls, as Prometheus' rate() does).
   */
  serviceTraffic(service: string): { requests: number; errors5xx: number; le: readonly number[]; buckets: number[] } {
    const s = this.services.get(service);
    if (s === undefined) return { requests: 0, errors5xx: 0, le: REQUEST_BUCKETS, buckets: REQUEST_BUCKETS.map(() => 0).concat(0) };
    let acc = 0;
    const buckets = Array.from(s.cells.buckets, (n) => (acc += n));
    return { requests: s.cells.count, errors5xx: s.answers5xx, le: REQUEST_BUCKETS, buckets };
  }

  /**
   * Removes every series of an upstream (or service) no longer in the routing snapshot, so upstream
   * churn leaves no stale series behind: `live` maps each routed service to its upstream ids.
   */
  retainUpstreams(live: ReadonlyMap<string, Iterable<string>>): void {
    const keep = new Set<string>();
    for (const [service, ids] of live) for (const id of ids) keep.add(`${service}\u0000${id}`);
    for (const [key, s] of this.series) {
      if (keep.has(key)) continue;
      this.series.delete(key);
      for (const c of CLASS_LABELS) this.requests.remove(s.service, s.upstream, c);
      for (const c of CONNECT_CAUSES) this.connectErrors.remove(s.service, s.upstream, c);
      this.ejectionsTotal.remove(s.service, s.upstream);
      this.upstreamHealthy.remove(s.service, s.upstream);
    }
    for (const [service, s] of this.services) {
      if (live.has(service)) continue;
      this.services.delete(service);
      for (const c of CLASS_LABELS) this.clientRequests.remove(s.service, c);
      this.ejectionsActive.remove(service);
      this.panic.remove(service);
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const body = await this.registry.metrics();
    const upstreams = histogramText(DURATION_NAME, DURATION_HELP, DURATION_BUCKETS, mapIter(this.series.values(), (s) => ({ labels: s.labelText, cells: s.cells })));
    const clients = histogramText(REQUEST_NAME, REQUEST_HELP, REQUEST_BUCKETS, mapIter(this.services.values(), (s) => ({ labels: s.labelText, cells: s.cells })));
    return { contentType: this.registry.contentType, body: `${body}${body.endsWith('\n') || body === '' ? '' : '\n'}${upstreams}${clients}` };
  }

  /**
   * A worker's metrics for its primary (node.workers > 1): every family it fills (the primary-only
   * ones left out, so they are not counted once per process) and its hot-path histogram cells.
   */
  async exportForPrimary(): Promise<{ registry: unknown[]; histograms: Record<string, Array<[string, number[], number, number]>> }> {
    const registry = (await this.registry.getMetricsAsJSON()).filter((m) => !PRIMARY_ONLY.has(m.name));
    const cells = (series: Iterable<{ labelText: string; cells: HistogramCells }>) =>
      [...series].filter((s) => s.cells.count > 0).map((s): [string, number[], number, number] => [s.labelText, Array.from(s.cells.buckets), s.cells.sum, s.cells.count]);
    return { registry, histograms: { [DURATION_NAME]: cells(this.series.values()), [REQUEST_NAME]: cells(this.services.values()) } };
  }

  /**
   * The whole peer's scrape (node.workers > 1): this process's families and every worker's, merged by
   * prom-client's public AggregatorRegistry.aggregate (counters and histograms summed; a gauge by the
   * aggregator it declares), and the hot-path histograms summed cell by cell.
   */
  async renderMerged(workers: ReadonlyArray<{ registry: unknown[]; histograms: Readonly<Record<string, ReadonlyArray<readonly [string, readonly number[], number, number]>>> }>): Promise<{ contentType: string; body: string }> {
    const own = await this.registry.getMetricsAsJSON();
    const merged = AggregatorRegistry.aggregate([own, ...workers.map((w) => w.registry)]);
    const body = await merged.metrics();
    const sum = (name: string, bounds: readonly number[], mine: Iterable<{ labelText: string; cells: HistogramCells }>) => {
      const by = new Map<string, HistogramCells>();
      const add = (labels: string, buckets: ArrayLike<number>, s: number, count: number) => {
        let c = by.get(labels);
        if (!c) by.set(labels, (c = new HistogramCells(bounds)));
        for (let i = 0; i < c.buckets.length; i++) c.buckets[i]! += buckets[i] ?? 0;
        c.sum += s;
        c.count += count;
      };
      for (const m of mine) add(m.labelText, m.cells.buckets, m.cells.sum, m.cells.count);
      for (const w of workers) for (const [labels, buckets, s, count] of w.histograms[name] ?? []) add(labels, buckets, s, count);
      return mapIter(by, ([labels, cells]) => ({ labels, cells }));
    };
    const upstreams = histogramText(DURATION_NAME, DURATION_HELP, DURATION_BUCKETS, sum(DURATION_NAME, DURATION_BUCKETS, this.series.values()));
    const clients = histogramText(REQUEST_NAME, REQUEST_HELP, REQUEST_BUCKETS, sum(REQUEST_NAME, REQUEST_BUCKETS, this.services.values()));
    return { contentType: this.registry.contentType, body: `${body}${body.endsWith('\n') || body === '' ? '' : '\n'}${upstreams}${clients}` };
  }

  /** Registry.resetMetrics() plus the plain-number histograms (tests). */
  resetAll(): void {
    this.registry.resetMetrics();
    for (const s of this.series.values()) s.cells.reset();
    for (const s of this.services.values()) s.cells.reset();
  }
}

/**
 * Families only a primary fills when the data plane runs in workers: build and config info, health,
 * outlier detection, panic, health checks, Raft. A worker's (unset or constant) copy is not exported.
 */
const PRIMARY_ONLY: ReadonlySet<string> = new Set([
  'meshgate_build_info', 'meshgate_config_generation', 'meshgate_config_reloads_total', 'meshgate_config_last_reload_success_timestamp_seconds',
  'meshgate_config_last_reload_successful', 'meshgate_upstream_healthy', 'meshgate_outlier_ejections_active', 'meshgate_outlier_ejections_enforced_total',
  'meshgate_balancer_panic', 'meshgate_health_checks_total',
]);

const TRANSPORT_DROPS: ReadonlyArray<readonly [string, string]> = [
  ['droppedBadMac', 'bad-mac'],
  ['droppedOversize', 'oversize'],
  ['droppedMalformed', 'malformed'],
  ['droppedWrongDestination', 'wrong-destination'],
  ['droppedQueueFull', 'queue-full'],
  ['droppedUnknownPeer', 'unknown-peer'],
  ['droppedWrongCluster', 'wrong-cluster'],
  ['droppedNonMember', 'non-member'],
  ['handshakeFailures', 'handshake-failed'],
  ['handshakeTimeouts', 'handshake-timeout'],
  ['evictedPending', 'evicted-unauthenticated'],
];

function* mapIter<T, U>(it: Iterable<T>, f: (t: T) => U): Iterable<U> {
  for (const x of it) yield f(x);
}

/** Client-side requests of one service: status classes not yet folded into the counter, and durations. */
class ServiceSeries {
  private readonly pendingByClass = new Float64Array(5);
  readonly cells = new HistogramCells(REQUEST_BUCKETS);
  readonly labelText: string;

  constructor(readonly service: string) {
    this.labelText = labelText([['service', service]]);
  }

  /** Client answers ≥ 500 so far (meshgate's own included). */
  answers5xx = 0;

  observe(status: number, seconds: number): void {
    this.pendingByClass[classIndex(status)]! += 1;
    if (status >= 500) this.answers5xx++;
    this.cells.observe(seconds);
  }

  flush(counter: Counter<'service' | 'class'>): void {
    for (let c = 0; c < 5; c++) {
      const n = this.pendingByClass[c]!;
      if (n === 0) continue;
      this.pendingByClass[c] = 0;
      counter.inc({ service: this.service, class: CLASS_LABELS[c]! }, n);
    }
  }
}

/** 1xx..5xx; a status outside 100–599 (499 client closed is 4xx) is clamped to the nearest class. */
function classIndex(status: number): number {
  return Math.min(4, Math.max(0, Math.floor(status / 100) - 1));
}

const CLASS_LABELS = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * The per-request series of one (service, upstream) as plain numbers: requests by status class
 * (counted here, added to the prom-client counter at scrape time) and the duration histogram
 * (rendered by Metrics.render at scrape time).
 */
export class UpstreamSeries {
  /** Requests by status class (1xx..5xx) not yet added to meshgate_upstream_requests_total. */
  private readonly pendingByClass = new Float64Array(5);
  /** meshgate_upstream_request_duration_seconds of this upstream. */
  readonly cells = new HistogramCells(DURATION_BUCKETS);
  readonly labelText: string;

  constructor(
    readonly service: string,
    readonly upstream: string,
    private readonly connectErrors: Counter<'service' | 'upstream' | 'cause'>,
  ) {
    this.labelText = labelText([['service', service], ['upstream', upstream]]);
  }

  /** Responses with status ≥ 500 since this series was bound (the dashboard's errors column). */
  responses5xx = 0;

  countStatus(status: number): void {
    this.pendingByClass[classIndex(status)]! += 1;
    if (status >= 500) this.responses5xx++;
  }

  observeSeconds(s: number): void {
    this.cells.observe(s);
  }

  /** Rare (a failed attempt): straight into prom-client. */
  connectError(cause: string): void {
    this.connectErrors.labels(this.service, this.upstream, cause).inc();
  }

  /** Adds the requests counted since the last call to `counter` (at scrape time). */
  flushRequests(counter: Counter<'service' | 'upstream' | 'class'>): void {
    const pending = this.pendingByClass;
    for (let c = 0; c < pending.length; c++) {
      const n = pending[c]!;
      if (n === 0) continue;
      pending[c] = 0;
      counter.inc({ service: this.service, upstream: this.upstream, class: CLASS_LABELS[c]! }, n);
    }
  }
}
