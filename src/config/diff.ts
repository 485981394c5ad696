/**
 * What a reload may change in a running peer, decided in one place: RESTART_ONLY_KEYS, and LIVE_KEYS
 * (applied by the next routing snapshot, proxy/routing-snapshot.ts, or read per use). Pure.
 *
 * Decision (docs/config.md "Reload"): a reload that touches a restart-only key still applies
 * everything else, keeps the old value of those keys, and reports each one as `restartRequired` —
 * refusing the whole file would block an urgent routing fix behind an unrelated edit. Nothing is ever
 * half-applied: the routing part is swapped whole. The docs table (docs/config.md "Reload") and
 * test/unit/config/diff.test.ts read these same lists.
 */
import type { Config } from './schema.js';

export interface KeyRule {
  /** Dotted path in the config (`node.admin.listen`); the whole value under it. */
  readonly key: string;
  /** Restart-only: why a running peer cannot take a new value. Live: what takes the new value. */
  readonly why: string;
}

export const RESTART_ONLY_KEYS: readonly KeyRule[] = Object.freeze([
  { key: 'node.id', why: 'the Raft identity and log, the metrics and log labels' },
  { key: 'node.listen', why: 'the data-plane socket' },
  { key: 'node.admin.listen', why: 'the admin socket' },
  { key: 'node.admin.token', why: 'taken by the admin server at start' },
  { key: 'node.maxHeaderSize', why: "Node's HTTP parser takes it when the listener is created" },
  { key: 'node.logLevel', why: 'the logger is created at start' },
  { key: 'node.accessLog', why: 'the access-log target (file, stdout) is opened at start' },
  { key: 'node.headersTimeout', why: 'a setting of the data-plane listener' },
  { key: 'node.requestTimeout', why: 'a setting of the data-plane listener' },
  { key: 'node.keepAliveTimeout', why: 'a setting of the data-plane listener' },
  { key: 'node.maxHeadersCount', why: 'a setting of the data-plane listener' },
  { key: 'node.maxConnections', why: 'a setting of the data-plane listener' },
  { key: 'node.workers', why: 'the data-plane processes are forked at start' },
  { key: 'node.tls.listen', why: 'the TLS socket (a reload never adds or removes the TLS listener)' },
  { key: 'node.tls.http2', why: "the TLS listener's ALPN list" },
  { key: 'cluster', why: 'the Raft listener, data dir, secret and bootstrap' },
  { key: 'redis', why: 'the open connections of the sticky pin store' },
]);

/** Every other key, and what applies it: with RESTART_ONLY_KEYS, each key of the schema is in exactly one list. */
export const LIVE_KEYS: readonly KeyRule[] = Object.freeze([
  { key: 'node.admin.maxBodySize', why: 'read by the admin server per call' },
  { key: 'node.admin.allowedHosts', why: 'read by the admin server per call' },
  { key: 'node.drainTimeout', why: 'read when the drain starts' },
  { key: 'node.maxBodySize', why: 'the routing snapshot (next request)' },
  { key: 'node.bodyIdleTimeout', why: 'the routing snapshot (next request)' },
  { key: 'node.requestBufferSize', why: 'the routing snapshot (next request)' },
  { key: 'node.tls.certificates', why: 'read again and set on the TLS listener: new handshakes get them, open connections keep theirs' },
  { key: 'node.tls.minVersion', why: 'set on the TLS listener for new handshakes' },
  { key: 'node.tls.redirectHttp', why: 'read by the plain listener per request' },
  { key: 'routes', why: 'the routing snapshot (next request)' },
  { key: 'services', why: 'the routing snapshot (next request), the health checkers, the sticky resolvers' },
]);

function valueAt(c: unknown, path: readonly string[]): unknown {
  let v = c;
  for (const p of path) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[p];
  return v;
}

/** A copy of `c` with `value` at `path` (objects along the path copied, everything else shared). */
function withValueAt<T>(c: T, path: readonly string[], value: unknown): T {
  const [head, ...rest] = path;
  const obj = (c ?? {}) as Record<string, unknown>;
  const next = rest.length === 0 ? value : withValueAt(obj[head!], rest, value);
  const copy: Record<string, unknown> = { ...obj };
  if (next === undefined) delete copy[head!];
  else copy[head!] = next;
  return copy as T;
}

/** Keys whose new value differs but cannot be applied live. */
export function restartRequired(before: Config, after: Config): string[] {
  const out: string[] = [];
  for (const { key } of RESTART_ONLY_KEYS) {
    const path = key.split('.');
    if (JSON.stringify(valueAt(before, path)) !== JSON.stringify(valueAt(after, path))) out.push(key);
  }
  return out;
}

/** The config actually put in effect: the new one, with restart-only keys kept at their running values. */
export function effectiveConfig(running: Config, next: Config): Config {
  let out = next;
  for (const { key } of RESTART_ONLY_KEYS) {
    if (key.startsWith('node.tls.')) continue; // the block as a whole, below
    const path = key.split('.');
    out = withValueAt(out, path, valueAt(running, path));
  }
  return withValueAt(out, ['node', 'tls'], effectiveTls(running.node.tls, next.node.tls));
}

/**
 * A listener is never added or removed by a reload: no TLS before, none now; TLS before, the new
 * certificates and settings on the running listener (or the running ones, when the block was removed).
 */
function effectiveTls(running: Config['node']['tls'], next: Config['node']['tls']): Config['node']['tls'] {
  if (running === undefined || next === undefined) return running;
  return { ...next, listen: running.listen, http2: running.http2 };
}
