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
import { parseDuration, parseSize } from './duration.js';
import { didYouMean } from './suggest.js';
import { accessLogSchema } from './access-log.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (typeof ms === 'string') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: ms });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (typeof bytes === 'string') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: bytes });
    return z.NEVER;
  }
  return bytes;
});

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const hostPort = z.string().refine((s) => {
  const m = HOST_PORT.exec(s);
  return m !== null && Number(m[2]) <= 65535;
}, { message: 'expected host:port, e.g. 127.0.0.1:8080' });

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const id = z.string().regex(ID, 'expected an id of letters, digits, ".", "_" or "-" (at most 63 characters)');

const upstreamUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}, { message: 'expected an origin URL such as http://127.0.0.1:9001 (no path, query or credentials)' });

export const upstreamSchema = z.object({
  id,
  url: upstreamUrl,
  weight: z.number().int('weight must be an integer').positive('weight must be > 0').max(10_000).default(1),
  state: z.enum(['active', 'draining', 'disabled']).default('active'),
}).strict();

const HASH_ON = /^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+|query:[^&=\s]+|path|client-ip)$/;

const stickySchema = z.object({
  cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name').optional(),
  header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name').optional(),
  // 30m: a typical web session idle timeout (NGINX sticky learn uses 10m; Tomcat's session 30m).
  ttl: duration.default('30m'),
  onStoreDown: z.enum(['hash', 'reject']).default('hash'),
  // 1s local cache: bounds how long a peer may route on a pin another peer has just moved.
  cacheTtl: duration.default('1s'),
}).strict().superRefine((s, ctx) => {
  if ((s.cookie === undefined) === (s.header === undefined)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'sticky needs exactly one of cookie or header' });
  }
});

const healthCheckSchema = z.object({
  path: z.string().startsWith('/', 'path must start with /').default('/healthz'),
  // 2s / rise 2 / fall 3: HAProxy's inter 2000, rise 2, fall 3 (research/proxies.md §2).
  interval: duration.default('2s'),
  timeout: duration.default('1s'),
  healthyThreshold: z.number().int().min(1).default(2),
  unhealthyThreshold: z.number().int().min(1).default(3),
  // Envoy takes 200 only; HAProxy and Traefik 2xx–3xx. 2xx matches the issue and avoids following redirects.
  expectedStatus: z.array(z.number().int().min(100).max(599)).nonempty().optional(),
}).strict();

const outlierSchema = z.object({
  consecutive5xx: z.number().int().min(1).default(5), // Envoy consecutive_5xx
  consecutiveLocalOriginFailures: z.number().int().min(1).default(5), // Envoy consecutive_local_origin_failure
  baseEjectionTime: duration.default('30s'), // Envoy base_ejection_time
  maxEjectionTime: duration.default('300s'), // Envoy max_ejection_time
  maxEjectionPercent: z.number().min(0).max(100).default(10), // Envoy 10%; at least one host is always ejectable
}).strict();

const RETRY_ON = ['connect-failure', 'reset', 'timeout', '502', '503', '504'] as const;
const retriesSchema = z.object({
  attempts: z.number().int().min(0).max(10).default(1),
  on: z.array(z.enum(RETRY_ON)).default(['connect-failure']),
  // Envoy/Linkerd: retries may add at most 20% load on top of active requests.
  budgetPercent: z.number().min(0).max(100).default(20),
}).strict();

const timeoutsSchema = z.object({
  connect: duration.default('2s'), // between Linkerd 1s and Caddy 3s / Envoy 5s
  response: duration.default('30s'), // time to response headers; 0 disables (streaming, long polls)
  idle: duration.default('60s'), // client keep-alive idle on the listener
}).strict();

const circuitBreakerSchema = z.object({
  maxInFlight: z.number().int().min(1).default(1024), // Envoy max_requests
  maxPending: z.number().int().min(1).default(1024), // Envoy max_pending_requests
}).strict();

export const BALANCERS = ['ring-hash', 'maglev', 'least-request', 'round-robin', 'random'] as const;

export const serviceSchema = z.object({
  balancer: z.enum(BALANCERS).default('round-robin'),
  hashOn: z.string().regex(HASH_ON, 'hashOn must be header:NAME, cookie:NAME, query:NAME, path or client-ip').optional(),
  boundedLoad: z.number().min(1, 'boundedLoad must be ≥ 1 (1.25 lets no upstream exceed 125% of the mean load)').optional(),
  ringSize: z.number().int().min(16).max(8_388_608).optional(),
  maglevTableSize: z.number().int().min(7).max(5_000_011).refine(isPrime, 'maglevTableSize must be prime (Maglev §3.4)').optional(),
  peakEwma: z.boolean().default(false),
  activeRequestBias: z.number().min(0).max(10).default(1),
  slowStart: duration.default(0),
  panicThreshold: z.number().min(0).max(100).default(50), // Envoy healthy_panic_threshold
  sticky: stickySchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  outlierDetection: outlierSchema.optional(),
  circuitBreaker: circuitBreakerSchema.default({}),
  retries: retriesSchema.default({}),
  timeouts: timeoutsSchema.default({}),
  upstreams: z.array(upstreamSchema).default([]),
}).strict().superRefine((s, ctx) => {
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

const peerSchema = z.object({ id, address: hostPort }).strict();

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z.object({
  node: z.object({
    id,
    listen: hostPort,
    admin: z.object({
      listen: hostPort.default('127.0.0.1:9901'), // loopback by default: the admin API can change membership
      token: z.string().optional(),
      maxBodySize: size.default('64KiB'),
    }).strict().default({}),
    accessLog: accessLogSchema, // src/config/access-log.ts: true/false, or { format, fields, template, file }
    logLevel: z.enum(LOG_LEVELS).default('info'),
    drainTimeout: duration.default('30s'),
    maxHeaderSize: size.default('16KiB'), // Node's own default; larger → 431
    maxBodySize: size.default('100MiB'), // Content-Length above it → 413; streamed bodies cut at it
  }).strict(),
  cluster: z.object({
    listen: hostPort,
    dataDir: z.string().min(1),
    secret: z.string().min(16, 'cluster secret must be at least 16 characters'),
    bootstrap: z.array(peerSchema).default([]),
    // 15 ms: elections after 150–300 ms of silence, the Raft paper's timeouts (raft.md R-G1); failover
    // p50 ~0.2 s. PreVote and CheckQuorum keep a paused follower from disrupting a healthy leader; a peer
    // whose event loop stalls for longer (measured up to 129 ms under heavy load on 2 cores) can use 50ms.
    tickInterval: duration.default('15ms'),
  }).strict().optional(),
  redis: z.object({
    url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://').optional(),
    sentinels: z.array(z.object({ host: z.string(), port: z.number().int() }).strict()).optional(),
    name: z.string().optional(),
    password: z.string().optional(),
    keyPrefix: z.string().default('meshgate:'),
    budget: duration.default('50ms'),
  }).strict().optional(),
  routes: z.array(routeSchema).default([]),
  services: z.record(z.string().regex(ID, 'service names use letters, digits, ".", "_" or "-"'), serviceSchema).default({}),
}).strict().superRefine((c, ctx) => {
  c.routes.forEach((r, i) => {
    if (!(r.service in c.services)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['routes', i, 'service'], message: `route names unknown service "${r.service}"${didYouMean(r.service, Object.keys(c.services))}` });
    }
  });
  for (const [name, svc] of Object.entries(c.services)) {
    // Without a cluster the file is the only source of members, so an empty list can never serve.
    if (!c.cluster && svc.upstreams.length === 0) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['services', name, 'upstreams'], message: `service "${name}" has no upstreams (and no cluster to register any)` });
    }
  }
  // A peer whose id is not in cluster.bootstrap is a joiner (etcd's --initial-cluster-state existing):
  // it learns the initial voters' addresses from the list and waits to be added through the admin API.
  if (c.redis && !c.redis.url && !c.redis.sentinels) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['redis'], message: 'redis needs url, or sentinels with name' });
  }
  if (c.redis?.sentinels && !c.redis.name) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['redis', 'sentinels'], message: 'redis.sentinels needs redis.name (the master group name)' });
  }
});

export type Config = z.output<typeof configSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type RouteConfig = Config['routes'][number];

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
