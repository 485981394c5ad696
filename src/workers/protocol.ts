/**
 * The messages between a peer's primary and its data-plane workers (DESIGN.md §10, docs/workers.md),
 * sent over node:cluster's IPC channel with `serialization: 'advanced'` (structured clone: Maps, Sets
 * and typed arrays cross as they are).
 *
 * Routing crosses as the inputs of the one pure build (proxy/routing-snapshot.ts
 * buildRoutingSnapshot): the running config, the committed membership and each service's health
 * eligibility. Every worker runs that same build on the same inputs, so every worker routes with the
 * same snapshot; only what changed is sent (a health change sends one service's eligibility).
 *
 * Invariants:
 * - `state.seq` grows by one per broadcast; a worker applies states in order and acks each seq once
 *   its routing snapshot includes it, so an ack of seq N means "routes with everything up to N".
 * - Nothing here is on the request path except `results` (passive health outcomes, batched per
 *   worker and flushed at most every RESULT_FLUSH_MS) and, without `redis:`, `pin` calls.
 */
import type { Config } from '../config/schema.js';
import type { ClusterMembership, UpstreamSpec } from '../model/index.js';

/** A service's eligibility as it crosses (the health module's Eligibility without its functions). */
export interface EligibilityWire {
  readonly pickable: readonly UpstreamSpec[];
  readonly usable: readonly string[];
  readonly panic: boolean;
  readonly version: number;
  readonly healthy: number;
  readonly total: number;
}

/** A TLS certificate the primary loaded and checked: the worker builds its SecureContext from `options`. */
export interface CertificateWire {
  readonly files: { readonly cert: string; readonly key: string };
  readonly names: readonly string[];
  readonly notAfter: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** What changed since the previous state (the first state a worker gets is complete). */
export interface RoutingState {
  readonly seq: number;
  readonly generation: number;
  /** With every new generation. */
  readonly config?: Config;
  /** With every new generation of a config that has `node.tls`. */
  readonly certificates?: readonly CertificateWire[];
  /** When it changed; null: the peer runs no `cluster:`. */
  readonly membership?: ClusterMembership | null;
  /** The services whose eligibility changed. */
  readonly eligibility: ReadonlyArray<readonly [string, EligibilityWire]>;
}

/** One passive health outcome, run-length coded: `n` equal results in a row. */
export interface ResultRun {
  readonly service: string;
  readonly upstream: string;
  /** A CallResult (health/outlier-detector.ts). */
  readonly result: { readonly kind: string; readonly [k: string]: unknown };
  readonly n: number;
}

/** A worker's counters, sent with every heartbeat answer (the status page sums them, one second old at most). */
export interface WorkerStats {
  readonly requests: number;
  readonly inFlight: number;
  readonly websockets: number;
  readonly draining: boolean;
  /** Per upstream: [service, id, inFlight, requests, failures, responses5xx, p50 ms, p99 ms]. */
  readonly upstreams: ReadonlyArray<readonly [string, string, number, number, number, number, number | undefined, number | undefined]>;
  /** Per service, client side: [service, requests, errors5xx, cumulative duration buckets]. */
  readonly services: ReadonlyArray<readonly [string, number, number, readonly number[]]>;
  /** The sticky resolvers' stats per sticky service (sticky/resolver.ts StickyStats). */
  readonly sticky: Readonly<Record<string, unknown>>;
}

/** A worker's metrics: its registry as prom-client JSON and its hot-path histograms as plain cells. */
export interface WorkerMetrics {
  readonly registry: unknown[];
  readonly histograms: HistogramExport;
}

export interface HistogramExport {
  /** name → (label text → [per-bucket counts (not cumulative), sum, count]). */
  readonly [name: string]: ReadonlyArray<readonly [labels: string, buckets: readonly number[], sum: number, count: number]>;
}

/** The pin store operations a worker runs on the primary's memory store (no `redis:`). */
export type PinOp = 'get' | 'createIfAbsent' | 'compareAndMove' | 'renew';

export type ToWorker =
  | { readonly t: 'init'; readonly index: number; readonly count: number; readonly pretty: boolean; readonly state: RoutingState }
  | { readonly t: 'state'; readonly state: RoutingState }
  | { readonly t: 'ping'; readonly n: number }
  | { readonly t: 'metrics'; readonly id: number }
  | { readonly t: 'pin-reply'; readonly id: number; readonly ok: boolean; readonly value?: unknown; readonly error?: string }
  | { readonly t: 'drain' };

export type ToPrimary =
  /** The worker listens for messages (node:cluster's 'online' comes before its modules have loaded: a message sent then is lost). */
  | { readonly t: 'hello' }
  | { readonly t: 'ready'; readonly dataPort: number; readonly tlsPort: number }
  | { readonly t: 'applied'; readonly seq: number }
  | { readonly t: 'pong'; readonly n: number; readonly stats: WorkerStats }
  | { readonly t: 'metrics'; readonly id: number; readonly metrics: WorkerMetrics }
  | { readonly t: 'results'; readonly runs: readonly ResultRun[] }
  | { readonly t: 'event'; readonly type: string; readonly data: unknown }
  | { readonly t: 'pin'; readonly id: number; readonly op: PinOp; readonly args: readonly unknown[] }
  | { readonly t: 'failed'; readonly message: string };

/** How often a worker sends its passive health outcomes (outlier detection runs in the primary). */
export const RESULT_FLUSH_MS = 10;
/** Heartbeat: the primary pings every worker this often… */
export const PING_INTERVAL_MS = 1_000;
/** …and replaces one that has not answered for this long (hung: SIGSTOP, a busy loop). */
export const HANG_AFTER_MS = 5_000;

/** True for a message of this protocol (node:cluster also carries its own internal messages). */
export function isProtocolMessage(m: unknown): m is { t: string } {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
