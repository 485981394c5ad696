/**
 * The request object of an HTTP/2 stream, as the data path reads it: node:http2's compatibility request
 * (method, url, body stream, socket) whose `rawHeaders` and `headers` are the HTTP/1.1 request it stands
 * for (headers.ts `http1HeadersOf`: no pseudo-headers, `:authority` as Host, one Cookie). So routing,
 * the Host check, hashOn, sticky keys and the upstream header policy see the same request whichever
 * protocol the client spoke, and nothing else in the data path knows about HTTP/2.
 */
import { Http2ServerRequest } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import { http1HeadersOf } from './headers.js';

const RAW = Symbol('h1RawHeaders');
const HEADERS = Symbol('h1Headers');

export class H2Request extends Http2ServerRequest {
  declare [RAW]: string[] | undefined;
  declare [HEADERS]: IncomingHttpHeaders | undefined;
}

function h1Raw(req: H2Request): string[] {
  return (req[RAW] ??= http1HeadersOf(Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get!.call(req) as string[]));
}

/** node:http's shape: lower-case names; repeats joined with ", " (set-cookie kept as a list). */
function h1Headers(req: H2Request): IncomingHttpHeaders {
  let out = req[HEADERS];
  if (out !== undefined) return out;
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const raw = h1Raw(req);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const prev = headers[name];
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = `${prev}, ${value}`;
  }
  out = headers as IncomingHttpHeaders;
  req[HEADERS] = out;
  return out;
}

// Accessors on the prototype: @types/node declares these as properties, which a subclass cannot
// override with a getter in TypeScript.
Object.defineProperties(H2Request.prototype, {
  rawHeaders: { get(this: H2Request) { return h1Raw(this); }, configurable: true },
  headers: { get(this: H2Request) { return h1Headers(this); }, configurable: true },
});
