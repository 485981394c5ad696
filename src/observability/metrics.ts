/**
 * Every Prometheus metric meshgate exports, declared in one place (Envoy's stats lists). The only
 * importer of prom-client. Names follow `meshgate_<area>_<what>_<unit>`.
 *
 * Hot-path cost: per-request series are bound once per (service, upstream) into an UpstreamSeries,
 * so a request does array indexing, not label hashing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'meshgate_upstream_requests_total',
    help: 'Requests proxied, by service, upstream and status class (1xx..5xx).',
    labelNames: ['service', 'upstream', 'class'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'meshgate_upstream_request_duration_seconds',
    help: 'Time from request start to response headers from the upstream.',
    labelNames: ['service', 'upstream'] as const,
    // 1 ms to 30 s: loopback latency up to the default response timeout.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
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
  readonly raftTerm = new Gauge({ name: 'meshgate_raft_term', help: 'Current Raft term.', registers: [this.registry] });
  readonly raftIsLeader = new Gauge({ name: 'meshgate_raft_is_leader', help: '1 when this peer is the Raft leader.', registers: [this.registry] });
  readonly raftCommitIndex = new Gauge({ name: 'meshgate_raft_commit_index', help: 'Raft commit index.', registers: [this.registry] });
  readonly raftAppliedIndex = new Gauge({ name: 'meshgate_raft_applied_index', help: 'Raft applied index.', registers: [this.registry] });
  readonly raftHasQuorum = new Gauge({ name: 'meshgate_raft_has_quorum', help: '1 when this peer knows a leader with quorum.', registers: [this.registry] });
  // 0.25 ms to 1 s: a commit on a quiet loopback cluster takes about one fsync (0.4–0.6 ms here) plus a
  // round trip; the upper buckets catch elections and stalled disks.
  readonly raftProposeDuration = new Histogram({
    name: 'meshgate_raft_propose_duration_seconds',
    help: 'Membership write proposed on this peer until committed and applied here (Raft only, no HTTP).',
    buckets: [0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1],
    registers: [this.registry],
  });
  readonly raftWalAppendDuration = new Histogram({
    name: 'meshgate_raft_wal_append_duration_seconds',
    help: 'Durable Raft log append (one O_DSYNC write); the disk floor of every commit (etcd: wal_fsync_duration).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1],
    registers: [this.registry],
  });
  readonly stickyPins = new Counter({
    name: 'meshgate_sticky_pins_total',
    help: 'Sticky pin outcomes per request: hit, created, renewed, moved, fallback-last-known, fallback-hash, reject.',
    labelNames: ['service', 'event'] as const,
    registers: [this.registry],
  });
  readonly stickyStoreUp = new Gauge({ name: 'meshgate_sticky_store_up', help: '1 when the pin store answers within budget (breaker closed).', registers: [this.registry] });
  readonly stickyStoreDuration = new Histogram({
    name: 'meshgate_sticky_store_duration_seconds',
    help: 'Latency of pin store calls (Redis round trips), including the ones that failed.',
    // 0.1 ms to 100 ms: loopback Redis answers in well under 1 ms; the default budget is 50 ms.
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly stickyStoreErrors = new Counter({ name: 'meshgate_sticky_store_errors_total', help: 'Pin store calls that failed or ran past the budget.', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'meshgate_process_' });
  }

  /** Binds the per-request series of one upstream once. */
  bindUpstream(service: string, upstream: string): UpstreamSeries {
    const byClass = [1, 2, 3, 4, 5].map((c) => this.requests.labels(service, upstream, `${c}xx`));
    return {
      countStatus: (status: number) => byClass[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!.inc(),
      observeSeconds: this.duration.labels(service, upstream).observe.bind(this.duration.labels(service, upstream)),
      connectError: (cause: string) => this.connectErrors.labels(service, upstream, cause).inc(),
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

export interface UpstreamSeries {
  countStatus(status: number): void;
  observeSeconds(s: number): void;
  connectError(cause: string): void;
}
