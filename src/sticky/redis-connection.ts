/**
 * RedisConnection: the one handle on Redis (with ESLint, only src/sticky/redis-*.ts may import ioredis):
 * builds the client for the configured topology (redis-client.ts: single URL, Sentinel, Cluster) and
 * runs our Lua scripts under a hard time budget, whatever the topology.
 *
 * ioredis defaults hide outages (research/sticky-locks.md §5.2–5.3, measured: a GET against a killed
 * server waits ~10.4 s, then fails; a command in flight during a crash is re-sent to the restarted,
 * empty server). So every default that queues, retries or re-sends is turned off:
 *
 *   enableOfflineQueue: false            commands while disconnected fail at once (no hidden queue)
 *   maxRetriesPerRequest: 0              no per-request retries across reconnects
 *   autoResendUnfulfilledCommands: false  nothing in flight at a disconnect is replayed after reconnect
 *   commandTimeout: budgetMs             the client itself gives up; we also race our own timer,
 *                                        because a NOSCRIPT → EVAL resend would restart ioredis's timer
 *   reconnectOnError: READONLY → 1        reconnect (to find the new primary) but never resend (not 2)
 *   retryStrategy: 50·2^(n−1) ms capped at 2 s, + 0–200 ms jitter (ioredis 6 shape, v5's 2 s cap)
 *   connectTimeout: 1000 ms              a dead host is detected in 1 s, not ioredis's 10 s
 *   enableAutoPipelining: true           commands of one tick share a write (README: +35–50 % throughput)
 *
 * (redis-client.ts applies the same options to Sentinel and Cluster clients and lists the Cluster ones.)
 *
 * Invariants: an 'error' listener is always attached (no "Unhandled error event"); every call settles
 * within its budget (plus timer lateness); a late reply after a timeout is swallowed, never unhandled;
 * errors are classified into StoreUnavailableError / StoreTimeoutError / StoreDataError.
 */
import type { RedisOptions } from 'ioredis';
import { StoreDataError, StoreTimeoutError, StoreUnavailableError } from './errors.js';
import { createClient, TopologyWatch, type RedisClient } from './redis-client.js';
import type { ScriptName } from './redis-scripts.js';
import type { RedisTopology, TopologyStatus } from './redis-topology.js';

/**
 * Default budget for one Redis call (ms). DESIGN.md §5 asks for "tens of milliseconds". Research §7
 * cites Envoy's 20 ms rate-limit RPC timeout; we take 50 ms because the timer also measures our own
 * event-loop delay, and a busy Node proxy (GC, TLS handshakes) regularly stalls 10–30 ms: at 20 ms the
 * breaker would trip on our own pauses, not on Redis. Loopback/same-AZ Redis answers in 0.1–1 ms, so
 * 50 ms is still ~50× the normal round trip.
 */
export const DEFAULT_BUDGET_MS = 50;
/** Detect a dead host quickly at connect time (research §7: 1000–2000 ms). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/** Cap of the reconnect backoff (research §7; ioredis v5's cap, measured recovery 1.8 s after restart). */
export const DEFAULT_RECONNECT_CAP_MS = 2000;

/** Pause before reconnecting a client that ioredis ended on its own (see reviveAfterEnd). */
const REVIVE_AFTER_END_MS = 100;

export interface RedisConnectionOptions {
  /** redis://[user:pass@]host:port[/db] (rediss:// for TLS). Shorthand for topology {kind:'single'}. */
  readonly url?: string;
  /** Single URL, Sentinels + master group name, or Cluster seed nodes (DESIGN.md §12). Wins over `url`. */
  readonly topology?: RedisTopology;
  /** AUTH for the data nodes (every topology; a URL may carry its own). */
  readonly password?: string;
  readonly username?: string;
  /** Extra ioredis options for single / Sentinel clients. Our safety options always win. */
  readonly redisOptions?: Omit<RedisOptions, 'enableOfflineQueue' | 'maxRetriesPerRequest' | 'autoResendUnfulfilledCommands' | 'scripts' | 'keyPrefix'>;
  /** Prefix for every key (DESIGN.md `redis.keyPrefix`); applied by us, not by ioredis. */
  readonly keyPrefix?: string;
  readonly budgetMs?: number;
  readonly connectTimeoutMs?: number;
  readonly reconnectCapMs?: number;
  /** Connection lifecycle notifications (ready / error / close / reconnecting / end). */
  readonly onEvent?: (event: { type: 'ready' | 'error' | 'close' | 'reconnecting' | 'end' | 'failover' | 'topology' | 'unreplicated'; message?: string }) => void;
}

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

export class RedisConnection {
  readonly keyPrefix: string;
  readonly budgetMs: number;
  private readonly client: RedisClient;
  private readonly watch: TopologyWatch;
  private errors = 0;
  private unreplicatedWrites = 0;
  private reviveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly replicated: boolean;
  private readonly notify: RedisConnectionOptions['onEvent'];

  constructor(opts: RedisConnectionOptions = {}) {
    this.keyPrefix = opts.keyPrefix ?? 'meshgate:';
    this.budgetMs = opts.budgetMs ?? DEFAULT_BUDGET_MS;
    const topology = topologyOf(opts);
    this.replicated = topology.kind !== 'single';
    this.client = createClient(topology, {
      budgetMs: this.budgetMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      reconnectCapMs: opts.reconnectCapMs ?? DEFAULT_RECONNECT_CAP_MS,
      password: opts.password,
      username: opts.username,
      extra: opts.redisOptions,
    }, Math.random);
    const notify = opts.onEvent;
    this.notify = notify;
    this.watch = new TopologyWatch(
      topology,
      this.client,
      (from, to) => notify?.({ type: 'failover', message: `${from} -> ${to}` }),
      () => notify?.({ type: 'topology' }),
    );
    const onError = (err: Error): void => {
      this.errors++;
      // ioredis' "Failed to refresh slots cache." (ClusterAllFailedError) carries the node error that
      // caused it: say that too, or the generic line hides a wrong password behind itself.
      const cause = (err as Error & { lastNodeError?: Error | null }).lastNodeError;
      const message = cause?.message ? `${err.message} (last node error: ${cause.message})` : err.message;
      this.watch.noteError(message);
      notify?.({ type: 'error', message });
    };
    this.client.on('error', onError);
    // Cluster: a node's own errors (wrong password, refused) come as 'node error', not 'error'.
    this.client.on('node error', (err: Error, key?: string) => onError(new Error(key ? `${key}: ${err.message}` : err.message)));
    this.client.on('ready', () => notify?.({ type: 'ready' }));
    this.client.on('close', () => notify?.({ type: 'close' }));
    this.client.on('reconnecting', () => notify?.({ type: 'reconnecting' }));
    this.client.on('end', () => {
      notify?.({ type: 'end' });
      this.reviveAfterEnd();
    });
  }

  /**
   * ioredis ends a Sentinel client for good when a failover's +switch-master arrives while it is
   * reconnecting (the failover detector closes the connector under the pending connect, which then
   * fails with "Connection is closed." and sets status `end`; seen in the Sentinel failover test under
   * load). An `end` we did not ask for is therefore followed by a fresh connect, after a short pause.
   */
  private reviveAfterEnd(): void {
    if (this.closed || this.reviveTimer) return;
    this.reviveTimer = setTimeout(() => {
      this.reviveTimer = undefined;
      if (this.closed || this.client.status !== 'end') return;
      this.client.connect().catch(() => undefined); // its errors also arrive as 'error' events
    }, REVIVE_AFTER_END_MS);
  }

  /** The node serving `key` (unprefixed) now: its Cluster slot's primary; '' for one server or Sentinel. */
  nodeFor(key: string): string {
    return this.watch.nodeForKey(this.keyPrefix + key);
  }

  /** Topology, primaries (and their slots), failovers seen, last error — for status and metrics. */
  topology(): TopologyStatus {
    return this.watch.status();
  }

  /** ioredis status: wait | connecting | connect | ready | reconnecting | close | end. */
  get status(): string {
    return this.client.status;
  }

  get connectionErrors(): number {
    return this.errors;
  }

  isReady(): boolean {
    return this.client.status === 'ready';
  }

  /** Resolve true once ready, false after `timeoutMs` (startup: serve degraded rather than block). */
  async waitReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady()) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  /** Run one of our scripts with keys (unprefixed) and args, bounded by `budgetMs`. */
  async script(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], budgetMs = this.budgetMs): Promise<unknown> {
    if (this.closed) throw new StoreUnavailableError('connection closed');
    if (!this.isReady()) throw new StoreUnavailableError(`redis not ready (${this.client.status})`);
    const fn = (this.client as unknown as Record<ScriptName, ScriptFn>)[name];
    let p: Promise<unknown>;
    try {
      p = fn.call(this.client, ...keys.map((k) => this.keyPrefix + k), ...args);
    } catch (err) {
      throw classify(err, budgetMs);
    }
    return bounded(p, budgetMs).catch((err: unknown) => {
      // Command-level refusals (CLUSTERDOWN, NOAUTH, too many redirections) are not connection
      // events, yet they are what an operator needs to see in the status.
      if (err instanceof StoreUnavailableError) this.watch.noteError(err.message);
      throw err;
    });
  }

  /**
   * A script whose effect must survive a failover (a pin move hands out fence + 1): on a replicated
   * topology (Sentinel, Cluster) it is pipelined with `WAIT 1 <half the budget>` on the same node, so
   * the call returns once a replica holds the write, or once that wait ran out. A move that only the
   * primary holds can be lost by a failover in that window, bringing the pin back with its old fence
   * (docs/sticky.md); each such write is counted (`unreplicatedWrites`, event `unreplicated`). The
   * whole call stays inside `budgetMs`. A single Redis has no replica to wait for: plain `script`.
   */
  async scriptReplicated(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], budgetMs = this.budgetMs): Promise<unknown> {
    if (!this.replicated) return this.script(name, keys, args, budgetMs);
    if (this.closed) throw new StoreUnavailableError('connection closed');
    if (!this.isReady()) throw new StoreUnavailableError(`redis not ready (${this.client.status})`);
    const waitMs = Math.max(1, Math.floor(budgetMs / 2));
    let p: Promise<unknown>;
    try {
      // One pipeline: Cluster sends it to the node that owns the key's slot, WAIT included (it has no key).
      const pipeline = this.client.pipeline() as unknown as Record<ScriptName, ScriptFn> & { wait(n: number, ms: number): unknown; exec(): Promise<[Error | null, unknown][] | null> };
      pipeline[name](...keys.map((k) => this.keyPrefix + k), ...args);
      pipeline.wait(1, waitMs);
      p = pipeline.exec();
    } catch (err) {
      throw classify(err, budgetMs);
    }
    const replies = (await bounded(p, budgetMs).catch((err: unknown) => {
      if (err instanceof StoreUnavailableError) this.watch.noteError(err.message);
      throw err;
    })) as [Error | null, unknown][] | null;
    const [script, wait] = replies ?? [];
    if (!script) throw new StoreDataError('empty pipeline reply');
    if (script[0]) throw classify(script[0], budgetMs);
    const acked = wait && !wait[0] && typeof wait[1] === 'number' ? wait[1] : 0;
    if (acked < 1) {
      this.unreplicatedWrites++;
      this.notify?.({ type: 'unreplicated', message: wait?.[0] ? wait[0].message : `no replica acknowledged within ${waitMs} ms` });
    }
    return script[1];
  }

  /** Writes through scriptReplicated that no replica acknowledged in time (see there). */
  get unreplicated(): number {
    return this.unreplicatedWrites;
  }

  /** A plain command (tests, benchmarks, admin); same budget rules. Keys are NOT prefixed. */
  async command(name: string, args: readonly (string | number)[], budgetMs = this.budgetMs): Promise<unknown> {
    if (!this.isReady()) throw new StoreUnavailableError(`redis not ready (${this.client.status})`);
    return bounded(this.client.call(name, ...args), budgetMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reviveTimer);
    if (this.client.status === 'ready') {
      try {
        await bounded(this.client.quit(), 500);
        return;
      } catch {
        // fall through to a hard disconnect
      }
    }
    this.client.disconnect(false);
  }
}

function topologyOf(opts: RedisConnectionOptions): RedisTopology {
  if (opts.topology) return opts.topology;
  const r = opts.redisOptions;
  if (r?.sentinels && r.name) return { kind: 'sentinel', sentinels: r.sentinels.map((x) => ({ host: x.host ?? '127.0.0.1', port: x.port ?? 26379 })), name: r.name };
  return { kind: 'single', url: opts.url ?? 'redis://127.0.0.1:6379' };
}

function bounded(p: Promise<unknown>, budgetMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new StoreTimeoutError(budgetMs));
    }, budgetMs);
    p.then(
      (v) => {
        if (settled) return; // late reply after the budget: ignored (the CAS scripts make it harmless)
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(classify(err, budgetMs));
      },
    );
  });
}

function classify(err: unknown, budgetMs: number): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(message)) return new StoreTimeoutError(budgetMs);
  if (/WRONGTYPE|MGBADPIN/.test(message)) return new StoreDataError(message, { cause: err });
  return new StoreUnavailableError(message, { cause: err });
}
