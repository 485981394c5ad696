/**
 * Header rewriting between client and upstream, both ways.
 *
 * - Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy Keep-Alive / Proxy-Connection of RFC 2616
 *   §13.5.1) are removed in both directions, and so is every header the `Connection` header names.
 *   So a client that sent `Connection: close` never sees the backend's `keep-alive`, and framing
 *   (Transfer-Encoding) is always decided per hop.
 * - X-Forwarded-For/-Proto/-Host are set from what this peer saw. Incoming copies are replaced, not
 *   appended (Caddy's and Traefik's default): a client cannot claim another address.
 * - x-request-id is kept when the client sent a sane one (Envoy preserve_external_request_id), else
 *   generated.
 * - x-meshgate-fence is only ever set by meshgate (sticky pins); a client's copy is dropped.
 * - X-Real-IP is overwritten with the client address (the NGINX `proxy_set_header X-Real-IP
 *   $remote_addr` idiom); a client's `Forwarded` (RFC 7239) is removed and not regenerated — meshgate is
 *   the edge, so anything a client says about earlier hops is a claim nobody checked, and X-Forwarded-*
 *   already carry this hop. Like X-Forwarded-For, neither is trusted from the client.
 * - `Expect` is answered by the peer itself (forward.ts) and never forwarded.
 * - Host is never removed, even when the client lists it in `Connection`: the request was routed by it.
 * - X-Forwarded-Proto is `https` for a request that came through the TLS listener (`protoOf`), for
 *   HTTP/1.1, HTTP/2 and Upgrade requests alike.
 * - An HTTP/2 request is first seen as the HTTP/1.1 request it stands for (`http1HeadersOf`): no
 *   pseudo-header ever reaches an upstream, `:authority` becomes Host.
 * This function is the one header policy for requests: the Upgrade path calls it too.
 */
import { randomUUID } from 'node:crypto';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);
/** Set by us; a client-sent copy is dropped. `forwarded` is dropped and not set (see above). */
const OWNED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'x-meshgate-fence', 'x-real-ip', 'forwarded', 'expect']);

export const FENCE_HEADER = 'x-meshgate-fence';
const REQUEST_ID_OK = /^[\x21-\x7e]{1,200}$/;

/** A Connection value that names no header (what nearly every request and response carries). */
const CONNECTION_NAMES_NONE = /^[ \t]*(?:keep-alive|close)[ \t]*$/i;

/** Names listed in Connection headers (comma-separated, case-insensitive). */
function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && CONNECTION_NAMES_NONE.test(value)) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  let out: Set<string> | undefined;
  for (const part of joined.split(',')) {
    const name = part.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') (out ??= new Set()).add(name);
  }
  return out;
}

export interface ForwardedInfo {
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
  readonly requestId: string;
  readonly fence?: number | undefined;
}

/** `https` when the client's connection is TLS. An HTTP/2 stream's `req.socket` stands for the
 *  connection's TLS socket, so this holds for both protocols. */
export function protoOf(socket: object | null | undefined): 'http' | 'https' {
  return (socket as { encrypted?: unknown } | null | undefined)?.encrypted === true ? 'https' : 'http';
}

/**
 * An HTTP/2 request's raw header list as the HTTP/1.1 one it stands for (RFC 9113 §8.3): the
 * pseudo-headers are dropped (`:method` and `:path` are the request line, `:scheme` is the
 * connection's), `:authority` becomes `host` (§8.3.1) — a client `host` that says the same is folded
 * into it, a different one is kept, so the Host check refuses the pair as `duplicate-host` (§8.3.1: such
 * a request SHOULD be treated as malformed) — and the `cookie` fields HTTP/2 may split (§8.2.3) are
 * joined with "; ", as HTTP/1.1 allows one Cookie line (RFC 6265 §5.4).
 */
export function http1HeadersOf(h2Raw: readonly string[]): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  let cookie: string | undefined;
  for (let i = 0; i < h2Raw.length; i += 2) {
    const name = h2Raw[i]!;
    const value = h2Raw[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === 'host' && value === authority) continue;
    out.push(name, value);
  }
  // Pseudo-headers precede every other field (§8.3; nghttp2 refuses the stream otherwise), so
  // `authority` is known by the time a `host` field is compared with it above.
  const head: string[] = authority === undefined ? [] : ['host', authority];
  if (cookie !== undefined) out.push('cookie', cookie);
  return head.concat(out);
}

/** The request id for a request: the client's when sane, else a new UUID. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID_OK.test(incoming) ? incoming : randomUUID();
}

/**
 * Upstream request headers as undici's flat [name, value, ...] array, from the client's raw headers.
 * `upgrade` (the Upgrade path only): the protocol token to ask the upstream for; the hop-by-hop pair
 * `Connection: upgrade` + `Upgrade` is then set again for this hop, everything else is the same.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], connection: string | string[] | undefined, info: ForwardedInfo, upgrade?: string): string[] {
  const listed = connectionListed(connection);
  const out: string[] = [];
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host') host = rawHeaders[i + 1];
    else if (HOP_BY_HOP.has(lower) || OWNED.has(lower) || listed?.has(lower)) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push('x-forwarded-for', info.clientIp, 'x-forwarded-proto', info.proto, 'x-request-id', info.requestId, 'x-real-ip', info.clientIp);
  if (host !== undefined) out.push('x-forwarded-host', host);
  if (info.fence !== undefined) out.push(FENCE_HEADER, String(info.fence));
  if (upgrade !== undefined) out.push('connection', 'upgrade', 'upgrade', upgrade);
  return out;
}

/**
 * Client response headers as Node's flat raw-header array, from undici's raw response headers
 * (alternating name/value Buffers). Hop-by-hop headers and those the Connection header names are
 * dropped; x-request-id is added when the upstream did not send one; a sticky Set-Cookie or session
 * header is appended.
 */
export function clientResponseHeaders(
  raw: ReadonlyArray<Buffer | string>,
  requestId: string,
  setCookie?: string,
  sessionHeader?: readonly [string, string],
): string[] {
  // One pass converts each name and value once; the names a Connection header lists (rare: almost
  // always it is just keep-alive or close) are dropped from the result afterwards.
  let out: string[] = [];
  let connection: string | undefined;
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString();
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        const v = raw[i + 1]!.toString();
        connection = connection === undefined ? v : `${connection},${v}`;
      }
      continue;
    }
    if (lower === 'x-request-id') hasRequestId = true;
    out.push(name, raw[i + 1]!.toString('latin1' as never));
  }
  const listed = connectionListed(connection);
  if (listed !== undefined) {
    const kept: string[] = [];
    hasRequestId = false;
    for (let i = 0; i < out.length; i += 2) {
      const lower = out[i]!.toLowerCase();
      if (listed.has(lower)) continue;
      if (lower === 'x-request-id') hasRequestId = true;
      kept.push(out[i]!, out[i + 1]!);
    }
    out = kept;
  }
  if (!hasRequestId) out.push('x-request-id', requestId);
  if (setCookie !== undefined) out.push('set-cookie', setCookie);
  if (sessionHeader !== undefined) out.push(sessionHeader[0], sessionHeader[1]);
  return out;
}

/** RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [ ":" port ] — an IP-literal, or reg-name characters. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/**
 * Why a request's Host is unacceptable (RFC 9112 §3.2: "A server MUST respond with a 400 … to any
 * HTTP/1.1 request message that lacks a Host header field and to any request message that contains
 * more than one Host header field line or a Host header field with an invalid field value"), as the
 * `x-meshgate-reason` to answer 400 with; undefined when it is fine.
 */
export function hostProblem(rawHeaders: readonly string[], http11 = true): 'missing-host' | 'duplicate-host' | 'invalid-host' | undefined {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (value !== undefined) return 'duplicate-host';
    value = rawHeaders[i + 1]!;
  }
  if (value === undefined) return http11 ? 'missing-host' : undefined;
  return HOST_VALUE.test(value) ? undefined : 'invalid-host';
}

/** Strip the port and IPv4-mapped prefix from a socket address for X-Forwarded-For. */
export function clientIpOf(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
}
