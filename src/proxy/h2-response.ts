/**
 * The answer of an HTTP/2 stream as the data path writes it: the part of node:http's ServerResponse
 * that forward.ts (Exchange, writeLocal) and server.ts use, over node:http2's core stream — `respond()`
 * for the head, the stream's own write/end for the body — instead of the compatibility response (an
 * object per stream with five listeners, headers copied twice, and a trailers round trip after every
 * body that nobody sends trailers on).
 *
 * What it keeps of the compatibility response's behaviour, since the data path and its tests rely on it:
 * - `writeHead` takes node:http's flat [name, value, ...] list or an object; names are lower-cased,
 *   repeats become one list (so a repeated single-value field such as content-type is refused by
 *   node:http2, which writeHead throws and the exchange answers 502), `connection` is dropped;
 * - on a stream already closed or reset, `writeHead` and `end` do nothing (the client is gone; the
 *   stream's 'close' tells the exchange);
 * - `destroyed` and 'drain'/'close' (`once`, and `on` for 'close') are the stream's; 'close' comes once the stream is closed, reset
 *   or not;
 * - `shouldKeepAlive` is accepted and means nothing: draining HTTP/2 is the session's GOAWAY
 *   (h2-front.ts `closeGracefully`), not a per-response `Connection: close`.
 * Not offered: setHeader (only the plain listener's redirect uses it; the TLS listener never redirects).
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';

const STATUS_CONTINUE = { ':status': 100 } as const;

export class H2Response {
  /** node:http's drain signal; HTTP/2 drains by GOAWAY instead (see the file comment). */
  shouldKeepAlive = true;

  constructor(readonly stream: ServerHttp2Stream) {}

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  writeHead(status: number, headers: readonly string[] | Readonly<Record<string, string | number>>): this {
    const s = this.stream;
    if (s.destroyed || s.closed) return this;
    // No waitForTrailers: the last DATA frame carries END_STREAM.
    s.respond(h2HeadersOf(status, headers));
    return this;
  }

  write(chunk: Buffer | string): boolean {
    const s = this.stream;
    if (s.destroyed) return false;
    return s.write(chunk);
  }

  end(chunk?: Buffer | string): this {
    const s = this.stream;
    if (s.destroyed || s.closed) return this;
    if (!s.headersSent) s.respond({ ':status': 200 });
    // A HEAD, 204 or 304 answer ended the stream with its head (node:http2's respond): no body follows.
    if (s.writableEnded) return this;
    if (chunk === undefined) s.end();
    else s.end(chunk);
    return this;
  }

  destroy(err?: Error): void {
    this.stream.destroy(err);
  }

  /** `100 Continue` before the final head (RFC 9113 §8.1: an informational HEADERS frame). */
  writeContinue(): void {
    const s = this.stream;
    if (s.headersSent || s.destroyed || s.closed) return;
    s.additionalHeaders(STATUS_CONTINUE);
  }

  once(event: 'close' | 'drain', fn: () => void): this {
    this.stream.once(event, fn);
    return this;
  }

  /** 'close' comes once per stream, so the data path listens with `on` (no onceWrapper per request). */
  on(event: 'close', fn: () => void): this {
    this.stream.on(event, fn);
    return this;
  }
}

/** The response head for node:http2's respond(): `:status`, then each field by its lower-case name. */
function h2HeadersOf(status: number, headers: readonly string[] | Readonly<Record<string, string | number>>): OutgoingHttpHeaders {
  const out: Record<string, string | number | string[]> = Object.create(null) as Record<string, string | number | string[]>;
  out[':status'] = status;
  if (isList(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      // HTTP/2 has no Connection field (RFC 9113 §8.2.2); the other hop-by-hop ones never get here.
      if (name === 'connection') continue;
      const value = headers[i + 1]!;
      const prev = out[name];
      if (prev === undefined) out[name] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else out[name] = [String(prev), value];
    }
    return out;
  }
  for (const name of Object.keys(headers)) out[name.toLowerCase()] = headers[name]!;
  return out;
}

function isList(h: readonly string[] | Readonly<Record<string, string | number>>): h is readonly string[] {
  return Array.isArray(h);
}
