/**
 * The ioredis client for one RedisTopology (single URL, Sentinel, Cluster), with the safety options
 * of redis-connection.ts applied to each, and a watch that keeps the TopologyStatus (which node is
 * primary for what, failovers seen, last error) for status, metrics and the dashboard.
 *
 * Cluster options, each against the budget rule (no call waits past the budget, nothing is queued
 * while disconnected; research/sticky-locks.md §5.1 lists ioredis's defaults):
 *   enableOfflineQueue: false        no cluster-level queue before the slot table is known
 *   maxRedirections: 5               MOVED / ASK / TRYAGAIN hops per command (one slot migration
 *                                    costs 1–2; ioredis's 16 only lets late commands pile up)
 *   retryDelayOnFailover: 0          a closed node connection (its primary died) fails at once: the
 *                                    request takes the fallback instead of waiting out the budget in
 *                                    retries that cannot succeed before the replica is promoted
 *   retryDelayOnTryAgain: 10 ms      a multi-key lock script mid-migration (pins have one key, never TRYAGAIN)
 *   retryDelayOnClusterDown: 0       CLUSTERDOWN fails at once: the breaker and fallback take over
 *   slotsRefreshInterval: 1000 ms    find the promoted replica / new slot owners within a second even
 *                                    without a MOVED (one CLUSTER SLOTS per second per peer)
 *   slotsRefreshTimeout: 500 ms      a dead seed node does not stall the refresh for ioredis's 1 s
 *   node connections: maxRetriesPerRequest 0, commandTimeout = budget, connectTimeout, no resend
 * Sentinel: failoverDetector (subscribes to +switch-master and reconnects at once instead of waiting
 * for the old primary's socket to die), a reconnect cap of 500 ms (asking a Sentinel is cheap, and the
 * promoted replica should be found within a second of the switch), sentinelCommandTimeout = connectTimeout.
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { SCRIPTS } from './redis-scripts.js';
import { failoversBetween, nodeName, primariesOf, slotOf, type PrimaryView, type RedisTopology, type TopologyStatus } from './redis-topology.js';

export type RedisClient = Redis | Cluster;

/**
 * ioredis, loaded on first use: a peer without a Redis store never loads it (about 9 MiB of resident
 * memory per process, measured at start; it is CommonJS, so a synchronous require keeps createClient
 * synchronous).
 */
let ioredis: typeof import('ioredis') | undefined;
function lib(): typeof import('ioredis') {
  return (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis'));
}

export interface ClientSafety {
  readonly budgetMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectCapMs: number;
  readonly password?: string;
  readonly username?: string;
  /** Extra ioredis options for single / Sentinel clients (tests, TLS). Our safety options win. */
  readonly extra?: RedisOptions;
}

/** Sentinel: find the promoted replica quickly (see the header). */
const SENTINEL_RECONNECT_CAP_MS = 500;

export function backoff(cap: number, random: () => number): (times: number) => number {
  return (times) => Math.min(50 * 2 ** Math.min(Math.max(times, 1) - 1, 16), cap) + Math.floor(random() * 200);
}

function nodeOptions(s: ClientSafety): RedisOptions {
  return {
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: s.budgetMs,
    connectTimeout: s.connectTimeoutMs,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.username !== undefined ? { username: s.username } : {}),
  };
}

export function createClient(topology: RedisTopology, s: ClientSafety, random: () => number): RedisClient {
  if (topology.kind === 'cluster') {
    const opts: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      scripts: SCRIPTS,
      maxRedirections: 5,
      retryDelayOnFailover: 0,
      retryDelayOnTryAgain: 10,
      retryDelayOnClusterDown: 0,
      retryDelayOnMoved: 0,
      slotsRefreshInterval: 1000,
      slotsRefreshTimeout: 500,
      clusterRetryStrategy: backoff(s.reconnectCapMs, random),
      redisOptions: nodeOptions(s),
    };
    return new (lib().Cluster)(topology.nodes.map((n) => ({ host: n.host, port: n.port })), opts);
  }
  const base: RedisOptions = {
    ...(s.extra ?? {}),
    ...nodeOptions(s),
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    // Reconnect (to find the new primary) but never resend (2 would resend our writes).
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 1 : false),
    scripts: SCRIPTS,
  };
  if (topology.kind === 'sentinel') {
    return new (lib().Redis)({
      ...base,
      sentinels: topology.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: topology.name,
      failoverDetector: true,
      sentinelCommandTimeout: s.connectTimeoutMs,
      retryStrategy: backoff(Math.min(s.reconnectCapMs, SENTINEL_RECONNECT_CAP_MS), random),
      sentinelRetryStrategy: backoff(Math.min(s.reconnectCapMs, SENTINEL_RECONNECT_CAP_MS), random),
    });
  }
  return new (lib().Redis)(topology.url, { ...base, retryStrategy: backoff(s.reconnectCapMs, random) });
}

/**
 * Keeps a TopologyStatus from the client's events. A failover is: Cluster — a slot's new primary was
 * one of its replicas in the previous slot table; Sentinel — the client became ready on a different
 * primary address than last time. `onFailover` is called once per takeover seen.
 */
export class TopologyWatch {
  private primaries: PrimaryView[] = [];
  private failovers = 0;
  private lastFailover: TopologyStatus['lastFailover'];
  private lastError: string | undefined;
  private lastErrorAt: string | undefined;
  private table: ReadonlyArray<readonly string[] | undefined> = [];
  private lastPrimary: string | undefined;

  constructor(
    private readonly topology: RedisTopology,
    private readonly client: RedisClient,
    private readonly onFailover: (from: string, to: string) => void,
    private readonly onPrimaries: (primaries: readonly PrimaryView[]) => void = () => undefined,
  ) {
    if (topology.kind === 'single') {
      const u = new URL(topology.url);
      this.primaries = [{ node: `${u.hostname}:${u.port || '6379'}`, serves: 'all keys' }];
    }
    if (client instanceof lib().Cluster) client.on('refresh', () => this.onSlots(client.slots));
    else client.on('ready', () => this.onReady(client));
  }

  /**
   * The node serving `key` now (Cluster: the primary of its slot in ioredis' live slot table, which
   * MOVED replies keep current; '' when unknown); '' for one server or Sentinel (one primary for all).
   */
  nodeForKey(key: string): string {
    const c = this.client;
    return c instanceof lib().Cluster ? c.slots[slotOf(key)]?.[0] ?? '' : '';
  }

  noteError(message: string): void {
    this.lastError = message;
    this.lastErrorAt = new Date().toISOString();
  }

  status(): TopologyStatus {
    return {
      kind: this.topology.kind,
      status: this.client.status,
      primaries: this.primaries,
      failovers: this.failovers,
      ...(this.lastFailover ? { lastFailover: this.lastFailover } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError, lastErrorAt: this.lastErrorAt } : {}),
    };
  }

  private onSlots(slots: ReadonlyArray<readonly string[] | undefined>): void {
    // ioredis mutates its table in place on MOVED; keep our own copy to diff against.
    const next = Array.from({ length: slots.length }, (_, i) => (slots[i] ? [...slots[i]!] : undefined));
    for (const f of failoversBetween(this.table, next)) this.record(f.from, f.to);
    this.table = next;
    this.setPrimaries(primariesOf(next));
  }

  private setPrimaries(p: PrimaryView[]): void {
    const changed = JSON.stringify(p) !== JSON.stringify(this.primaries);
    this.primaries = p;
    if (changed) this.onPrimaries(p);
  }

  private onReady(client: Redis): void {
    if (this.topology.kind !== 'sentinel') return;
    const addr = client.stream?.remoteAddress;
    const port = client.stream?.remotePort;
    if (addr === undefined || port === undefined) return;
    const now = nodeName({ host: addr, port });
    if (this.lastPrimary !== undefined && this.lastPrimary !== now) this.record(this.lastPrimary, now);
    this.lastPrimary = now;
    this.setPrimaries([{ node: now, serves: `all keys (master group ${this.topology.name})` }]);
  }

  private record(from: string, to: string): void {
    this.failovers++;
    this.lastFailover = { at: new Date().toISOString(), from, to };
    this.onFailover(from, to);
  }
}
