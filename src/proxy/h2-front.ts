/**
 * HTTP/2 to clients: the h2 connections the TLS listener hands over (ALPN chose `h2`), served through
 * node:http2's core stream API ('stream' on each session) into the same request handler as HTTP/1.1
 * (server.ts `onRequest` → forward.ts), so routing, balancing, sticky sessions, retries, timeouts,
 * limits, the header policy, the access log and the metrics are the HTTP/1.1 ones; upstreams are reached
 * over HTTP/1.1 through the same undici pools. Each stream gets two small views the data path reads as
 * node:http's request and response: H2Request (h2-request.ts: the HTTP/1.1 view of its headers, the
 * stream as its body) and H2Response (h2-response.ts: respond/write/end on the stream). The
 * compatibility API (Http2ServerRequest/Response) is not used: it cost ~10 µs per request (a Readable
 * copy of the body, a socket Proxy, a trailers round trip) for nothing the data path needs. What it did
 * on the way in is done here: CONNECT answered 405, `Expect: 100-continue` handed over as such (the
 * exchange writes the 100, forward.ts), any other expectation answered 417, and a silent 'error'
 * listener on each stream (a stream the client resets with an error code emits one).
 *
 * What this file adds is what only HTTP/2 has (limits in h2-limits.ts, docs/config.md "HTTP/2 limits"):
 * the connection settings, the rapid-reset counter, the stalled-stream reset, the idle-connection close,
 * and the graceful GOAWAY on drain; and, per stream, what node:http's server does per connection for
 * HTTP/1.1:
 * - `node.requestTimeout`: a stream whose client has not finished sending its request (END_STREAM)
 *   within it is answered 408 `request-timeout` (reset CANCEL when its answer has already begun); the
 *   stream's close aborts the upstream attempt, the connection's other streams go on;
 * - an answer complete while the client is still sending a body nobody will read (a local 413 or 408,
 *   an upstream that answered early) ends the stream with RST_STREAM NO_ERROR (RFC 9113 §8.1) — the
 *   HTTP/2 form of closing the connection after the answer. node:http2 does this itself only for a body
 *   never read; otherwise the stream, and one of the connection's concurrent-stream slots, stayed open
 *   until the client finished an upload that is thrown away (forever, for a client that stalled).
 */
import { constants, createServer, type Http2Server, type IncomingHttpHeaders as H2Headers, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { H2_LIMITS, ResetCounter } from './h2-limits.js';
import { H2Request } from './h2-request.js';
import { H2Response, type StallWatch } from './h2-response.js';
import type { Deadlines } from './deadlines.js';
import { writeLocal } from './forward.js';
import { requestIdFor } from './headers.js';
import { LiveSlots } from '../lib/live-slots.js';

export interface H2Options {
  /** `node.maxHeaderSize`: the decoded header list (SETTINGS_MAX_HEADER_LIST_SIZE). */
  readonly maxHeaderBytes: number;
  /** `node.maxHeadersCount`: header lines; one more is let through so requestProblem answers 431. */
  readonly maxHeadersCount: number;
  /** `node.keepAliveTimeout`: a connection with no open stream and no frame for this long is closed. */
  readonly idleTimeoutMs: number;
  /** `node.bodyIdleTimeout`: a stream whose response has bytes waiting and none sent for this long is reset (0: never). */
  readonly stallTimeoutMs: number;
  /** `node.requestTimeout`: the whole request (headers and body) must arrive within this (0: never). */
  readonly requestTimeoutMs: number;
}

/** The HTTP/1.1 handler's entry points (server.ts), typed as node:http's: H2Request and H2Response
 *  offer what the data path uses of IncomingMessage and ServerResponse. */
export interface H2Handlers {
  request(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void;
  expectation(req: IncomingMessage, res: ServerResponse): void;
}

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } = constants;

/** One listener for every stream ('finish' passes no argument; `this` is the stream): no closure per request. */
function onStreamFinish(this: ServerHttp2Stream): void {
  H2Front.answered(this);
}

/** A stream the client reset with an error code emits 'error' (after 'aborted'); its 'close' follows in
 *  the same turn and is what the data path acts on. Without a listener the error would be thrown. */
function onStreamError(): void {}

/** The data path's types for the two views (see H2Handlers). */
const asH1 = (req: H2Request, res: H2Response) => [req as unknown as IncomingMessage, res as unknown as ServerResponse] as const;

export class H2Front {
  readonly server: Http2Server;
  /** LiveSlots, not a Set: one session in and out per connection (lib/live-slots.ts says why). */
  private readonly sessions = new LiveSlots<ServerHttp2Session>();
  private readonly streams = new WeakMap<ServerHttp2Session, number>();
  private closing = false;
  /** The stall bound's watch, shared by every answer (h2-response.ts); undefined when it is off. */
  private readonly stall: StallWatch | undefined;

  constructor(private readonly opts: H2Options, private readonly handlers: H2Handlers, private readonly metrics: Metrics, private readonly log: Logger, deadlines: Deadlines) {
    this.stall = opts.stallTimeoutMs > 0 ? { deadlines, ms: opts.stallTimeoutMs, onStall: (stream) => this.onStreamStalled(stream) } : undefined;
    this.server = createServer({
      settings: {
        maxConcurrentStreams: H2_LIMITS.maxConcurrentStreams,
        maxHeaderListSize: opts.maxHeaderBytes,
        enablePush: false,
      },
      maxHeaderListPairs: opts.maxHeadersCount + 1 + H2_LIMITS.pseudoHeaders,
      maxSessionInvalidFrames: H2_LIMITS.maxSessionInvalidFrames,
      maxSessionRejectedStreams: H2_LIMITS.maxSessionRejectedStreams,
      maxSessionMemory: H2_LIMITS.maxSessionMemoryMiB,
    });
    // No 'request' listener, ever: node:http2 builds compatibility objects only once one is added.
    this.server.on('session', (s: ServerHttp2Session) => this.onSession(s));
    this.server.on('sessionError', (err: Error) => this.log.debug({ err }, 'http2 connection error'));
    // Idle connections: node:http2 calls this when a session saw no frame for the timeout.
    this.server.setTimeout(opts.idleTimeoutMs);
    this.server.on('timeout', (s: ServerHttp2Session) => {
      if ((this.streams.get(s) ?? 0) === 0) s.close();
    });
  }

  /** The socket being handed to node:http2 (its 'session' event fires within the hand-over). */
  private accepting: Socket | undefined;

  /** A TLS socket whose ALPN chose h2. */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.accepting = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.accepting = undefined;
    }
  }

  private onSession(session: ServerHttp2Session): void {
    // Our own handle on the connection: `session.socket` refuses destroy(), and a session destroyed
    // while its client floods it does not always end the socket (seen with node 20's http2). It is also
    // each request's `socket` (h2-request.ts).
    const socket = this.accepting ?? (session.socket as Socket);
    const slot = this.sessions.add(session);
    this.streams.set(session, 0);
    session.once('close', () => this.sessions.delete(slot));
    session.on('error', (err) => this.log.debug({ err }, 'http2 session error'));
    const resets = new ResetCounter(H2_LIMITS.maxResetsPerWindow, H2_LIMITS.resetWindowMs);
    let tripped = false;
    session.on('stream', (stream: ServerHttp2Stream, headers: H2Headers, _flags: number, rawHeaders: string[]) => {
      this.streams.set(session, (this.streams.get(session) ?? 0) + 1);
      stream.on('error', onStreamError);
      const res = new H2Response(stream, this.stall);
      // A request with no body (END_STREAM on its HEADERS) has nothing left to stop.
      if (!stream.endAfterHeaders) stream.once('finish', onStreamFinish);
      stream.once('close', () => {
        res.closed();
        this.streams.set(session, (this.streams.get(session) ?? 1) - 1);
        // A premature reset: the client cancelled the stream before its answer's headers went out.
        if (stream.rstCode === NGHTTP2_NO_ERROR || stream.headersSent || session.destroyed || session.closed) return;
        if (tripped || !resets.record(performance.now())) return;
        tripped = true;
        this.metrics.localResponses.labels('', '0', 'h2-rapid-reset').inc();
        this.log.warn({ remote: socket.remoteAddress, limit: H2_LIMITS.maxResetsPerWindow, windowMs: H2_LIMITS.resetWindowMs }, 'http2 client reset too many streams; connection closed (CVE-2023-44487)');
        // GOAWAY with the reason first, then cut: the client learns why, and nothing it sends after is read.
        session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
        setImmediate(() => {
          session.destroy();
          socket.destroy();
        });
      });
      this.serve(stream, res, headers, rawHeaders, socket);
    });
  }

  /** One request stream into the data path, after what the compatibility API did first (file comment). */
  private serve(stream: ServerHttp2Stream, res: H2Response, headers: H2Headers, rawHeaders: string[], socket: Socket): void {
    if (headers[':method'] === 'CONNECT') {
      // No CONNECT tunnels (nor RFC 8441 extended CONNECT: not offered in SETTINGS).
      res.writeHead(405, {}).end();
      return;
    }
    const req = new H2Request(stream, headers, rawHeaders, socket);
    const expect = headers.expect;
    if (expect !== undefined && expect !== '100-continue') return this.handlers.expectation(...asH1(req, res));
    this.boundRequest(req, res);
    this.handlers.request(...asH1(req, res), expect !== undefined);
  }

  /** `node.requestTimeout` for a request whose body is still to come (see the file comment). */
  private boundRequest(req: H2Request, res: H2Response): void {
    const ms = this.opts.requestTimeoutMs;
    const stream = req.stream;
    if (ms <= 0 || stream.endAfterHeaders) return;
    const timer = setTimeout(() => this.onRequestTimeout(req, res), ms);
    const clear = (): void => clearTimeout(timer);
    stream.once('end', clear);
    stream.once('close', clear);
  }

  private onRequestTimeout(req: H2Request, res: H2Response): void {
    const stream = req.stream;
    // The client has sent it all (its END_STREAM may wait in our buffers, unread): not its fault.
    if (stream.destroyed || stream.closed || stream.state.remoteClose === 1) return;
    this.metrics.localResponses.labels('', '408', 'request-timeout').inc();
    this.log.debug({ id: stream.id }, 'http2 request not received within node.requestTimeout');
    if (res.headersSent) stream.close(NGHTTP2_CANCEL);
    else writeLocal(res as unknown as ServerResponse, 408, 'request-timeout', 'request timeout', requestIdFor(req.headers['x-request-id']), true);
  }

  /** The answer is sent whole: a client still sending is asked to stop (see the file comment). */
  static answered(stream: ServerHttp2Stream): void {
    if (stream.closed || stream.destroyed || stream.readableEnded) return;
    // Let a body end that is already on its way (END_STREAM read in this same turn) close the stream normally.
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed && stream.state.remoteClose !== 1) stream.close(NGHTTP2_NO_ERROR);
    });
  }

  /** The answer had bytes waiting behind a closed flow-control window and none left for the stall
   *  bound (h2-response.ts watches only answers held back, so a long poll waiting on its upstream is
   *  never one): reset the stream. */
  private onStreamStalled(stream: ServerHttp2Stream): void {
    this.metrics.localResponses.labels('', '0', 'h2-stream-stalled').inc();
    this.log.debug({ id: stream.id, buffered: stream.bufferSize }, 'http2 stream reset: the client did not open its window');
    stream.close(NGHTTP2_CANCEL);
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /** Drain: GOAWAY to every connection; open streams finish, no new ones start. */
  closeGracefully(): void {
    this.closing = true;
    for (const s of this.sessions) s.close();
  }

  /** The drain timed out: cut whatever is left. */
  destroyAll(): void {
    this.closing = true;
    for (const s of this.sessions) s.destroy();
  }
}
