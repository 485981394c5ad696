/**
 * The config.yaml schema (DESIGN.md §2), written once with zod. Pure: no I/O.
 *
 * Invariants:
 * - Every object is strict: an unknown key is an error, never silently ignored.
 * - Durations and sizes are parsed here; the resulting Config carries `...Ms` and `...Bytes` numbers.
 * - Cross-field rules (a route naming an unknown service, a hashOn that names nothing, duplicate
 *   upstream ids, boundedLoad without ring-hash) are checked here too, with the path of the offending
 *   value, so the loader can give its line and column.
 * Defaults are justified next to each one; docs/config.md is the reference and a test keeps the two in sync.
 */
import { z } from 'zod';
import { BALANCER_NAMES } from '../balance/index.js';
import {
  checkDuration,
  checkListenAddress,
  checkPeerAddressString,
  checkPeerId,
  checkRetryCondition,
  checkSize,
  checkStatusCode,
  checkUpstreamEntry,
  checkUpstreamTls,
  isLoopbackHost,
  MAX_WEIGHT,
  parseListenAddress,
  NAME_PATTERN,
  NAME_RULE,
  RETRY_CONDITIONS,
  type Checked,
  type DurationBounds,
  type UpstreamEntry,
  type UpstreamTlsSettings,
} from '../model/validate/index.js';
import { didYouMean } from './suggest.js';
import { withJsonHint, type JsonSchema } from './json-hint.js';
import { accessLogSchema } from './access-log.js';

/** A zod type backed by one of model/validate's checkers: the config takes exactly what the other layers take. */
function checked<T>(check: (v: unknown) => Checked<T>, hint: JsonSchema) {
  return withJsonHint(z.unknown().transform((v, ctx): T => {
    if (v === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.invalid_type, expected: 'string', received: 'undefined' });
      return z.NEVER;
    }
    const r = check(v);
    if (!r.ok) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: r.message });
      return z.NEVER;
    }
    return r.value;
  }), hint);
}

/** A duration in ms. Bounds say where 0 means "off" and where it would spin a timer (model/validate/duration.ts). */
const DURATION_HINT = { type: ['string', 'number'], description: '250ms, 2s, 5m, 1h, or milliseconds' };
const duration = (bounds: DurationBounds = {}) => checked((v) => checkDuration(v, bounds), DURATION_HINT);
/** Durations that drive a timer or a TTL: 0 would fire at once, forever. */
const positiveDuration = duration({ min: 1 });
const size = checked(checkSize, { type: ['string', 'number'], description: 'bytes, or KiB / MiB / GiB' });
const HOST_PORT_HINT = { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$' };
const hostPort = checked(checkListenAddress, HOST_PORT_HINT);
const peerAddress = checked(checkPeerAddressString, HOST_PORT_HINT);
const peerId = checked(checkPeerId, { type: 'string', pattern: NAME_PATTERN.source });

/**
 * The static upstream list, checked in one loop by model/validate's checkUpstreamEntry rather than as a
 * zod object per entry: a 200,000-upstream file spent most of its schema time in per-object zod
 * machinery. Problems still carry the path of the offending field, so the loader gives its line.
 */
const upstreamList = withJsonHint(z.unknown().transform((v, ctx): UpstreamEntry[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'upstreams must be a list' });
    return z.NEVER;
  }
  const out: UpstreamEntry[] = new Array(v.length);
  let failed = false;
  for (let i = 0; i < v.length; i++) {
    const r = checkUpstreamEntry(v[i]);
    if (r.ok) {
      out[i] = r.value;
      continue;
    }
    failed = true;
    if (r.unknownKeys) ctx.addIssue({ code: z.ZodIssueCode.unrecognized_keys, path: [i], keys: [...r.unknownKeys] });
    else if (r.field !== undefined && (v[i] as Record<string, unknown>)[r.field] === undefined) ctx.addIssue({ code: z.ZodIssueCode.invalid_type, path: [i, r.field], expected: 'string', received: 'undefined' });
    else ctx.addIssue({ code: z.ZodIssueCode.custom, path: r.field === undefined ? [i] : [i, r.field], message: r.message });
  }
  return failed ? z.NEVER : out;
}), {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      id: { type: 'string', pattern: NAME_PATTERN.source },
      url: { type: 'string', pattern: '^https?://' },
      weight: { type: 'integer', minimum: 1, maximum: MAX_WEIGHT, default: 1 },
      state: { type: 'string', enum: ['active', 'draining', 'disabled'], default: 'active' },
    },
    required: ['id', 'url'],
    additionalProperties: false,
  },
});

const HASH_ON = /^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+|query:[^&=\s]+|path|client-ip)$/;

const stickySchema = z.object({
  cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name').optional(),
  header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name').optional(),
  // 30m: a typical web session idle timeout (NGINX sticky learn uses 10m; Tomcat's session 30m).
  ttl: duration({ min: 10 }).default('30m'), // a pin renews at a third of its TTL; below 10 ms it never holds
  onStoreDown: z.enum(['hash', 'reject']).default('hash'),
  // 1s local cache: bounds how long a peer may route on a pin another peer has just moved.
  cacheTtl: duration().default('1s'), // 0: no local cache
}).strict().superRefine((s, ctx) => {
  if ((s.cookie === undefined) === (s.header === undefined)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'sticky needs exactly one of cookie or header' });
  }
});

const healthCheckSchema = z.object({
  path: z.string().startsWith('/', 'path must start with /').default('/healthz'),
  // 2s / rise 2 / fall 3: HAProxy's inter 2000, rise 2, fall 3 (research/proxies.md §2).
  interval: positiveDuration.default('2s'),
  timeout: positiveDuration.default('1s'),
  healthyThreshold: z.number().int().min(1).default(2),
  unhealthyThreshold: z.number().int().min(1).default(3),
  // Envoy takes 200 only; HAProxy and Traefik 2xx–3xx. 2xx matches the issue and avoids following redirects.
  expectedStatus: z.array(checked(checkStatusCode, { type: ['integer', 'string'] })).nonempty().optional(),
}).strict();

const outlierSchema = z.object({
  consecutive5xx: z.number().int().min(1).default(5), // Envoy consecutive_5xx
  consecutiveLocalOriginFailures: z.number().int().min(1).default(5), // Envoy consecutive_local_origin_failure
  baseEjectionTime: positiveDuration.default('30s'), // Envoy base_ejection_time
  maxEjectionTime: positiveDuration.default('300s'), // Envoy max_ejection_time
  maxEjectionPercent: z.number().min(0).max(100).default(10), // Envoy 10%; at least one host is always ejectable
}).strict();

const retriesSchema = z.object({
  attempts: z.number().int().min(0).max(10).default(1),
  // Status codes as numbers or strings: DESIGN.md §2 writes `on: [connect-failure, reset, 503]`.
  on: z.array(checked(checkRetryCondition, { type: ['string', 'integer'], enum: [...RETRY_CONDITIONS, 502, 503, 504] })).default([RETRY_CONDITIONS[0]]),
  // Envoy/Linkerd: retries may add at most 20% load on top of active requests.
  budgetPercent: z.number().min(0).max(100).default(20),
}).strict();

const timeoutsSchema = z.object({
  connect: duration().default('2s'), // between Linkerd 1s and Caddy 3s / Envoy 5s
  response: duration().default('30s'), // time to response headers; 0 disables (streaming, long polls)
  idle: duration().default('60s'), // client keep-alive idle on the listener
  // WebSocket / Upgrade requests (docs/config.md "Upgrade timeouts"): connect falls back to `connect`;
  // handshake = time to the upstream's answer (101 or not); idle = a tunnel with no byte either way.
  upgrade: z.object({
    connect: duration().optional(),
    handshake: duration().default('10s'), // a handshake is a header exchange; Envoy's route timeout is 15s
    idle: duration().default('1h'), // HAProxy's documented `timeout tunnel 1h`; 0 disables
  }).strict().default({}),
}).strict();

const circuitBreakerSchema = z.object({
  maxInFlight: z.number().int().min(1).default(1024), // Envoy max_requests
  maxPending: z.number().int().min(1).default(1024), // Envoy max_pending_requests
}).strict();

/**
 * `upstreamTls` (DESIGN.md §9), checked by model/validate's checkUpstreamTls; the files it names are
 * read and checked by the loader (config/pem-files.ts), which fills `material`.
 */
const upstreamTlsSchema = withJsonHint(z.unknown().transform((v, ctx): UpstreamTlsSettings | undefined => {
  if (v === undefined) return undefined;
  const r = checkUpstreamTls(v);
  if (r.ok) return r.value;
  if (r.unknownKeys) ctx.addIssue({ code: z.ZodIssueCode.unrecognized_keys, keys: [...r.unknownKeys] });
  else ctx.addIssue({ code: z.ZodIssueCode.custom, path: r.field === undefined ? [] : [r.field], message: r.message });
  return z.NEVER;
}), {
  type: 'object',
  description: 'TLS to https:// upstreams: omit ca for the system trust store, serverName for the URL host; cert and key together for mutual TLS',
  properties: {
    ca: { type: 'string', description: 'PEM file of trusted CA certificates' },
    serverName: { type: 'string', description: 'SNI and the name verified' },
    cert: { type: 'string', description: 'PEM client certificate (mutual TLS)' },
    key: { type: 'string', description: 'PEM client key (mutual TLS)' },
  },
  additionalProperties: false,
  dependencies: { cert: ['key'], key: ['cert'] },
});

export const serviceSchema = z.object({
  balancer: z.enum(BALANCER_NAMES).default('round-robin'),
  hashOn: z.string().regex(HASH_ON, 'hashOn must be header:NAME, cookie:NAME, query:NAME, path or client-ip').optional(),
  boundedLoad: z.number().min(1, 'boundedLoad must be ≥ 1 (1.25 lets no upstream exceed 125% of the mean load)').optional(),
  ringSize: z.number().int().min(16).max(8_388_608).optional(),
  maglevTableSize: z.number().int().min(7).max(5_000_011).refine(isPrime, 'maglevTableSize must be prime (Maglev §3.4)').optional(),
  peakEwma: z.boolean().default(false),
  activeRequestBias: z.number().min(0).max(10).default(1),
  slowStart: duration().default(0),
  panicThreshold: z.number().min(0).max(100).default(50), // Envoy healthy_panic_threshold
  sticky: stickySchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  outlierDetection: outlierSchema.optional(),
  circuitBreaker: circuitBreakerSchema.default({}),
  retries: retriesSchema.default({}),
  timeouts: timeoutsSchema.default({}),
  upstreams: upstreamList,
  upstreamTls: upstreamTlsSchema,
}).strict().superRefine((s, ctx) => {
  if (!Array.isArray(s.upstreams)) return; // the list itself was refused; its issues are reported
  const seen = new Set<string>();
  s.upstreams.forEach((u, i) => {
    if (seen.has(u.id)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['upstreams', i, 'id'], message: `duplicate upstream id "${u.id}"` });
    seen.add(u.id);
  });
  const hashing = s.balancer === 'ring-hash' || s.balancer === 'maglev';
  if (hashing && s.hashOn === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['balancer'], message: `balancer ${s.balancer} needs hashOn (header:NAME, cookie:NAME, query:NAME, path or client-ip)` });
  }
  if (!hashing && s.hashOn !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['hashOn'], message: `hashOn is only used by ring-hash and maglev, not ${s.balancer}` });
  }
  if (s.balancer === 'maglev' && s.maglevTableSize !== undefined && s.upstreams.length > s.maglevTableSize) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['maglevTableSize'], message: `maglevTableSize ${s.maglevTableSize} is smaller than the ${s.upstreams.length} upstreams` });
  }
  if (s.boundedLoad !== undefined && s.balancer !== 'ring-hash') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['boundedLoad'], message: 'boundedLoad applies to balancer ring-hash only' });
  }
});

const routeSchema = z.object({
  match: z.object({
    host: z.string().min(1).optional(),
    pathPrefix: z.string().startsWith('/', 'pathPrefix must start with /').default('/'),
  }).strict().default({}),
  service: z.string(),
}).strict();

const peerSchema = z.object({ id: peerId, address: peerAddress }).strict();

/** The most data-plane workers one peer runs (node.workers). */
export const MAX_WORKERS = 64;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z.object({
  node: z.object({
    id: peerId,
    listen: hostPort,
    admin: z.object({
      listen: hostPort.default('127.0.0.1:9901'), // loopback by default: the admin API can change membership
      token: z.string().optional(),
      maxBodySize: size.default('64KiB'),
      // Host names the admin API answers to besides its listen address and loopback (DNS rebinding, docs/admin.md).
      allowedHosts: z.array(z.string().min(1).max(253)).default([]),
    }).strict().default({}),
    accessLog: accessLogSchema, // src/config/access-log.ts: true/false, or { format, fields, template, file }
    logLevel: z.enum(LOG_LEVELS).default('info'),
    drainTimeout: duration().default('30s'),
    maxHeaderSize: size.default('16KiB'), // Node's own default; larger → 431
    maxBodySize: size.default('100MiB'), // Content-Length above it → 413; streamed bodies cut at it
    // Client side of the data plane (docs/config.md "Client connections"); anchors in the comments.
    headersTimeout: duration().default('30s'), // whole request head; NGINX client_header_timeout 60s, HAProxy http-request 10s
    requestTimeout: duration().default('300s'), // whole request incl. body, 0 = off; Node's default; Envoy request_timeout off
    bodyIdleTimeout: duration().default('60s'), // between body reads, 0 = off; NGINX client_body_timeout 60s
    requestBufferSize: size.default('16KiB'), // bodies up to it read whole before routing, 0 = off; NGINX client_body_buffer_size 16k (64-bit)
    keepAliveTimeout: duration().default('65s'), // idle client connection; NGINX keepalive_timeout 75s
    maxHeadersCount: z.number().int().min(1).max(10_000).default(100), // more → 431; Envoy max_headers_count 100
    maxConnections: z.number().int().min(1).default(10_000), // open client connections; HAProxy maxconn
    // Data-plane processes (DESIGN.md §10, docs/workers.md): 1 = one process, no IPC; `auto` = one per
    // CPU core (1 on a 1-core machine). Above 64 the primary's fan-out to every worker dominates a reload.
    workers: z.union([z.literal('auto'), z.number().int().min(1, 'node.workers must be at least 1 (or auto)').max(MAX_WORKERS, `node.workers is at most ${MAX_WORKERS} (or auto: one per CPU core)`)]).default(1),
    // HTTPS listener beside `listen` (DESIGN.md §9, docs/config.md "TLS"); omit for plain HTTP only.
    tls: z.object({
      listen: hostPort,
      // PEM files; SNI picks by each certificate's own subjectAltName DNS names, the first is the default.
      certificates: z.array(z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict()).min(1, 'node.tls.certificates needs at least one { cert, key } pair'),
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'), // Mozilla "intermediate"; TLS 1.0/1.1 never
      http2: z.boolean().default(true), // ALPN offers h2 and http/1.1 (Caddy's and Traefik's default)
      redirectHttp: z.boolean().default(false), // true: the plain listener answers 308 to the https URL
    }).strict().optional(),
  }).strict(),
  cluster: z.object({
    listen: hostPort,
    dataDir: z.string().min(1),
    secret: z.string().min(16, 'cluster secret must be at least 16 characters'),
    bootstrap: z.array(peerSchema).default([]),
    // 15 ms: elections after 150–300 ms of silence, the Raft paper's timeouts (raft.md R-G1); failover
    // p50 ~0.2 s. PreVote and CheckQuorum keep a paused follower from disrupting a healthy leader; a peer
    // whose event loop stalls for longer (measured up to 129 ms under heavy load on 2 cores) can use 50ms.
    tickInterval: positiveDuration.default('15ms'),
  }).strict().optional(),
  redis: z.object({
    // Exactly one topology (DESIGN.md §12): one server, a Sentinel-managed primary, or Redis Cluster.
    url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://').optional(),
    sentinels: z.array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict()).min(1).optional(),
    name: z.string().min(1).optional(),
    cluster: z.array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict()).min(1, 'redis.cluster needs at least one seed node').optional(),
    password: z.string().optional(),
    keyPrefix: z.string().default('meshgate:'),
    budget: positiveDuration.default('50ms'),
  }).strict().superRefine((r, ctx) => {
    const named = (['url', 'sentinels', 'cluster'] as const).filter((k) => r[k] !== undefined);
    if (named.length !== 1) {
      const message = named.length === 0
        ? 'redis needs one of url, sentinels (with name) or cluster'
        : `redis names ${named.join(' and ')}; use exactly one of url, sentinels (with name) or cluster`;
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: named.length === 0 ? [] : [named[1]!], message });
    }
    if (r.sentinels && !r.name) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['sentinels'], message: 'redis.sentinels needs redis.name (the master group name)' });
    if (r.name && !r.sentinels) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['name'], message: 'redis.name is the Sentinel master group name; it needs redis.sentinels' });
  }).optional(),
  routes: z.array(routeSchema).default([]),
  services: z.record(z.string().regex(NAME_PATTERN, `service names: ${NAME_RULE}`), serviceSchema).default({}),
}).strict().superRefine((c, ctx) => {
  c.routes.forEach((r, i) => {
    if (!(r.service in c.services)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['routes', i, 'service'], message: `route names unknown service "${r.service}"${didYouMean(r.service, Object.keys(c.services))}` });
    }
  });
  for (const [name, svc] of Object.entries(c.services)) {
    // Without a cluster the file is the only source of members, so an empty list can never serve.
    if (!c.cluster && Array.isArray(svc.upstreams) && svc.upstreams.length === 0) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['services', name, 'upstreams'], message: `service "${name}" has no upstreams (and no cluster to register any)` });
    }
  }
  // A peer whose id is not in cluster.bootstrap is a joiner (etcd's --initial-cluster-state existing):
  // it learns the initial voters' addresses from the list and waits to be added through the admin API.
  // Like Envoy's and Caddy's admin endpoints: reachable from other hosts means it needs a credential.
  const admin = parseListenAddress(c.node.admin.listen);
  if (admin.ok && !isLoopbackHost(admin.value.host) && !c.node.admin.token) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['node', 'admin', 'listen'],
      message: `node.admin.listen ${c.node.admin.listen} is not a loopback address and node.admin.token is not set: anyone who can reach it could change membership; set a token or listen on 127.0.0.1`,
    });
  }
});

export type Config = z.output<typeof configSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type UpstreamConfig = UpstreamEntry;
export type RouteConfig = Config['routes'][number];

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
