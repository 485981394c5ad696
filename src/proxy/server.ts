/**
 * The data-plane listener: node:http with limits, the forwarder, the upgrade proxy, and drain.
 *
 * Malformed requests never reach an upstream: Node's llhttp parser (strict mode: no lenient flags)
 * refuses a request with both Content-Length and Transfer-Encoding (RFC 9112 §6.1, request smuggling)
 * and headers over `maxHeaderSize`; `clientError` answers them 400 / 431 and closes the connection.
 *
 * Drain (SIGTERM): stop accepting, close idle keep-alive connections, answer in-flight requests with
 * `Connection: close`, and after `drainTimeoutMs` destroy whatever is left.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { forward, type ForwarderDeps } from './forward.js';
import type { UpgradeProxy } from './upgrade.js';

export interface DataPlaneOptions {
  readonly maxHeaderBytes: number;
  /** Keep-alive idle timeout for client connections. */
  readonly keepAliveTimeoutMs: number;
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
    this.server = createServer(
      {
        maxHeaderSize: opts.maxHeaderBytes,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        // Slowloris guard: the whole header block must arrive within 30 s (Node's default is 60 s).
        headersTimeout: 30_000,
        // No whole-request timeout: bodies may stream for long; idle time is bounded per hop instead.
        requestTimeout: 0,
        noDelay: true,
      },
      (req: IncomingMessage, res: ServerResponse) => {
        this.inFlight++;
        res.once('close', () => this.inFlight--);
        forward(full, req, res);
      },
    );
    this.server.on('upgrade', (req, socket, head) => this.upgrades.handle(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    this.metrics.localResponses.labels('', String(status), err.code ?? 'client-error').inc();
    this.log.debug({ code: err.code, reason: err.message }, 'malformed request refused');
    const body = `${status} ${text}\n`;
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
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
