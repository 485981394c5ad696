/**
 * The data-plane listener: node:http with limits, the forwarder, the upgrade proxy, and drain.
 *
 * Malformed requests never reach an upstream: Node's llhttp parser (strict mode: no lenient flags)
 * refuses a request with both Content-Length and Transfer-Encoding (RFC 9112 §6.1, request smuggling)
 * and headers over `maxHeaderSize`; `clientError` answers them 400 / 431 (and 408 for the headers and
 * whole-request timeouts) with `x-meshgate-reason`, and closes the connection. More header lines than
 * `maxHeadersCount` → 431 and a bad Host → 400 (requestProblem, request-checks.ts: the Upgrade path
 * runs the same checks).
 *
 * Client limits (docs/config.md "Client connections"): headersTimeout and requestTimeout are Node's
 * own (checked every `connectionsCheckingInterval`, set to a tenth of the shorter one so they fire
 * within 10 % of their value); the body idle timeout is the forwarder's (request-body.ts);
 * maxConnections is Node's `server.maxConnections` (a connection past it is closed at accept).
 *
 * TLS (`node.tls`, tls-listener.ts): the HTTPS listener hands its HTTP/1.1 connections to this same
 * node:http server and its HTTP/2 streams (h2-front.ts) to this same `onRequest`, so every request of
 * either listener takes one path. `redirectHttp`: a request on the plain listener is answered 308 to
 * its https URL instead (Upgrade requests too), after the Host check.
 *
 * Drain (SIGTERM): stop accepting on both listeners, close idle keep-alive connections, answer in-flight
 * requests with `Connection: close` (HTTP/2: GOAWAY, open streams finish), refuse new upgrades (503
 * `shutting-down`), and after `drainTimeoutMs` destroy whatever is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { forward, lingeringClose, writeLocal, type ForwarderDeps } from './forward.js';
import { protoOf, requestIdFor } from './headers.js';
import { requestProblem, type RequestLimits } from './request-checks.js';
import type { UpgradeProxy } from './upgrade.js';
import type { CertificateSet } from '../tls/certificates.js';
import { H2Front } from './h2-front.js';
import { TlsListener } from './tls-listener.js';
import { writeLocalRaw } from './upgrade-wire.js';
import { listenOn } from '../lib/listen.js';
import { Deadlines } from './deadlines.js';

export interface DataPlaneOptions {
  readonly maxHeaderBytes: number;
  /** Keep-alive idle timeout for client connections. */
  readonly keepAliveTimeoutMs: number;
  /** The whole request head must arrive within this (ms). */
  readonly headersTimeoutMs: number;
  /** The whole request (head and body) must arrive within this (ms; 0 disables). */
  readonly requestTimeoutMs: number;
  /** Header lines allowed in a request; more → 431. */
  readonly maxHeadersCount: number;
  /** Open client connections allowed; more are closed at accept (per listener). */
  readonly maxConnections: number;
  /** `node.bodyIdleTimeout`: also the bound on an HTTP/2 stream whose answer the client's window holds back. */
  readonly bodyIdleTimeoutMs: number;
}

/** 408/400/431 for what Node's parser and timers refuse, with the `x-meshgate-reason` we give it. */
function clientErrorAnswer(code: string | undefined): [status: number, text: string, reason: string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return [431, 'Request Header Fields Too Large', 'header-too-large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT': return [408, 'Request Timeout', 'request-timeout'];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return [413, 'Payload Too Large', 'chunk-extensions-too-large'];
    default: return [400, 'Bad Request', 'malformed-request'];
  }
}

export class DataPlane {
  readonly server: Server;
  /** The HTTPS listener, when `node.tls` is set (enableTls). */
  tls: TlsListener | undefined;
  /** `node.tls.redirectHttp`: the TLS listener's port, to answer plain requests 308 to it. */
  redirectToPort: number | undefined;
  private draining = false;
  private inFlight = 0;
  /** Upstream response and body-idle timeouts of this listener's exchanges (one timer for all). */
  private readonly deadlines = new Deadlines();
  private readonly full: ForwarderDeps;

  constructor(
    private readonly deps: Omit<ForwarderDeps, 'isDraining' | 'deadlines'>,
    private readonly upgrades: UpgradeProxy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: DataPlaneOptions,
  ) {
    const full: ForwarderDeps = { ...deps, isDraining: () => this.draining, deadlines: this.deadlines };
    this.full = full;
    const shortest = Math.min(opts.headersTimeoutMs, opts.requestTimeoutMs || Infinity);
    this.server = createServer(
      {
        maxHeaderSize: opts.maxHeaderBytes,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        // Slowloris guard: the whole header block must arrive within this.
        headersTimeout: opts.headersTimeoutMs,
        requestTimeout: opts.requestTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(shortest / 10))),
        // Host is checked by requestProblem (request-checks.ts, both paths), which answers with a reason.
        requireHostHeader: false,
        noDelay: true,
      },
      (req: IncomingMessage, res: ServerResponse) => this.onRequest(full, req, res, false),
    );
    // One more than allowed, so a request past the limit is seen (and refused) rather than cut short.
    this.server.maxHeadersCount = opts.maxHeadersCount + 1;
    this.limits = { maxHeadersCount: opts.maxHeadersCount };
    this.server.maxConnections = opts.maxConnections;
    this.server.on('drop', () => this.metrics.localResponses.labels('', '0', 'max-connections').inc());
    // `Expect: 100-continue`: the forwarder writes 100 once an upstream is there (forward.ts).
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(full, req, res, true));
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => this.onExpectation(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.redirects(req)) return this.redirectUpgrade(req, socket);
      this.upgrades.handle(req, socket, head, this.limits);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  private readonly limits: RequestLimits;
  private readonly requestClosed = (): void => {
    this.inFlight--;
  };

  /** The HTTPS listener beside the plain one: TLS in front of this same handler, HTTP/2 when `http2`. */
  enableTls(certs: CertificateSet, http2: boolean): TlsListener {
    const o = this.opts;
    const h2 = http2
      ? new H2Front(
        { maxHeaderBytes: o.maxHeaderBytes, maxHeadersCount: o.maxHeadersCount, idleTimeoutMs: o.keepAliveTimeoutMs, stallTimeoutMs: o.bodyIdleTimeoutMs, requestTimeoutMs: o.requestTimeoutMs },
        { request: (req, res, expectsContinue) => this.onRequest(this.full, req, res, expectsContinue), expectation: (req, res) => this.onExpectation(req, res) },
        this.metrics,
        this.log,
        this.deadlines,
      )
      : undefined;
    this.tls = new TlsListener(certs, this.server, h2, this.metrics, this.log, { handshakeTimeoutMs: o.headersTimeoutMs, maxConnections: o.maxConnections });
    return this.tls;
  }

  private onExpectation(req: IncomingMessage, res: ServerResponse): void {
    this.metrics.localResponses.labels('', '417', 'expectation-failed').inc();
    writeLocal(res, 417, 'expectation-failed', 'only 100-continue is supported', requestIdFor(req.headers['x-request-id']), true);
  }

  /** A plain-listener request to answer with the https URL (`redirectHttp`). */
  private redirects(req: IncomingMessage): boolean {
    return this.redirectToPort !== undefined && protoOf(req.socket) === 'http';
  }

  /** The https URL of `req` (Host without its port, the TLS listener's port), or undefined without a Host. */
  private httpsUrl(req: IncomingMessage): string | undefined {
    const host = req.headers.host;
    if (!host) return undefined;
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    const port = this.redirectToPort === 443 ? '' : `:${this.redirectToPort}`;
    return `https://${name}${port}${req.url ?? '/'}`;
  }

  private redirect(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIdFor(req.headers['x-request-id']);
    const location = this.httpsUrl(req);
    if (location === undefined) {
      this.metrics.localResponses.labels('', '400', 'missing-host').inc();
      return writeLocal(res, 400, 'missing-host', 'a Host header is needed to redirect to https', requestId, true);
    }
    this.metrics.localResponses.labels('', '308', 'https-redirect').inc();
    // The body (if any) is not read: the connection closes after the answer, as for a 413.
    if (!req.complete) lingeringClose(req);
    res.setHeader('location', location);
    writeLocal(res, 308, 'https-redirect', `use ${location}`, requestId, !req.complete);
  }

  private redirectUpgrade(req: IncomingMessage, socket: Socket): void {
    socket.on('error', () => undefined);
    const requestId = requestIdFor(req.headers['x-request-id']);
    const bad = requestProblem(req, this.limits);
    const location = bad === undefined ? this.httpsUrl(req) : undefined;
    if (location === undefined) {
      const [status, reason] = bad ? [bad.status, bad.reason] : [400, 'missing-host'];
      this.metrics.localResponses.labels('', String(status), reason).inc();
      return writeLocalRaw(socket, status, reason, bad?.text ?? 'a Host header is needed to redirect to https', requestId);
    }
    this.metrics.localResponses.labels('', '308', 'https-redirect').inc();
    writeLocalRaw(socket, 308, 'https-redirect', `use ${location}`, requestId, ['location', location]);
  }

  private onRequest(full: ForwarderDeps, req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    this.inFlight++;
    // 'close' comes once per response: a plain listener shared by every request (no onceWrapper, no
    // closure per request).
    res.on('close', this.requestClosed);
    const bad = requestProblem(req, this.limits);
    if (bad !== undefined) {
      this.metrics.localResponses.labels('', String(bad.status), bad.reason).inc();
      // The body (if any) is not read: the connection closes after the answer.
      lingeringClose(req);
      writeLocal(res, bad.status, bad.reason, bad.text, requestIdFor(req.headers['x-request-id']), true);
      return;
    }
    if (this.redirects(req)) return this.redirect(req, res);
    forward(full, req, res, expectsContinue);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // A response already under way on this socket must not get a second status line in its body
    // (Node's own default handler makes the same check).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (inFlight && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    const [status, text, reason] = clientErrorAnswer(err.code);
    this.metrics.localResponses.labels('', String(status), reason).inc();
    this.log.debug({ code: err.code, reason: err.message }, 'malformed request refused');
    const body = `${status} ${text}\n`;
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nx-meshgate-reason: ${reason}\r\nConnection: close\r\n\r\n${body}`);
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Stop accepting, let in-flight requests finish up to `timeoutMs`, then cut the rest. */
  async drain(timeoutMs: number): Promise<{ forced: boolean }> {
    this.draining = true;
    this.upgrades.refuseNew();
    const closed = Promise.all([new Promise<void>((resolve) => this.server.close(() => resolve())), this.tls?.close()]);
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    // Keep closing connections that become idle while the rest finish (HTTP/1.1 over TLS included:
    // they belong to the same node:http server).
    const sweeper = setInterval(() => this.server.closeIdleConnections(), 100);
    const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
    clearInterval(sweeper);
    clearTimeout(timer);
    this.upgrades.closeAll();
    if (result === 'timeout') {
      this.server.closeAllConnections();
      this.tls?.destroyAll();
      await closed;
      this.deadlines.close();
      return { forced: true };
    }
    this.deadlines.close();
    return { forced: false };
  }
}
