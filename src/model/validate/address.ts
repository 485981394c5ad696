/**
 * host:port addresses. A peer address (cluster.bootstrap, POST /api/v1/cluster/peers, a conf change,
 * the transport's dialer) names a port in 1–65535; a listen address may use port 0 (the OS picks one).
 * Host: an IPv4 address or DNS name (RFC 1123 labels, 253 characters at most), or an IPv6 address in
 * brackets. Unbracketed IPv6 is refused: "::1:80" has no single reading.
 */
import { fail, ok, shown, type Checked } from './result.js';

export interface HostPort {
  /** Without brackets for IPv6 (what net.connect and server.listen take). */
  readonly host: string;
  readonly port: number;
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const ADDRESS_RULE = 'expected host:port, e.g. 127.0.0.1:7946, gw-1.internal:7946 or [::1]:7946';

function parse(s: unknown, minPort: 0 | 1): Checked<HostPort> {
  if (typeof s !== 'string') return fail(`${ADDRESS_RULE}, got ${shown(s)}`);
  const colon = s.lastIndexOf(':');
  if (colon <= 0) return fail(`${shown(s)}: ${ADDRESS_RULE}`);
  const rawHost = s.slice(0, colon);
  const rawPort = s.slice(colon + 1);
  if (!/^\d{1,5}$/.test(rawPort)) return fail(`${shown(s)}: the port must be a number in ${minPort}–65535`);
  const port = Number(rawPort);
  if (port < minPort || port > 65535) return fail(`${shown(s)}: port ${port} is out of range ${minPort}–65535`);
  let host: string;
  if (rawHost.startsWith('[')) {
    if (!rawHost.endsWith(']')) return fail(`${shown(s)}: an IPv6 host needs closing "]"`);
    host = rawHost.slice(1, -1);
    if (!IPV6.test(host) || !host.includes(':')) return fail(`${shown(s)}: ${shown(host)} is not an IPv6 address`);
  } else {
    if (rawHost.includes(':')) return fail(`${shown(s)}: write an IPv6 host in brackets, e.g. [::1]:7946`);
    host = rawHost.endsWith('.') ? rawHost.slice(0, -1) : rawHost;
    if (!isHostName(host)) {
      return fail(`${shown(s)}: ${shown(rawHost)} is not a host name or IPv4 address`);
    }
    // All digits and dots: it must be a dotted quad (a resolver reads "10.1" or "300.1.1.1" in odd ways).
    if (/^[\d.]+$/.test(host) && !isIPv4(host)) return fail(`${shown(s)}: ${shown(host)} is not an IPv4 address`);
  }
  return ok({ host, port });
}

/** A DNS name of RFC 1123 labels, 253 characters at most (no trailing dot); dotted quads pass too. */
export function isHostName(h: string): boolean {
  return h.length > 0 && h.length <= 253 && h.split('.').every((l) => LABEL.test(l));
}

export function isIPv4(h: string): boolean {
  const parts = h.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** A peer's Raft address: port 1–65535. The one parser behind the config, the admin API, the apply path and the transport. */
export const parsePeerAddress = (s: unknown): Checked<HostPort> => parse(s, 1);
/** A listen address (node.listen, node.admin.listen, cluster.listen): port 0 lets the OS choose. */
export const parseListenAddress = (s: unknown): Checked<HostPort> => parse(s, 0);

/** Loopback hosts: 127.0.0.0/8, ::1 and "localhost" (the admin API without a token is refused elsewhere). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The same checks, keeping the string (what the config and the Raft log store). */
export function checkPeerAddressString(s: unknown): Checked<string> {
  const r = parsePeerAddress(s);
  return r.ok ? ok(s as string) : r;
}

export function checkListenAddress(s: unknown): Checked<string> {
  const r = parseListenAddress(s);
  return r.ok ? ok(s as string) : r;
}
