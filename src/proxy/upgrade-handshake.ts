/**
 * One Upgrade handshake with one upstream: a TCP (or TLS) connect bounded by the upgrade connect
 * timeout, the request head written by node:http's client, and the answer's head bounded by the
 * handshake timeout. The outcome is reported exactly once: upgraded (101, with the raw socket), a
 * normal answer (any other final status, body still to read), or a failure with its cause.
 *
 * Why not undici here: its `upgrade` API throws on a non-101 answer instead of handing it over, and
 * an upgraded socket leaves the pool for good; node:http's client gives both outcomes as events on a
 * socket this module owns (so the connect timeout is ours, not a pool's).
 *
 * Invariant: the socket has an 'error' listener from the moment it exists, so no error on it is ever
 * unhandled, before, during or after the handshake.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';
import { classifyError } from './forward.js';
import { upstreamTlsOptions } from './upstream-tls.js';

export type HandshakeFailure = 'connect-failure' | 'reset' | 'timeout' | 'malformed';

export interface HandshakeHandler {
  onUpgraded(res: IncomingMessage, socket: Socket, head: Buffer): void;
  onResponse(res: IncomingMessage): void;
  onFailure(failure: HandshakeFailure, code: string): void;
}

/** Where an upstream origin is dialled; parsed once per origin string (a URL parse per upgrade showed
 *  in profiles); the cache holds the origins the config and the cluster name, bounded below. */
export interface Dial {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
}

const dials = new Map<string, Dial>();
/** Bound on the cache: far above any real fleet, so a long-running peer's churn cannot grow it forever. */
const MAX_DIALS = 10_000;

export function dialFor(origin: string): Dial {
  let d = dials.get(origin);
  if (d === undefined) {
    const u = new URL(origin);
    const tls = u.protocol === 'https:';
    d = { tls, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || (tls ? 443 : 80)) };
    if (dials.size >= MAX_DIALS) dials.clear();
    dials.set(origin, d);
  }
  return d;
}

export interface HandshakeOptions {
  readonly origin: Dial;
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, …] request headers (from upstreamRequestHeaders). */
  readonly headers: string[];
  /** The service's `upstreamTls` (https origins; upstream-tls.ts is the one definition of the options). */
  readonly tls?: UpstreamTlsMaterial | undefined;
  readonly connectTimeoutMs: number;
  /** 0 disables. */
  readonly handshakeTimeoutMs: number;
}

const CONNECT_TIMEOUT = Object.assign(new Error('upgrade connect timeout'), { code: 'MG_UPGRADE_CONNECT_TIMEOUT' });
const HANDSHAKE_TIMEOUT = Object.assign(new Error('upgrade handshake timeout'), { code: 'MG_UPGRADE_HANDSHAKE_TIMEOUT' });
const ABORTED = Object.assign(new Error('upgrade aborted'), { code: 'MG_UPGRADE_ABORTED' });

export class UpstreamHandshake {
  private settled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly socket: Socket;
  private readonly req: ClientRequest;

  constructor(opts: HandshakeOptions, private readonly handler: HandshakeHandler) {
    const { tls, host, port } = opts.origin;
    this.socket = tls
      ? tlsConnect({ host, port, ...upstreamTlsOptions(host, opts.tls), ALPNProtocols: ['http/1.1'] })
      : netConnect({ host, port });
    this.socket.on('error', () => undefined); // the ClientRequest reports it; this guards the gaps
    this.socket.setNoDelay(true);
    this.arm(opts.connectTimeoutMs, CONNECT_TIMEOUT);
    this.socket.once(tls ? 'secureConnect' : 'connect', () => this.arm(opts.handshakeTimeoutMs, HANDSHAKE_TIMEOUT));
    this.req = request({ method: opts.method, path: opts.path, headers: opts.headers, setHost: false, createConnection: () => this.socket });
    this.req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (!this.settle()) return socket.destroy();
      // A 101 without an Upgrade header names no protocol to switch to.
      if (typeof res.headers.upgrade !== 'string') {
        socket.destroy();
        return this.handler.onFailure('malformed', 'MG_UPGRADE_NO_PROTOCOL');
      }
      this.handler.onUpgraded(res, socket, head);
    });
    this.req.on('response', (res: IncomingMessage) => {
      res.on('error', () => undefined);
      if (!this.settle()) return res.destroy();
      this.handler.onResponse(res);
    });
    this.req.on('error', (err: NodeJS.ErrnoException) => {
      this.socket.destroy();
      if (!this.settle()) return;
      if (err === CONNECT_TIMEOUT) return this.handler.onFailure('connect-failure', CONNECT_TIMEOUT.code);
      if (err === HANDSHAKE_TIMEOUT) return this.handler.onFailure('timeout', HANDSHAKE_TIMEOUT.code);
      const failure = classifyError(err);
      this.handler.onFailure(failure === 'aborted' ? 'reset' : failure, err.code ?? err.message);
    });
    this.req.end();
  }

  /** Stops the handshake (the client went away); no outcome is reported after this. */
  abort(): void {
    if (!this.settle()) return;
    this.req.destroy(ABORTED);
    this.socket.destroy();
  }

  private arm(ms: number, reason: Error): void {
    clearTimeout(this.timer);
    this.timer = ms > 0 ? setTimeout(() => this.req.destroy(reason), ms) : undefined;
  }

  /** True the first time: the outcome is decided now. */
  private settle(): boolean {
    clearTimeout(this.timer);
    if (this.settled) return false;
    this.settled = true;
    return true;
  }
}
