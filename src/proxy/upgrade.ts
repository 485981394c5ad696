/**
 * WebSocket and other `Upgrade` requests (DESIGN.md §6): routed, balanced, pinned and answered like
 * any request, then relayed as a byte tunnel. This file is the entry (route, refuse, track for
 * shutdown); each request's journey is an UpgradeExchange (upgrade-exchange.ts).
 *
 * One request's path: the HTTP path's checks (requestProblem: 431 too many header lines, 400 bad
 * Host) → route (404) → refuse a body (400) → sticky pin (the HTTP path's StickyView) or
 * the balancer's pick (503) → circuit breaker (503) → handshake with the upstream (upgrade-handshake:
 * connect timeout → 502, handshake timeout → 504) → the upstream's 101 relayed and the sockets piped
 * (upgrade-tunnel), or its non-101 answer relayed as a normal response (upgrade-wire).
 *
 * Invariants:
 * - The upstream gets the headers the HTTP path sends, from the same function (upstreamRequestHeaders:
 *   hop-by-hop dropped, X-Forwarded-* replaced, x-request-id, x-meshgate-fence) plus the upgrade pair.
 * - No socket is ever without an 'error' listener: the client's from the first line of `handle`,
 *   the upstream's from its creation.
 * - In-flight accounting (breaker slot, service and upstream in-flight, pending, retry budget) is
 *   taken once and released exactly once; an open tunnel holds its in-flight slot, as Envoy counts an
 *   upgraded stream as an active request.
 * - A client that leaves or misbehaves is never charged to the upstream's health; connect failures,
 *   handshake timeouts, resets and malformed answers are, as on the HTTP path.
 * - One access-log line per request, written when it ends (a tunnel: at close, status 101, the whole
 *   duration, the end cause as reason).
 * - An open tunnel lives outside the routing snapshot: a reload or a membership change never closes it
 *   (Caddy closes WebSockets on reload — caddy#5471 — and that is the thing to avoid). Only shutdown
 *   does, through `closeAll()`.
 * - `Upgrade: h2c` is not tunnelled (RFC 9113 §3.1 deprecates it, and an h2 connection pinned to one
 *   upstream would bypass per-request routing): the request goes upstream without the upgrade, as a
 *   server may ignore Upgrade (RFC 9110 §7.8), and its answer is relayed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { requestIdFor } from './headers.js';
import { requestProblem, type RequestLimits } from './request-checks.js';
import { UpgradeExchange, type UpgradeDeps } from './upgrade-exchange.js';
import { writeLocalRaw } from './upgrade-wire.js';

export type { UpgradeDeps };

export class UpgradeProxy {
  private readonly live = new Set<UpgradeExchange>();
  private tunnels = 0;
  private closing = false;

  constructor(private readonly deps: UpgradeDeps) {}

  handle(req: IncomingMessage, socket: Duplex, head: Buffer, limits: RequestLimits): void {
    socket.on('error', noop); // node:http removed its own listener before handing the socket over
    const requestId = requestIdFor(req.headers['x-request-id']);
    const bad = requestProblem(req, limits);
    if (bad !== undefined) return this.refuse(socket, req, '', bad.status, bad.reason, bad.text, requestId);
    const url = req.url ?? '/';
    // The one read of the routing snapshot for this upgrade (as the HTTP path's forward()).
    const snapshot = this.deps.routing.snapshot;
    const name = snapshot?.routes.match(req.headers.host, url);
    const svc = name === undefined ? undefined : snapshot!.services.get(name);
    if (svc === undefined) return this.refuse(socket, req, '', 404, 'no-route', 'no route for this host and path', requestId);
    if (this.closing) return this.refuse(socket, req, svc.name, 503, 'shutting-down', 'peer shutting down', requestId);
    const cl = req.headers['content-length'];
    if ((cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined) {
      return this.refuse(socket, req, svc.name, 400, 'upgrade-with-body', 'an Upgrade request cannot carry a body', requestId);
    }
    const ex = new UpgradeExchange(this.deps, req, socket, head, svc, this.deps.states(svc.name), requestId, {
      onTunnel: (open) => (this.tunnels += open ? 1 : -1),
      onDone: (e) => this.live.delete(e),
    });
    this.live.add(ex);
    ex.start();
  }

  private refuse(socket: Duplex, req: IncomingMessage, service: string, status: number, reason: string, text: string, requestId: string): void {
    this.deps.metrics.localResponses.labels(service, String(status), reason).inc();
    writeLocalRaw(socket, status, reason, text, requestId);
    this.deps.accessLog?.write(req.method ?? 'GET', req.url ?? '', status, service, undefined, 0, requestId, 0, reason);
  }

  /** Open tunnels (upgraded connections). */
  get openCount(): number {
    return this.tunnels;
  }

  /** Drain has begun (SIGTERM): new upgrades are answered 503 `shutting-down` — a tunnel opened now
   *  would only be cut at the drain's end — while those already open keep running until closeAll. */
  refuseNew(): void {
    this.closing = true;
  }

  /** Shutdown: refuse new upgrades, stop handshakes under way, close every tunnel. */
  closeAll(): void {
    this.closing = true;
    for (const ex of [...this.live]) ex.shutdown();
  }
}

const noop = (): void => undefined;
