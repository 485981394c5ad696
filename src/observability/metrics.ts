/**
 * Every Prometheus metric meshgate exports, declared in one place (Envoy's stats lists). The only
 * importer of prom-client. Names follow `meshgate_<area>_<what>_<unit>`.
 *
 * Hot-path cost: the per-request series of one (service, upstream) live in an UpstreamSeries as plain
 * numbers (a request does array indexing, not label hashing: prom-client's bound children still
 * hash and validate their label set on every inc/observe). The registry reads them at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/** Upper bounds of meshgate_upstream_request_duration_seconds: 1 ms to 30 s, loopback latency up to
 *  the default response timeout. */
const DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_NAME = 'meshgate_upstream_request_duration_seconds';
const DURATION_HELP = 'Time from request start to response headers from the upstream.';

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
  /** Registered in the place of a prom-client Histogram (the registry reads both the same way). */
  readonly duration = registered(this.registry, new SeriesHistogram(() => this.series.values()));
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
  // The transport's own counts since start (src/cluster/transport.ts TransportStats), e.g.
  // {counter="droppedNonMember"}: a gauge set from them, since they are counted below prom-client.
  readonly raftTransport = new Gauge({ name: 'meshgate_raft_transport_events', help: 'Raft transport counters since start: frames and connections refused, by reason.', labelNames: ['counter'] as const, registers: [this.registry] });
  // 0.25 ms to 1 s: a commit on a quiet loopback cluster takes about one fsync (0.4–0.6 ms here) plus a
  // round trip; the upper buckets catch elections and stalled disks.
  readonly raftProposeDuration = new Histogram({
    name: 'meshgate_raft_propose_duration_seconds',
    help: 'Membership write proposed on this peer until committed and applied here (Raft only, no HTTP).',
    // Fine steps up to 10 ms: a forwarded write (one more round trip) lands in 3–7 ms, and quantiles
    // are interpolated within a bucket.
    buckets: [0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075, 0.01, 0.025, 0.1, 1],
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

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const CLASS_LABELS = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * The per-request series of one (service, upstream) as plain numbers: requests by status class
 * (counted here, added to the prom-client counter at scrape time) and the duration histogram
 * (read directly by SeriesHistogram at scrape time).
 */
export class UpstreamSeries {
  /** Requests by status class (1xx..5xx) not yet added to meshgate_upstream_requests_total. */
  private readonly pendingByClass = new Float64Array(5);
  /** Observations per bucket, not cumulative; the last slot holds those above the highest bound. */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(
    readonly service: string,
    readonly upstream: string,
    private readonly connectErrors: Counter<'service' | 'upstream' | 'cause'>,
  ) {}

  countStatus(status: number): void {
    this.pendingByClass[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]! += 1;
  }

  observeSeconds(s: number): void {
    // prom-client's Histogram refuses the same values.
    if (!Number.isFinite(s)) throw new TypeError(`Value is not a valid number: ${s}`);
    let i = 0;
    while (i < DURATION_BUCKETS.length && !(s <= DURATION_BUCKETS[i]!)) i++;
    this.buckets[i]! += 1;
    this.sum += s;
    this.count++;
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

/**
 * meshgate_upstream_request_duration_seconds, read from the UpstreamSeries at scrape time. It gives
 * the registry exactly what a prom-client Histogram with labels (service, upstream) gives (same
 * value records, so the same exposition text): cumulative `_bucket` lines with `le`, then +Inf,
 * `_sum` and `_count`, for every series observed at least once.
 */
class SeriesHistogram {
  readonly name = DURATION_NAME;
  readonly help = DURATION_HELP;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['service', 'upstream'] as const;

  constructor(private readonly all: () => Iterable<UpstreamSeries>) {}

  /** Value records as prom-client's Histogram.getForPromString gives them (labels not merged). */
  getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: HistogramValue[] }> {
    const values: HistogramValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.all()) {
      if (s.count === 0) continue;
      const shared = { service: s.service, upstream: s.upstream };
      let acc = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        acc += s.buckets[i]!;
        values.push({ labels: { le: DURATION_BUCKETS[i]! }, sharedLabels: shared, value: acc, metricName: bucketName, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: bucketName, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** As prom-client's Histogram.get: the series labels merged into each record's labels. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<Omit<HistogramValue, 'sharedLabels'>> }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...v }) => ({ ...v, labels: { ...labels, ...sharedLabels } })) };
  }

  /** Registry.resetMetrics(): forget every observation. */
  reset(): void {
    for (const s of this.all()) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

/** Registers a metric object that is not a prom-client class but reads like one (name, help, type,
 *  get, getForPromString, reset: all the registry calls). */
function registered<T extends { name: string }>(registry: Registry, metric: T): T {
  registry.registerMetric(metric as unknown as Metric);
  return metric;
}

interface HistogramValue {
  labels: { le?: number | string };
  sharedLabels: { service: string; upstream: string };
  value: number;
  metricName: string;
  exemplar: null | undefined;
}
