/**
 * How meshgate dials an https:// upstream (DESIGN.md §9 `upstreamTls`): one definition of the TLS
 * client options, used by the data path's pools, the Upgrade (WebSocket) path and the health probes.
 *
 * Invariants:
 * - The certificate is always verified (`rejectUnauthorized: true`): against `ca` when set, else
 *   against the system's trust store (Node's bundled roots), like Envoy and Caddy, and like NGINX with
 *   `proxy_ssl_verify on`. There is no switch to turn verification off.
 * - SNI and the name verified are `serverName` when set, else the upstream URL's host; an IP-literal
 *   host sends no SNI (RFC 6066 §3) and is verified against the certificate's IP addresses. Never the
 *   client's Host header: undici would otherwise take the SNI from it (request.servername) and close
 *   the pooled connection each time two clients name different hosts.
 */
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { buildConnector } from 'undici';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';

/** The name an https upstream is verified against and sent as SNI; undefined: none (an IP host). */
export function serverNameFor(hostname: string, material: UpstreamTlsMaterial | undefined): string | undefined {
  if (material?.serverName !== undefined) return material.serverName;
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) ? undefined : host;
}

/** node:tls client options for an https upstream at `hostname`. */
export function upstreamTlsOptions(hostname: string, material: UpstreamTlsMaterial | undefined): ConnectionOptions {
  const servername = serverNameFor(hostname, material);
  return {
    ...(material?.ca !== undefined ? { ca: material.ca } : {}),
    ...(material?.cert !== undefined ? { cert: material.cert, key: material.key } : {}),
    ...(servername !== undefined ? { servername } : {}),
    rejectUnauthorized: true,
  };
}

/**
 * An undici connector (Pool or Agent `connect`) that dials https with upstreamTlsOptions, ignoring the
 * servername undici derives from the request. One per TLS material; its per-host connectors keep
 * undici's TLS session cache, so resumed handshakes still work.
 */
export function createUpstreamConnector(material: UpstreamTlsMaterial | undefined, connectTimeoutMs: number): buildConnector.connector {
  const byHost = new Map<string, buildConnector.connector>();
  return (opts, callback) => {
    let connect = byHost.get(opts.hostname);
    if (connect === undefined) {
      connect = buildConnector({ ...upstreamTlsOptions(opts.hostname, material), timeout: connectTimeoutMs });
      byHost.set(opts.hostname, connect);
    }
    connect({ ...opts, servername: undefined }, (...result) => {
      result[1]?.on('error', keepTlsFailure);
      callback(...result);
    });
  };
}

/**
 * TLS 1.3 finishes the client's side of the handshake before the server has checked the client's
 * certificate, so a refused client certificate arrives as an alert after the request was written;
 * OpenSSL reports it as an error (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED), then the socket ends,
 * and undici would report only the end ("other side closed"), a reset. Destroying the socket with
 * the alert keeps it as the request's error (registered before undici's listeners, so it runs first).
 */
function keepTlsFailure(this: Socket, err: NodeJS.ErrnoException): void {
  if (!this.destroyed && isTlsHandshakeError(err.code)) this.destroy(err);
}

/**
 * OpenSSL's verification results (X509_V_ERR_* as Node names them) and Node's own TLS errors: the
 * handshake failed, so no HTTP byte reached the upstream's application.
 */
const VERIFY_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'HOSTNAME_MISMATCH', 'EPROTO',
]);

/** True for an error code a failed TLS handshake with an upstream produces. */
export function isTlsHandshakeError(code: string | undefined): boolean {
  if (code === undefined) return false;
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || VERIFY_ERRORS.has(code);
}
