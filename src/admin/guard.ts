/**
 * Who may talk to the admin API (DESIGN.md §4, issue 13). Pure checks on request headers; the server
 * turns a refusal into a JSON error.
 *
 * - Host (every request, reads too): DNS rebinding points an attacker's name at 127.0.0.1, so a page on
 *   that name could read status, metrics and events. A Host must be an IP literal, "localhost", or a
 *   name in node.admin.allowedHosts — never whatever name a browser happened to resolve.
 * - Mutations from browsers: a page on another origin can send a "simple" cross-origin request
 *   (form POST, fetch no-cors with text/plain) without a preflight. Such a request carries
 *   `Sec-Fetch-Site: cross-site|same-site` and an `Origin` that differs from Host, and its body is never
 *   application/json; each of the three is refused. Non-browser clients (curl, scripts) send none of
 *   these headers and are unaffected.
 * - Authorization: the scheme is case-insensitive (RFC 9110 §11.1); the token is compared in constant time
 *   by the server.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface HostRules {
  /** Extra host names (node.admin.allowedHosts), compared case-insensitively, without port. */
  readonly allowedHosts: readonly string[];
}

/** The host part of a Host header ("[::1]:9901" → "::1", "Admin.Example:80" → "admin.example"). */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(1, end);
  }
  const colon = h.lastIndexOf(':');
  return (colon === -1 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

function isIpLiteral(h: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(h)) return h.split('.').every((p) => Number(p) <= 255);
  return h.includes(':') && /^[0-9a-f:.]+$/.test(h);
}

/** Why this Host is refused, or undefined when allowed. A request without Host (HTTP/1.0) carries no name to rebind. */
export function hostRefusal(host: string | undefined, rules: HostRules): string | undefined {
  if (host === undefined) return undefined;
  const name = hostName(host);
  if (isIpLiteral(name) || name === 'localhost') return undefined;
  if (rules.allowedHosts.some((a) => hostName(a) === name)) return undefined;
  return `Host ${JSON.stringify(host.slice(0, 100))} is not an address of this admin listener; add it to node.admin.allowedHosts to use that name`;
}

/** Why a mutating request looks like a cross-origin browser request, or undefined. */
export function crossOriginRefusal(headers: IncomingHttpHeaders): string | undefined {
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `cross-origin request refused (Sec-Fetch-Site: ${site.slice(0, 40)})`;
  const origin = headers.origin;
  if (typeof origin === 'string') {
    let originHost: string | undefined;
    try {
      originHost = origin === 'null' ? undefined : new URL(origin).host.toLowerCase();
    } catch {
      originHost = undefined;
    }
    if (originHost === undefined || originHost !== (headers.host ?? '').toLowerCase()) return `cross-origin request refused (Origin: ${origin.slice(0, 100)})`;
  }
  return undefined;
}

/** A body must be JSON: `application/json`, with no charset or charset=utf-8. */
export function contentTypeRefusal(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return 'a request body needs Content-Type: application/json';
  const [type, ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') return `Content-Type ${JSON.stringify(contentType.slice(0, 100))} refused: the admin API takes application/json only`;
  for (const p of params) {
    if (p.startsWith('charset=') && p !== 'charset=utf-8' && p !== 'charset="utf-8"') return `charset ${p.slice(8)} refused: JSON is UTF-8`;
  }
  return undefined;
}

/** The credentials of `Authorization: <scheme> <credentials>` when the scheme is Bearer (any case). */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s+(\S+)\s*$/.exec(header);
  return m && m[1]!.toLowerCase() === 'bearer' ? m[2] : undefined;
}
