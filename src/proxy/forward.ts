/**
 * The request path: route → pick → forward through the upstream's undici Pool → stream back.
 *
 * Invariants:
 * - Bodies stream both ways with backpressure (undici reads the client request as a stream; the
 *   response body is piped to the client); nothing is buffered whole.
 * - Every outcome the network can cause is answered, never thrown: no route 404, no eligible upstream
 *   503, breaker open 503, connect failure / reset / malformed upstream response 502, response
 *   timeout 504. Each local answer has a short text body, an `x-meshgate-reason` header, a metric and a
 *   log line that names the service and upstream.
 * - The request body has exactly one reader, `RequestBody` (request-body.ts), which undici pulls once an
 *   upstream connection is ready; it enforces the body limit (413) and the body idle timeout (408).
 * - `Expect: 100-continue` is answered by the peer: `100 Continue` goes to the client when the attempt is
 *   about to be written on a connected upstream socket, and the header is not forwarded (undici does
 *   not support it). A request answered before that (no upstream, connect failure on every try) gets
 *   its final status without the client ever sending the body.
 * - A failure the client caused (body over the limit, body stalled, client gone, its stream erroring) is
 *   never charged to the upstream: no outlier result, no connect-error metric, no latency sample.
 * - Request buffering (`node.requestBufferSize`): a body up to that size is read whole before routing,
 *   so a slow client never holds an upstream connection; larger bodies stream.
 * - Retries (DESIGN.md §6) go to an upstream not yet tried, only while no byte of the body has been
 *   read or the body was read whole (so it can still be sent whole), only for the configured causes, and only within the
 *   service's retry budget. Non-idempotent methods are retried only when the request never reached an
 *   upstream (connect failure).
 * - A client that goes away aborts the upstream request (AbortSignal into undici).
 * - in-flight accounting (per upstream, per service) is released exactly once per attempt.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { cookieValue } from '../lib/cookie.js';
import type { AccessLog, Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { clientIpOf, clientResponseHeaders, protoOf, requestIdFor, upstreamRequestHeaders } from './headers.js';
import { hasRequestBody } from './request-checks.js';
import { admitNext, pickUpstream, releaseUpstream, takeRetrySlot, type LocalAnswer } from './attempt-admission.js';
import { BODY_DETACHED, RequestBody, type BodyOwner } from './request-body.js';
import type { CallResult, HashSource, HealthView } from './routing.js';
import type { BodyLimits, RoutingSnapshot, ServiceSnapshot } from './routing-snapshot.js';
import type { ServiceState } from './service-state.js';
import type { UpstreamRuntime } from './upstream-runtime.js';
import { resolvePin, type Pin } from './sticky-view.js';
import { isTlsHandshakeError } from './upstream-tls.js';
import type { DeadlineList, Deadlines, Expiring } from './deadlines.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ForwarderDeps {
  /** The routing snapshot in effect (routing-refresh.ts); a request reads it once, on arrival. */
  readonly routing: { readonly snapshot: RoutingSnapshot | undefined };
  /** Where passive health results go (undefined: nowhere). */
  readonly health: HealthView | undefined;
  readonly states: (service: string) => ServiceState;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** undefined when `node.accessLog: false`. */
  readonly accessLog: AccessLog | undefined;
  readonly random: () => number;
  /** True while the peer drains: responses carry `Connection: close`. */
  readonly isDraining: () => boolean;
  /** The response and body-idle timeouts of attempts whose request body does not stream (deadlines.ts). */
  readonly deadlines: Deadlines;
}

type Failure = 'connect-failure' | 'reset' | 'timeout' | 'malformed' | 'aborted';

/** Classify an undici error that happened before response headers. */
export function classifyError(err: NodeJS.ErrnoException): Failure {
  const code = err.code ?? '';
  switch (code) {
    case 'ECONNREFUSED': case 'UND_ERR_CONNECT_TIMEOUT': case 'EHOSTUNREACH': case 'ENETUNREACH':
    case 'ENOTFOUND': case 'EAI_AGAIN': case 'UND_ERR_CLOSED': case 'UND_ERR_DESTROYED': case 'EADDRNOTAVAIL':
      return 'connect-failure';
    case 'UND_ERR_HEADERS_TIMEOUT': case 'UND_ERR_BODY_TIMEOUT': case RESPONSE_TIMEOUT.code: case BODY_TIMEOUT.code:
      return 'timeout';
    case 'UND_ERR_ABORTED': case 'ABORT_ERR':
      return 'aborted';
    // Response headers past undici's maxHeaderSize: the upstream's answer is unusable, not a reset.
    case 'UND_ERR_HEADERS_OVERFLOW':
      return 'malformed';
    case 'UND_ERR_SOCKET':
      // undici's names for a response it refuses: an unsolicited `100 Continue`, an unasked-for upgrade.
      return err.message === 'bad response' || err.message === 'bad upgrade' ? 'malformed' : 'reset';
    default:
      // A failed TLS handshake (unknown CA, name mismatch, client certificate refused): nothing reached
      // the upstream's application, so it is a connect failure for retries and outlier detection.
      if (isTlsHandshakeError(code)) return 'connect-failure';
      if (code.startsWith('HPE_') || err.name === 'HTTPParserError' || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'malformed';
      return 'reset';
  }
}

/**
 * The 502 for an upstream that could not be used (connect failure, TLS handshake failure, reset): one
 * definition of its `x-meshgate-reason` and text for the HTTP and the Upgrade path (docs/errors.md).
 */
export function unavailableAnswer(failure: 'connect-failure' | 'reset', code: string | undefined): LocalAnswer {
  if (isTlsHandshakeError(code)) return TLS_ANSWER;
  return failure === 'connect-failure' ? CONNECT_ANSWER : RESET_ANSWER;
}
const TLS_ANSWER: LocalAnswer = { status: 502, reason: 'upstream-tls', text: 'upstream TLS handshake failed' };
const CONNECT_ANSWER: LocalAnswer = { status: 502, reason: 'upstream-connect-failure', text: 'upstream unavailable' };
const RESET_ANSWER: LocalAnswer = { status: 502, reason: 'upstream-reset', text: 'upstream unavailable' };
const TIMEOUT_ANSWER: LocalAnswer = { status: 504, reason: 'upstream-timeout', text: 'upstream response timeout' };
const MALFORMED_ANSWER: LocalAnswer = { status: 502, reason: 'bad-upstream-response', text: 'bad response from upstream' };

/** One request's journey. A class rather than closures: one allocation per request, not a dozen. */
class Exchange implements BodyOwner, Expiring {
  readonly startMs = performance.now();
  readonly method: string;
  readonly hasBody: boolean;
  /** The body's single reader; undefined for a request without one. */
  readonly body: RequestBody | undefined;
  /** The client sent `Expect: 100-continue` and no `100 Continue` has been written yet. */
  private awaitingContinue: boolean;
  readonly requestId: string;
  readonly clientIp: string;
  tried: Set<string> | undefined;
  attempt = 0;
  fence: number | undefined;
  pinnedUpstream: string | undefined;
  setCookie: string | undefined;
  sessionHeader: readonly [string, string] | undefined;
  upstream: UpstreamRuntime | undefined;
  status = 0;
  reason = '';
  done = false;
  /** Why the previous attempt failed without an answer (admitAttempt's `lastFailure`). */
  lastFailure: LocalAnswer | undefined = undefined;
  /** True while the current attempt is a retry holding a slot of the service's retry budget. */
  holdsRetrySlot = false;
  /** For the access log (AccessContext): body bytes written to the client and read from it, and when the
   *  last attempt's response headers arrived (ms since start). */
  bytesSent = 0;
  upstreamHeadersMs: number | undefined;
  /** The current attempt is timed by `deps.deadlines` (its body, if any, was read whole), not by undici. */
  private timedHere = false;
  // Expiring: the links of deps.deadlines (deadlines.ts).
  expiresAt = 0;
  prevExpiring: Expiring | undefined = undefined;
  nextExpiring: Expiring | undefined = undefined;
  expiringIn: DeadlineList | undefined = undefined;
  private onDrainFn: (() => void) | undefined;

  constructor(
    readonly deps: ForwarderDeps,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly svc: ServiceSnapshot,
    readonly state: ServiceState,
    /** The body limits of the snapshot this request started with. */
    private readonly limits: BodyLimits,
    expectsContinue: boolean,
  ) {
    this.method = req.method ?? 'GET';
    const cl = req.headers['content-length'];
    this.hasBody = hasRequestBody(req);
    // A Content-Length over the limit was refused before this point, so only a chunked body is counted.
    this.body = this.hasBody ? new RequestBody(req, this, cl === undefined ? limits.maxBodyBytes : Infinity, limits.bodyIdleMs) : undefined;
    this.awaitingContinue = expectsContinue && this.hasBody;
    this.requestId = requestIdFor(req.headers['x-request-id']);
    this.clientIp = clientIpOf(req.socket.remoteAddress);
  }

  start(): void {
    this.state.budget.onRequestStart();
    // 'close' comes once per response, so `on` (no onceWrapper per request).
    this.res.on('close', () => this.onClientClose());
    // Request buffering: a small body (or a chunked one, until it outgrows the buffer) is read before an
    // upstream is picked, so a client trickling it holds no upstream connection. Not with
    // `Expect: 100-continue`: that client sends nothing until an upstream is there (see onConnect).
    const limit = this.limits.requestBufferBytes;
    const body = this.body;
    if (body !== undefined && limit > 0 && !this.awaitingContinue) {
      const cl = this.req.headers['content-length'];
      if (cl === undefined || Number(cl) <= limit) return body.prebuffer(limit, () => this.done || this.route());
    }
    this.route();
  }

  /** Sticky pin or the balancer's pick, then the first attempt. */
  private route(): void {
    const sticky = this.svc.sticky;
    if (sticky !== undefined) {
      resolvePin(sticky, this, this.deps.log, () => !this.done, (p) => this.sendPinned(p), (status, reason, text) => this.local(status, reason, text));
      return;
    }
    this.send();
  }

  private sendPinned(p: Pin): void {
    this.fence = p.fence;
    this.pinnedUpstream = p.upstream;
    this.setCookie = p.setCookie;
    this.sessionHeader = p.sessionHeader;
    this.send();
  }

  /** Request body bytes read from the client (by the one body reader). */
  get bytesReceived(): number {
    return this.body?.bytes ?? 0;
  }

  get upstreamAddress(): string | undefined {
    return this.upstream?.spec.url;
  }

  hashKey(): string | undefined {
    const h = this.svc.hashOn;
    return h === undefined ? undefined : hashKeyOf(h, this.req, this.clientIp);
  }

  /** The balancer's pick for this request (also used by sticky for new and moved pins). */
  pick(): string | undefined {
    return pickUpstream({ svc: this.svc, state: this.state, metrics: this.deps.metrics, random: this.deps.random, attempt: this.attempt, tried: this.tried, hashKey: this.hashKey() });
  }

  private send(): void {
    // A retry scheduled while the client went away (or was already answered) is not sent.
    if (this.done) return;
    const svc = this.svc;
    const admitted = admitNext(this, this.deps.metrics);
    if (!admitted.ok) return this.local(admitted.status, admitted.reason, admitted.text);
    const rt = admitted.upstream;
    this.upstream = rt;
    this.phase = 'waiting';
    this.upstreamAbort = undefined;
    this.sentAt = performance.now();
    this.dispatching = true;
    // A body that streams is timed by undici: its writer knows when it waits on the upstream (then the
    // response timeout runs) and when on the client (then it does not). Anything else is timed here.
    const streamsBody = this.body !== undefined && this.body.whole === undefined;
    this.timedHere = !streamsBody;
    const headers = upstreamRequestHeaders(this.req.rawHeaders, this.req.headers.connection, {
      clientIp: this.clientIp,
      proto: protoOf(this.req.socket),
      requestId: this.requestId,
      fence: this.fence,
    });
    rt.pool.dispatch(
      {
        method: this.method as Dispatcher.HttpMethod,
        path: this.req.url ?? '/',
        headers,
        // undici takes an async iterable body (client-h1 writeIterable); its 6.x typings leave it out.
        // A body read whole (request buffering) goes as one Buffer, which a retry can send again.
        body: (this.body?.whole ?? this.body ?? null) as Dispatcher.DispatchOptions['body'],
        headersTimeout: streamsBody ? svc.cfg.timeouts.response : 0,
        bodyTimeout: streamsBody ? svc.cfg.timeouts.idle : 0,
        // undici's Request takes `servername` (lib/core/request.js); its 6.x typings leave it out.
        servername: rt.dispatchServername,
      } as Dispatcher.DispatchOptions,
      this,
    );
    this.dispatching = false;
  }

  // --- undici Dispatcher handler (one attempt at a time; `this` is the handler, so no per-attempt
  // allocation of closures, AbortController, Readable or pipeline). ---

  /** Where the current attempt is: waiting for headers, streaming the body to the client, discarding
   *  a retryable 5xx body, or finished. */
  private phase: 'waiting' | 'streaming' | 'discarding' | 'aborted' | 'idle' = 'idle';
  private upstreamAbort: ((err?: Error) => void) | undefined;
  private sentAt = 0;
  /** Inside this attempt's pool.dispatch() call. */
  private dispatching = false;
  private resume: (() => void) | undefined;

  onConnect(abort: (err?: Error) => void): void {
    this.upstreamAbort = abort;
    if (this.done) return abort(CLIENT_GONE);
    // On a pooled connection undici calls this inside dispatch(): `sentAt` is now.
    if (this.timedHere) this.deps.deadlines.arm(this, this.svc.cfg.timeouts.response, this.dispatching ? this.sentAt : performance.now());
    // undici calls this on a connected socket, just before writing the request: the moment an upstream
    // is really there to take the body.
    if (this.awaitingContinue) {
      this.awaitingContinue = false;
      this.res.writeContinue();
    }
  }

  /** The request is written (undici: its headers timer restarts here): a whole body's upload is over. */
  onRequestSent(): void {
    if (this.timedHere && this.body !== undefined && this.phase === 'waiting') this.deps.deadlines.arm(this, this.svc.cfg.timeouts.response, performance.now());
  }

  /** Expiring: no response head within `timeouts.response`, or no body byte within `timeouts.idle`
   *  while the client was taking what came. Aborting reports it back through onError, as undici's own
   *  timeouts did. */
  expire(): void {
    this.upstreamAbort?.(this.phase === 'waiting' ? RESPONSE_TIMEOUT : BODY_TIMEOUT);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    // 1xx informational answers are hop-by-hop (RFC 9110 §15.2); the final one follows.
    if (statusCode < 200) return true;
    const rt = this.upstream!;
    const svc = this.svc;
    this.state.limits.releasePending();
    const now = performance.now();
    const latencyMs = now - this.sentAt;
    this.upstreamHeadersMs = now - this.startMs;
    rt.recordLatency(latencyMs, statusCode >= 500, now);
    rt.series.observeSeconds(latencyMs / 1000);
    rt.requests++;
    rt.series.countStatus(statusCode);
    this.deps.health?.recordResult(svc.name, rt.spec.id, statusCode >= 500 ? { kind: '5xx', status: statusCode } : SUCCESS);
    if (statusCode >= 500 && this.retryAllowed(String(statusCode) as '503')) {
      this.releaseRetrySlot();
      this.lastFailure = undefined; // this one answered; its body is dropped, so no upstream left is "exhausted"
      if (this.startRetry()) {
        // Read and drop this body (small, an error page) so the connection is reused, then retry.
        this.phase = 'discarding';
        if (this.timedHere) this.deps.deadlines.arm(this, svc.cfg.timeouts.idle, now);
        return true;
      }
    }
    if (this.done) {
      // Answered already (e.g. 413 while waiting): drop this response; onError releases the attempt.
      this.phase = 'aborted';
      this.upstreamAbort?.(CLIENT_GONE);
      return false;
    }
    this.status = statusCode;
    const res = this.res;
    const headers = clientResponseHeaders(rawHeaders ?? [], this.requestId, this.setCookie, this.sessionHeader);
    if (this.deps.isDraining()) res.shouldKeepAlive = false;
    try {
      res.writeHead(statusCode, headers);
    } catch (err) {
      // An upstream header Node refuses to send (invalid characters): a malformed response.
      this.deps.log.warn({ err, service: svc.name, upstream: rt.spec.id }, 'upstream sent an unsendable header');
      this.phase = 'aborted';
      this.upstreamAbort?.(CLIENT_GONE);
      this.local(502, 'bad-upstream-response', 'bad response from upstream');
      return false;
    }
    this.phase = 'streaming';
    this.resume = resume;
    if (this.timedHere) this.deps.deadlines.arm(this, svc.cfg.timeouts.idle, now);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const phase = this.phase;
    if (phase !== 'streaming') {
      if (phase === 'discarding' && this.timedHere) this.deps.deadlines.arm(this, this.svc.cfg.timeouts.idle, performance.now());
      return true;
    }
    this.bytesSent += chunk.length;
    // Backpressure: the upstream read pauses while more than CLIENT_BUFFER_BYTES wait for the client.
    const res = this.res;
    if (res.write(chunk) || res.writableLength <= CLIENT_BUFFER_BYTES) {
      if (this.timedHere) this.deps.deadlines.arm(this, this.svc.cfg.timeouts.idle, performance.now());
      return true;
    }
    // A client already gone never drains (an HTTP/2 stream the client reset refuses every write): keep
    // reading and dropping until the abort its 'close' brings. Pausing undici on a 'drain' that cannot
    // come held the upstream connection, and an upstream that then closed its close-delimited answer
    // crashed undici's parser (`assert(!this.paused)` on 'end').
    if (this.res.destroyed || this.req.socket.destroyed) return true;
    if (!this.timedHere) {
      this.res.once('drain', this.resume!);
      return false;
    }
    // Paused on the client is not upstream silence (undici's body timer waits while paused too): the
    // idle deadline stops here and starts again on 'drain'.
    this.deps.deadlines.disarm(this);
    this.res.once('drain', (this.onDrainFn ??= () => {
      if (this.phase === 'streaming') this.deps.deadlines.arm(this, this.svc.cfg.timeouts.idle, performance.now());
      this.resume!();
    }));
    return false;
  }

  onComplete(_trailers: Buffer[] | string[] | null): void {
    const rt = this.upstream!;
    const phase = this.phase;
    this.phase = 'idle';
    this.deps.deadlines.disarm(this);
    if (phase === 'aborted') return this.releaseAttempt(rt);
    if (phase === 'discarding') {
      releaseUpstream(this.state, rt);
      return this.send();
    }
    this.releaseAttempt(rt);
    if (phase === 'streaming') {
      this.res.end();
      this.finish();
    }
  }

  onError(err: Error): void {
    const rt = this.upstream!;
    const phase = this.phase;
    // undici may report an error after onComplete (the body writer failing once the response is
    // done, e.g. an upstream that answered without reading the upload): the attempt is settled.
    if (phase === 'idle') return;
    this.phase = 'idle';
    this.deps.deadlines.disarm(this);
    // We aborted after taking the headers: the answer is already decided; only release the attempt.
    if (phase === 'aborted') return this.releaseAttempt(rt);
    if (phase === 'waiting') {
      this.state.limits.releasePending();
      if (!this.clientCaused(err)) rt.recordLatency(performance.now() - this.sentAt, true);
      return this.onUpstreamError(rt, err as NodeJS.ErrnoException);
    }
    this.releaseAttempt(rt);
    if (phase === 'discarding') return this.send();
    // Mid-body: the status line is gone, so the only honest signal left is to cut the connection.
    if (!this.clientCaused(err)) {
      rt.failures++;
      this.reason = 'upstream-body-error';
      this.deps.log.warn({ service: this.svc.name, upstream: rt.spec.id, requestId: this.requestId, code: (err as NodeJS.ErrnoException).code }, 'upstream failed mid-body');
    }
    this.res.destroy();
    this.finish();
  }

  /** The attempt failed because of the client or of us (gone, body limit, body stalled, body stream error). */
  private clientCaused(err: Error): boolean {
    return err === CLIENT_GONE || err === BODY_DETACHED || (this.body !== undefined && err === this.body.failedWith);
  }

  private onUpstreamError(rt: UpstreamRuntime, err: NodeJS.ErrnoException): void {
    const failure = this.clientCaused(err) ? 'aborted' : classifyError(err);
    this.releaseAttempt(rt);
    if (failure === 'aborted' || this.done) {
      // The client went away or was answered already; the abort is ours, not the upstream's fault.
      if (!this.done && this.body?.failedWith === err) return this.local(400, 'client-body-error', 'request body could not be read');
      return this.finish();
    }
    rt.failures++;
    rt.series.connectError(failure);
    const svc = this.svc;
    const passive: CallResult = failure === 'timeout' ? TIMEOUT : failure === 'connect-failure' ? CONNECT_FAILURE : RESET;
    this.deps.health?.recordResult(svc.name, rt.spec.id, passive);
    this.deps.log.warn({ service: svc.name, upstream: rt.spec.id, requestId: this.requestId, code: err.code, failure }, `upstream ${failure}`);
    const answer = failure === 'timeout' ? TIMEOUT_ANSWER : failure === 'malformed' ? MALFORMED_ANSWER : unavailableAnswer(failure, err.code);
    if (failure !== 'malformed' && this.retryAllowed(failure) && this.startRetry()) {
      this.lastFailure = answer;
      return this.send();
    }
    return this.local(answer.status, answer.reason, answer.text);
  }

  /** Aborts the attempt in flight (client gone, body over the limit). */
  abortUpstream(): void {
    this.upstreamAbort?.(CLIENT_GONE);
  }

  /** Policy check only (attempts left, cause configured, body still unread, idempotency). */
  private retryAllowed(cause: Failure | '502' | '503' | '504'): boolean {
    const policy = this.svc.cfg.retries;
    if (this.attempt >= policy.attempts || this.done || this.body?.started === true) return false;
    if (!policy.on.includes(cause as never)) return false;
    // A request that never reached an upstream may always be retried; one that did only if idempotent.
    return cause === 'connect-failure' || IDEMPOTENT.has(this.method);
  }

  /** Takes a retry-budget slot for the next attempt (held until that attempt ends). */
  private startRetry(): boolean {
    if (!takeRetrySlot(this.state, this.deps.metrics, this.svc.name)) return false;
    this.holdsRetrySlot = true;
    (this.tried ??= new Set()).add(this.upstream!.spec.id);
    this.attempt++;
    return true;
  }

  private releaseRetrySlot(): void {
    if (this.holdsRetrySlot) {
      this.holdsRetrySlot = false;
      this.state.budget.onRetryEnd();
    }
  }

  private releaseAttempt(rt: UpstreamRuntime): void {
    releaseUpstream(this.state, rt);
    this.releaseRetrySlot();
  }

  private onClientClose(): void {
    // Answered in full. (`writableFinished` alone is not enough: node:http2 reports a stream the client
    // reset mid-request as finished too.)
    if (this.done && this.res.writableFinished) return;
    if (!this.done) {
      this.status = 499; // nginx's "client closed request", for the access log only
      this.reason = 'client-closed';
      this.finish();
    }
    this.upstreamAbort?.(CLIENT_GONE);
  }

  // --- BodyOwner: the client broke a body rule; the attempt in flight is aborted, not charged. ---

  // The answer is written first: aborting calls back into onError synchronously, which must find the
  // exchange already answered (so it is neither retried nor logged as a client abort).
  onTooLarge(): void {
    this.local(413, 'body-too-large', 'request body too large', true);
    this.abortUpstream();
  }

  onIdleTimeout(): void {
    this.local(408, 'body-timeout', 'request body timeout', true);
    this.abortUpstream();
  }

  /** An answer meshgate writes itself. `close`: the rest of the body will not be read (413, 408). */
  local(status: number, reason: string, text: string, close = false): void {
    if (this.done) return;
    this.status = status;
    this.reason = reason;
    const up = this.upstream?.spec.id;
    this.deps.metrics.localResponses.labels(this.svc.name, String(status), reason).inc();
    if (status >= 500) this.deps.log.warn({ service: this.svc.name, upstream: up, requestId: this.requestId, status, reason }, text);
    if (close && !this.req.complete) lingeringClose(this.req);
    writeLocal(this.res, status, reason, text, this.requestId, close || this.deps.isDraining());
    this.bytesSent = Buffer.byteLength(text) + String(status).length + 2;
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    // Whatever of the body is still coming is read and dropped (the connection stays in sync).
    this.body?.detach(true);
    this.state.budget.onRequestEnd();
    this.releaseRetrySlot();
    this.deps.accessLog?.write(this.method, this.req.url ?? '', this.status, this.svc.name, this.upstream?.spec.id, performance.now() - this.startMs, this.requestId, this.attempt + 1, this.reason, this);
  }
}

const SUCCESS: CallResult = { kind: 'success' };
/** What an attempt timed here is aborted with (classifyError: a timeout, as undici's own were). */
const RESPONSE_TIMEOUT = Object.assign(new Error('upstream response timeout'), { code: 'MG_RESPONSE_TIMEOUT' as const });
const BODY_TIMEOUT = Object.assign(new Error('upstream body idle timeout'), { code: 'MG_BODY_TIMEOUT' as const });
/** The reason we give undici when we abort an attempt ourselves; recognised by identity. */
const CLIENT_GONE = Object.assign(new Error('client closed the request'), { code: 'MG_CLIENT_GONE' });
const TIMEOUT: CallResult = { kind: 'local-origin', cause: 'timeout' };
const CONNECT_FAILURE: CallResult = { kind: 'local-origin', cause: 'connect-failure' };
const RESET: CallResult = { kind: 'local-origin', cause: 'reset' };

/**
 * How much of an HTTP/1.1 answer may wait in meshgate for its client (beyond the kernel's socket
 * buffer) before the upstream read pauses. Not write()'s own answer: that is false for any chunk over
 * the socket's 16 KiB high-water mark, so each 64 KiB read undici hands over for a large response
 * paused and resumed the upstream read even when the kernel took the chunk at once. Two reads' worth
 * lets a client that keeps up take a large body without a pause (1 MiB: −14% user CPU, docs/benchmarks.md
 * 6 Dec 2026) and bounds what a slow one holds (NGINX's `proxy_buffers`: 32–64 KiB by default). The
 * socket's own high-water mark stays Node's, so an unread request body still stops at 16 KiB. An
 * HTTP/2 answer (H2Response) has no `writableLength`: its write() answers alone, its stream's flow
 * control and the stall watch bound it.
 */
const CLIENT_BUFFER_BYTES = 128 * 1024;

/** How long a connection closed on an unread body keeps reading (and dropping) before it is cut. */
const LINGER_MS = 2_000;

/**
 * Closing a connection while the client is still sending makes the kernel answer its next bytes with
 * a reset, which can destroy our 413/408 in the client's receive buffer before it reads it. So, like
 * NGINX's lingering_close, the socket is half-closed after the answer and the rest of the body is read
 * and dropped for up to LINGER_MS (or until the client closes), then destroyed. Node calls
 * `destroySoon()` once the answer is flushed; this socket's copy defers the destroy.
 */
export function lingeringClose(req: IncomingMessage): void {
  // HTTP/2: the answer ends the stream alone (node:http2 resets it if the body is still coming); the
  // connection, and its other streams, stay.
  if (req.httpVersionMajor === 2) return;
  const sock = req.socket as Socket & { destroySoon?: () => void };
  sock.destroySoon = () => {
    sock.end();
    const t = setTimeout(() => sock.destroy(), LINGER_MS);
    sock.once('close', () => clearTimeout(t));
  };
}

export function hashKeyOf(h: HashSource, req: IncomingMessage, clientIp: string): string | undefined {
  switch (h.kind) {
    case 'header': {
      const v = req.headers[h.name];
      return Array.isArray(v) ? v[0] : v || undefined;
    }
    case 'cookie':
      return cookieValue(req.headers.cookie, h.name);
    case 'query': {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      if (q === -1) return undefined;
      return new URLSearchParams(url.slice(q + 1)).get(h.name) ?? undefined;
    }
    case 'path': {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      return q === -1 ? url : url.slice(0, q);
    }
    case 'client-ip':
      return clientIp;
  }
}

/** Writes meshgate's own short answer (also used by the server for 400/404/413/431). */
export function writeLocal(res: ServerResponse, status: number, reason: string, text: string, requestId: string, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${text}\n`;
  if (close) res.shouldKeepAlive = false;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-meshgate-reason': reason,
    'x-request-id': requestId,
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Entry point for one data-plane request that passed `requestProblem` (server.ts); `expectsContinue`:
 *  Node left `100 Continue` to us. */
export function forward(deps: ForwarderDeps, req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
  // The one read of the routing snapshot for this request: its service, balancer, limits, to the end.
  const snapshot = deps.routing.snapshot;
  const url = req.url ?? '/';
  const name = snapshot?.routes.match(req.headers.host, url);
  const svc = name === undefined ? undefined : snapshot!.services.get(name);
  if (svc === undefined) {
    deps.metrics.localResponses.labels('', '404', 'no-route').inc();
    writeLocal(res, 404, 'no-route', 'no route for this host and path', requestIdFor(req.headers['x-request-id']), deps.isDraining());
    return;
  }
  const cl = req.headers['content-length'];
  const limits = snapshot!.limits;
  if (cl !== undefined && Number(cl) > limits.maxBodyBytes) {
    deps.metrics.localResponses.labels(svc.name, '413', 'body-too-large').inc();
    // The body is not read: close the connection after answering, so it is never parsed as a request.
    lingeringClose(req);
    writeLocal(res, 413, 'body-too-large', 'request body too large', requestIdFor(req.headers['x-request-id']), true);
    return;
  }
  new Exchange(deps, req, res, svc, deps.states(svc.name), limits, expectsContinue).start();
}

export type { Exchange };
