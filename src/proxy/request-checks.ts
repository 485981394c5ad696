/**
 * The checks every request gets before it is routed, on the HTTP path (server.ts) and the Upgrade
 * path (upgrade.ts) alike — one definition, so an Upgrade request cannot slip past a rule a plain
 * request is held to:
 * - more header lines than `node.maxHeadersCount` → 431 `too-many-headers` (Node, given one line of
 *   headroom in server.ts, would otherwise drop the lines past its limit without a word);
 * - a missing, duplicated or malformed Host (RFC 9112 §3.2, `hostProblem`) → 400 with the problem as
 *   the reason. Node's own Host check is off (`requireHostHeader: false`) so the answer carries one.
 */
import type { IncomingMessage } from 'node:http';
import { hostProblem } from './headers.js';

export interface RequestLimits {
  /** Header lines allowed in a request. */
  readonly maxHeadersCount: number;
}

export interface RequestProblem {
  readonly status: 400 | 431;
  /** The `x-meshgate-reason` of the answer. */
  readonly reason: string;
  readonly text: string;
}

/** Why `req` must be refused before routing, or undefined when it may go on. */
export function requestProblem(req: IncomingMessage, limits: RequestLimits): RequestProblem | undefined {
  if (req.rawHeaders.length > limits.maxHeadersCount * 2) {
    return { status: 431, reason: 'too-many-headers', text: `more than ${limits.maxHeadersCount} header lines` };
  }
  // HTTP/2 is held to HTTP/1.1's rule: its :authority (h2-request.ts presents it as Host) is required.
  const host = hostProblem(req.rawHeaders, req.httpVersionMinor === 1 || req.httpVersionMajor === 2);
  return host === undefined ? undefined : { status: 400, reason: host, text: 'bad Host header' };
}

/**
 * Whether a request has a body: a non-zero Content-Length, chunked framing, or (HTTP/2, where a body of
 * unknown length has no header) a HEADERS frame without END_STREAM.
 */
export function hasRequestBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  return req.httpVersionMajor === 2 && stream?.endAfterHeaders === false;
}
