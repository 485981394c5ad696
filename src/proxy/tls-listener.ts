/**
 * The HTTPS listener (`node.tls`, DESIGN.md §9): TLS is terminated here, then each connection goes to
 * the protocol ALPN chose — `h2` to the HTTP/2 front (h2-front.ts), anything else to the *same*
 * node:http server the plain listener uses, so an HTTP/1.1-over-TLS request (and a WebSocket `wss`
 * Upgrade) takes exactly the plain path: the same parser limits, timeouts, `clientError` answers,
 * `checkContinue`, Upgrade proxy and drain. A request knows it came over TLS by its socket
 * (headers.ts `protoOf`): `X-Forwarded-Proto: https`, sticky cookies with `Secure`.
 *
 * Certificates: SNI picks among the current CertificateSet by each certificate's own names
 * (tls/names.ts); no SNI or an unknown name gets the first. `setCertificates` swaps the set — new
 * handshakes get it, connections already open keep the pair they were made with (node:tls holds the
 * context per connection). Policy (minVersion, no renegotiation, no compression) lives in the contexts
 * (tls/certificates.ts).
 *
 * Sockets: accepted with TCP_NODELAY (`noDelay`, see the constructor), so small answers are not held
 * back by Nagle's algorithm. That is what the HTTP/1.1 connections (and `wss`) get; an h2 connection is
 * the same accepted socket, and node:http2's session sets TCP_NODELAY on it again by itself.
 *
 * Handshakes: one that does not complete within the handshake timeout (`node.headersTimeout`, the same
 * slowloris bound as a request head; nginx bounds it by `client_header_timeout`) is cut, and a failed
 * handshake (TLS 1.0/1.1 offered, garbage, no shared cipher) costs only its own socket; each is counted
 * as `meshgate_local_responses_total{status="0",reason="tls-handshake-…"}`.
 */
import { createServer as createTlsServer, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { CertificateSet } from '../tls/certificates.js';
import type { H2Front } from './h2-front.js';
import { listenOn } from '../lib/listen.js';

export interface TlsListenerOptions {
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
}

export class TlsListener {
  readonly server: TlsServer;
  private certs: CertificateSet;

  constructor(
    certs: CertificateSet,
    private readonly http1: HttpServer,
    private readonly h2: H2Front | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    opts: TlsListenerOptions,
  ) {
    this.certs = certs;
    this.server = createTlsServer({
      ...certs.default.options,
      ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      handshakeTimeout: opts.handshakeTimeoutMs,
      // TCP_NODELAY on every accepted socket, as node:http and node:https set by default and plain
      // tls.createServer does not: with Nagle on, a small TLS record written while an earlier one is
      // unacknowledged waits for that ACK. HTTP/1.1 over TLS ran that way; node:http2 turns Nagle off
      // on its own sockets, so h2 connections already had it.
      noDelay: true,
    });
    this.server.maxConnections = opts.maxConnections;
    this.server.on('drop', () => this.metrics.localResponses.labels('', '0', 'max-connections').inc());
    this.server.on('secureConnection', (socket: TLSSocket) => this.route(socket));
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const reason = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'tls-handshake-timeout' : 'tls-handshake-failed';
      this.metrics.localResponses.labels('', '0', reason).inc();
      this.log.debug({ code: err.code, reason: err.message, remote: socket.remoteAddress }, 'TLS handshake refused');
      socket.destroy();
    });
  }

  private contextFor(serverName: string): SecureContext {
    return this.certs.forServerName(serverName).context;
  }

  private route(socket: TLSSocket): void {
    if (socket.alpnProtocol === 'h2' && this.h2) this.h2.accept(socket);
    else this.http1.emit('connection', socket);
  }

  /** New handshakes use `set` from now on; open connections keep theirs. */
  setCertificates(set: CertificateSet): void {
    this.certs = set;
    this.server.setSecureContext(set.default.options);
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /** Stop accepting; resolves once every TLS connection has closed (HTTP/1.1 ones are drained by the
   *  shared node:http server, HTTP/2 ones by the h2 front's GOAWAY). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.h2?.closeGracefully();
    return closed;
  }

  /** The drain timed out: cut the HTTP/2 connections (the HTTP/1.1 ones go with the node:http server's). */
  destroyAll(): void {
    this.h2?.destroyAll();
  }
}
