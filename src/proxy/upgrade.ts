/**
 * WebSocket and other `Upgrade` requests, proxied with http-proxy (DESIGN.md §6): route and pick as
 * for any request, then hand the socket pair to http-proxy, which relays bytes both ways.
 *
 * An upgraded connection lives outside the routing table: a reload or a membership change never
 * closes it (Caddy closes WebSockets on reload — caddy#5471 — and that is the thing to avoid). Only
 * shutdown does, through `closeAll()`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from '../observability/log.js';
import type { Router } from './routing.js';
import { clientIpOf, requestIdFor } from './headers.js';
import { hashKeyOf } from './forward.js';

export class UpgradeProxy {
  private readonly proxy = httpProxy.createProxyServer({ ws: true, xfwd: true, proxyTimeout: 0 });
  private readonly sockets = new Set<Duplex>();

  constructor(private readonly router: Router, private readonly log: Logger, private readonly random: () => number) {
    this.proxy.on('error', (err, _req, target) => {
      const sock = target as Duplex | undefined;
      this.log.warn({ err: err.message }, 'upgrade proxy error');
      if (sock && 'destroy' in sock) sock.destroy();
    });
  }

  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const table = this.router.table;
    const name = table?.routes.match(req.headers.host, req.url ?? '/');
    const svc = name === undefined ? undefined : table!.services.get(name);
    if (!svc) return refuse(socket, 404, 'no route');
    const clientIp = clientIpOf(req.socket.remoteAddress);
    const key = svc.hashOn ? hashKeyOf(svc.hashOn, req, clientIp) : undefined;
    const id = svc.balancer.pick({ hashKey: key, load: svc.load, nowMs: Date.now(), random: this.random });
    const rt = id === undefined ? undefined : svc.upstreams.get(id);
    if (!rt) return refuse(socket, 503, 'no healthy upstream');
    req.headers['x-request-id'] = requestIdFor(req.headers['x-request-id']);
    this.sockets.add(socket);
    rt.inFlight++;
    socket.once('close', () => {
      this.sockets.delete(socket);
      rt.inFlight--;
    });
    this.proxy.ws(req, socket, head, { target: rt.spec.url });
  }

  get openCount(): number {
    return this.sockets.size;
  }

  closeAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.proxy.close();
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  const body = `${status} ${text}\n`;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}
