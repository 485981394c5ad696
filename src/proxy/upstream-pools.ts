/**
 * One undici Pool per upstream origin, shared by every service that names it and kept across
 * reloads while the origin stays in use.
 *
 * keepAliveTimeout 4 s: below Node's own server.keepAliveTimeout (5 s) and other backends' common
 * idle timeouts, so a socket we reuse is never one the backend already closed (nodejs/node#47130,
 * http-party/node-http-proxy#488). The backend's own `Keep-Alive: timeout=N` hint still lowers it
 * (keepAliveTimeoutThreshold 1 s below the hint).
 *
 * Removal: `retain(origins)` closes pools no longer named by any service; undici's close() lets
 * in-flight requests finish first and refuses new ones, which is exactly "removed upstreams finish
 * what they have, then close".
 *
 * An https origin's pool dials with the service's `upstreamTls` (upstream-tls.ts); the material's id is
 * part of the key, so a reload that changes a CA, a client certificate or the server name gets new
 * pools, while requests on the old ones finish.
 */
import { Pool } from 'undici';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';
import { createUpstreamConnector } from './upstream-tls.js';

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  /** The service's `upstreamTls` material (https origins only; undefined: system trust store, URL host). */
  readonly tls?: UpstreamTlsMaterial | undefined;
}

/** Connections per origin: enough for a 2-core peer under load; undici queues beyond it. */
const CONNECTIONS_PER_ORIGIN = 256;
const KEEP_ALIVE_MS = 4_000;

export class UpstreamPools {
  private readonly pools = new Map<string, { pool: Pool; connectTimeoutMs: number }>();

  /** Pools are keyed by origin, connect timeout and (https) TLS material: two services may name one
   *  origin differently. */
  static keyOf(origin: string, opts: PoolOptions): string {
    return isHttps(origin) ? `${origin}|${opts.connectTimeoutMs}|${opts.tls?.id ?? 'system'}` : `${origin}|${opts.connectTimeoutMs}`;
  }

  get(origin: string, opts: PoolOptions): Pool {
    const key = UpstreamPools.keyOf(origin, opts);
    const found = this.pools.get(key);
    if (found) return found.pool;
    const pool = new Pool(origin, {
      connections: CONNECTIONS_PER_ORIGIN,
      connectTimeout: opts.connectTimeoutMs,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      keepAliveTimeoutThreshold: 1_000,
      // Timeouts are per request (set by the forwarder from the service config).
      headersTimeout: 0,
      bodyTimeout: 0,
      pipelining: 1,
      ...(isHttps(origin) ? { connect: createUpstreamConnector(opts.tls, opts.connectTimeoutMs) } : {}),
    });
    this.pools.set(key, { pool, connectTimeoutMs: opts.connectTimeoutMs });
    return pool;
  }

  /** Close every pool whose key is not in `keep`; their in-flight requests finish first. */
  retain(keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, { pool }] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      closing.push(pool.close().catch(() => undefined));
    }
    return Promise.all(closing).then(() => undefined);
  }

  /** Close every pool; in-flight requests finish unless `force`. */
  async closeAll(force = false): Promise<void> {
    const all = [...this.pools.values()].map(({ pool }) => (force ? pool.destroy() : pool.close()).catch(() => undefined));
    this.pools.clear();
    await Promise.all(all);
  }

  get size(): number {
    return this.pools.size;
  }
}

function isHttps(origin: string): boolean {
  return origin.length > 8 && origin.slice(0, 8).toLowerCase() === 'https://';
}
