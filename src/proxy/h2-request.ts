/**
 * The request of an HTTP/2 stream as the data path reads it — the part of node:http's IncomingMessage
 * that server.ts, forward.ts and request-body.ts use — over node:http2's core stream (no compatibility
 * request: that is a second Readable fed from the stream, a Proxy for `socket` and five listeners per
 * stream, ~10 µs a request for nothing the data path needs).
 *
 * - `rawHeaders` and `headers` are the HTTP/1.1 request the stream stands for (headers.ts
 *   `http1HeadersOf`: no pseudo-headers, `:authority` as Host, one Cookie), so routing, the Host check,
 *   hashOn, sticky keys and the upstream header policy see the same request whichever protocol the
 *   client spoke;
 * - the body is the stream itself: `on`/`off`/`pause`/`resume` go straight to it (request-body.ts is its
 *   one reader). Its 'error' (a client reset with an error code) reaches that reader, where it is the
 *   client's fault and charged to nobody; the exchange learns of the reset from the stream's 'close' in
 *   the same turn. One thing is held back: node:http2 ends the readable side of a stream the client
 *   reset with CANCEL ('aborted', then 'end', then 'close'), which would make a cut-off body look whole
 *   and send it upstream before the 'close' arrives — so 'end' is passed on only for a stream that was
 *   not aborted;
 * - `socket` is the connection's TLS socket (remote address and port, `encrypted` for X-Forwarded-Proto):
 *   whether the *stream* is gone is the response's `destroyed` (h2-response.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { IncomingHttpHeaders as H2Headers, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { http1HeadersOf } from './headers.js';

/** node:events' listener type, as the stream takes it. */
type Listener = Parameters<ServerHttp2Stream['off']>[1];

export class H2Request {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly headers: IncomingHttpHeaders;

  constructor(readonly stream: ServerHttp2Stream, h2: H2Headers, h2Raw: string[], readonly socket: Socket) {
    // nghttp2 refuses a request stream without :method and :path (RFC 9113 §8.3.1) before it is emitted.
    this.method = h2[':method']!;
    this.url = h2[':path']!;
    this.rawHeaders = http1HeadersOf(h2Raw);
    this.headers = h1Headers(this.rawHeaders);
  }

  get httpVersion(): string {
    return '2.0';
  }

  get httpVersionMajor(): number {
    return 2;
  }

  get httpVersionMinor(): number {
    return 0;
  }

  /** node:http's meaning: nothing more of the body will come (read to its end, or the stream is gone). */
  get complete(): boolean {
    const s = this.stream;
    return s.readableEnded || s.closed || s.destroyed;
  }

  /** 'end' listeners as registered on the stream (see the file comment); made for a body's reader only. */
  private ends: Map<Listener, Listener> | undefined;

  on(event: string, fn: Listener): this {
    this.stream.on(event, event === 'end' ? this.endOf(fn) : fn);
    return this;
  }

  off(event: string, fn: Listener): this {
    const wrapped = event === 'end' ? this.ends?.get(fn) : fn;
    if (wrapped !== undefined) this.stream.off(event, wrapped);
    if (event === 'end') this.ends?.delete(fn);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  private endOf(fn: Listener): Listener {
    const stream = this.stream;
    const wrapped: Listener = () => {
      if (!stream.aborted) fn();
    };
    (this.ends ??= new Map()).set(fn, wrapped);
    return wrapped;
  }
}

/** node:http's shape: lower-case names; repeats joined with ", " (set-cookie kept as a list). */
function h1Headers(raw: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const prev = headers[name];
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = `${prev}, ${value}`;
  }
  return headers as IncomingHttpHeaders;
}
