/**
 * What changed between two configs, and which of those changes need a restart. Pure.
 *
 * Listen addresses, node id, the cluster block (listen, data dir, secret, bootstrap) and the redis
 * connection cannot change in a running peer (sockets, Raft identity and log, open connections).
 * Decision (docs/config.md "Reload"): a reload that touches them still applies everything else, keeps
 * the old value of those keys, and reports each one as `restartRequired` — refusing the whole file
 * would block an urgent routing fix behind an unrelated edit. Nothing is ever half-applied: the
 * routing part is swapped whole.
 */
import type { Config } from './schema.js';

const RESTART_KEYS: Array<[string, (c: Config) => unknown]> = [
  ['node.id', (c) => c.node.id],
  ['node.listen', (c) => c.node.listen],
  ['node.admin.listen', (c) => c.node.admin.listen],
  ['node.admin.token', (c) => c.node.admin.token],
  ['node.maxHeaderSize', (c) => c.node.maxHeaderSize],
  ['node.logLevel', (c) => c.node.logLevel],
  ['node.accessLog', (c) => c.node.accessLog],
  // The data-plane listener and forwarder take these once, at start.
  ['node.maxBodySize', (c) => c.node.maxBodySize],
  ['node.headersTimeout', (c) => c.node.headersTimeout],
  ['node.requestTimeout', (c) => c.node.requestTimeout],
  ['node.bodyIdleTimeout', (c) => c.node.bodyIdleTimeout],
  ['node.requestBufferSize', (c) => c.node.requestBufferSize],
  ['node.keepAliveTimeout', (c) => c.node.keepAliveTimeout],
  ['node.maxHeadersCount', (c) => c.node.maxHeadersCount],
  ['node.maxConnections', (c) => c.node.maxConnections],
  // The TLS listener's socket and ALPN list; its certificates, minVersion and redirectHttp apply live.
  ['node.tls.listen', (c) => c.node.tls?.listen],
  ['node.tls.http2', (c) => c.node.tls?.http2],
  ['cluster', (c) => c.cluster],
  ['redis', (c) => c.redis],
];

/** Keys whose new value differs but cannot be applied live. */
export function restartRequired(before: Config, after: Config): string[] {
  const out: string[] = [];
  for (const [key, get] of RESTART_KEYS) {
    if (JSON.stringify(get(before)) !== JSON.stringify(get(after))) out.push(key);
  }
  return out;
}

/** A listener is never added or removed by a reload: no TLS before, none now; TLS before, the new
 *  certificates and settings on the running listener (or the running ones, when the block was removed). */
function effectiveTls(running: Config['node']['tls'], next: Config['node']['tls']): Config['node']['tls'] {
  if (running === undefined || next === undefined) return running;
  return { ...next, listen: running.listen, http2: running.http2 };
}

/** The config actually put in effect: the new one, with restart-only keys kept at their running values. */
export function effectiveConfig(running: Config, next: Config): Config {
  return {
    ...next,
    node: {
      ...next.node,
      id: running.node.id,
      listen: running.node.listen,
      admin: { ...next.node.admin, listen: running.node.admin.listen, token: running.node.admin.token },
      maxHeaderSize: running.node.maxHeaderSize,
      logLevel: running.node.logLevel,
      accessLog: running.node.accessLog,
      maxBodySize: running.node.maxBodySize,
      headersTimeout: running.node.headersTimeout,
      requestTimeout: running.node.requestTimeout,
      bodyIdleTimeout: running.node.bodyIdleTimeout,
      requestBufferSize: running.node.requestBufferSize,
      keepAliveTimeout: running.node.keepAliveTimeout,
      maxHeadersCount: running.node.maxHeadersCount,
      maxConnections: running.node.maxConnections,
      tls: effectiveTls(running.node.tls, next.node.tls),
    },
    cluster: running.cluster,
    redis: running.redis,
  };
}
