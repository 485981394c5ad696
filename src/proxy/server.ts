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
 * Drain (SIGTERM): stop accepting, close idle keep-alive connections, answer in-flight requests with
 * `Connection: close`, refuse new upgrades (503 `shutting-down`), and after `drainTimeoutMs` destroy
 * whatever is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { forward, lingeringClose, writeLocal, type ForwarderDeps } from './forward.js';
import { requestIdFor } from './headers.js';
import { requestProblem, type RequestLimits } from './request-checks.js';
import type { UpgradeProxy } from './upgrade.js';

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
  /** Open client connections allowed; more are closed at accept. */
  readonly maxConnections: number;
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
  private draining = false;
  private inFlight = 0;

  constructor(
    private readonly deps: Omit<ForwarderDeps, 'isDraining'>,
    private readonly upgrades: UpgradeProxy,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    opts: DataPlaneOptions,
  ) {
    const full: ForwarderDeps = { ...deps, isDraining: () => this.draining };
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
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      this.metrics.localResponses.labels('', '417', 'expectation-failed').inc();
      writeLocal(res, 417, 'expectation-failed', 'only 100-continue is supported', requestIdFor(req.headers['x-request-id']), true);
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrades.handle(req, socket, head, this.limits));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  private readonly limits: RequestLimits;

  private onRequest(full: ForwarderDeps, req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    this.inFlight++;
    res.once('close', () => this.inFlight--);
    const bad = requestProblem(req, this.limits);
    if (bad !== undefined) {
      this.metrics.localResponses.labels('', String(bad.status), bad.reason).inc();
      // The body (if any) is not read: the connection closes after the answer.
      lingeringClose(req);
      writeLocal(res, bad.status, bad.reason, bad.text, requestIdFor(req.headers['x-request-id']), true);
      return;
    }
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
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    // Keep closing connections that become idle while the rest finish.
    const sweeper = setInterval(() => this.server.closeIdleConnections(), 100);
    const result = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
    clearInterval(sweeper);
    clearTimeout(timer);
    this.upgrades.closeAll();
    if (result === 'timeout') {
      this.server.closeAllConnections();
      await closed;
      return { forced: true };
    }
    return { forced: false };
  }
}
