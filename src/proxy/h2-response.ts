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
 *
 * The stall bound (`node.bodyIdleTimeout`, h2-front.ts): a stream whose answer has bytes waiting and
 * none leaving for that long — a client that keeps its window shut — is reset. It is watched only
 * once the answer is held back (a write that returned false) or complete (end), and only until the
 * stream closes: the answer is its own entry in the listener's deadline list (deadlines.ts), checked
 * every quarter of the bound, so a stall is acted on between 1 and 1.25 bounds after its last byte
 * left. (node:http2's stream.setTimeout cost a timer, a bound closure and a listener per stream and a
 * timer refresh per frame, for the few streams that ever stall; callgrind: 2–6% of an h2 request.)
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { DeadlineList, Deadlines, Expiring } from './deadlines.js';

/** How answers are watched for stalls: one object per listener (h2-front.ts). */
export interface StallWatch {
  readonly deadlines: Deadlines;
  /** The bound (ms, > 0). */
  readonly ms: number;
  /** The answer on `stream` had bytes waiting and none left for the bound. */
  readonly onStall: (stream: ServerHttp2Stream) => void;
}

const STATUS_CONTINUE = { ':status': 100 } as const;

export class H2Response implements Expiring {
  /** node:http's drain signal; HTTP/2 drains by GOAWAY instead (see the file comment). */
  shouldKeepAlive = true;
  // Expiring (deadlines.ts), while the answer is watched for a stall.
  expiresAt = 0;
  prevExpiring: Expiring | undefined = undefined;
  nextExpiring: Expiring | undefined = undefined;
  expiringIn: DeadlineList | undefined = undefined;
  /** Body bytes handed to the stream; minus its bufferSize, the bytes that have left. */
  private written = 0;
  private leftAtCheck = 0;
  private quietChecks = 0;

  constructor(readonly stream: ServerHttp2Stream, private readonly stall?: StallWatch) {}

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
    this.written += chunk.length;
    if (s.write(chunk)) return true;
    this.watch();
    return false;
  }

  end(chunk?: Buffer | string): this {
    const s = this.stream;
    if (s.destroyed || s.closed) return this;
    if (!s.headersSent) s.respond({ ':status': 200 });
    // A HEAD, 204 or 304 answer ended the stream with its head (node:http2's respond): no body follows.
    if (s.writableEnded) return this;
    if (chunk === undefined) s.end();
    else {
      this.written += chunk.length;
      s.end(chunk);
    }
    this.watch();
    return this;
  }

  /** The stream closed (h2-front.ts): nothing more to watch. */
  closed(): void {
    this.stall?.deadlines.disarm(this);
  }

  /** Starts the stall watch, unless it runs already or there is no bound. */
  private watch(): void {
    const w = this.stall;
    if (w === undefined || this.expiringIn !== undefined || this.stream.destroyed || this.stream.closed) return;
    this.leftAtCheck = this.written - this.stream.bufferSize;
    this.quietChecks = 0;
    w.deadlines.arm(this, w.ms / 4, performance.now());
  }

  /** Expiring: a quarter of the bound since the last check. (Lengths are counted in string units for
   *  strings, bytes for Buffers — only their change matters here.) */
  expire(): void {
    const s = this.stream;
    const w = this.stall!;
    if (s.destroyed || s.closed) return;
    const waiting = s.bufferSize;
    // Nothing held back (it all left, or only the client's END_STREAM is awaited): stop; a later
    // write that is held back starts the watch again.
    if (waiting === 0) return;
    const left = this.written - waiting;
    if (left > this.leftAtCheck) {
      this.leftAtCheck = left;
      this.quietChecks = 0;
    } else if (++this.quietChecks >= 4) {
      return w.onStall(s);
    }
    w.deadlines.arm(this, w.ms / 4, performance.now());
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
