/**
 * The admin listener (DESIGN.md §4): health, metrics, status, membership writes, cluster changes,
 * reload, events and the dashboard. JSON in and out; errors as {error: {code, message}}.
 *
 * Invariants:
 * - Every mutating call (PUT, POST, DELETE) needs `Authorization: Bearer <token>` when a token is
 *   configured (scheme in any case); the comparison is constant-time. Reads stay open (it listens on
 *   loopback by default; a non-loopback listener without a token is refused by the config check).
 * - Every request's Host must name this listener (guard.ts: DNS rebinding); mutations refuse
 *   cross-origin browser requests and bodies that are not application/json.
 * - Request bodies are capped (node.admin.maxBodySize); a bigger body is refused 413 without being
 *   buffered, and drained so the client sees the answer (body.ts).
 * - The admin API reads the rest of the peer only through the AdminBackend interface the app passes in.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { linger, readJson } from './body.js';
import { AdminError, badRequest, notFound } from './errors.js';
import { bearerToken, contentTypeRefusal, crossOriginRefusal, hostRefusal } from './guard.js';
import type { EventStreams } from './sse.js';
import { listenOn } from '../lib/listen.js';

export interface AdminBackend {
  isServing(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  status(): unknown;
  serviceUpstreams(service: string): unknown;
  putUpstream(service: string, id: string, body: unknown, clientSeq: string | undefined): Promise<unknown>;
  deleteUpstream(service: string, id: string, clientSeq: string | undefined): Promise<unknown>;
  addPeer(body: unknown): Promise<unknown>;
  removePeer(id: string): Promise<unknown>;
  transferLeadership(body: unknown): Promise<unknown>;
  reload(): Promise<{ ok: boolean }>;
  consistentRead?(): Promise<void>;
  dashboardHtml(): string;
  dashboardAsset(name: string): { type: string; body: Buffer | string } | undefined;
}

export interface AdminOptions {
  readonly token: string | undefined;
  readonly maxBodyBytes: number;
  /** node.admin.allowedHosts: names this listener answers to besides IP literals and localhost. */
  readonly allowedHosts?: readonly string[];
}

export class AdminServer {
  readonly server: Server;
  private readonly tokenHash: Buffer | undefined;

  constructor(private readonly backend: AdminBackend, private readonly events: EventStreams, private readonly opts: AdminOptions) {
    this.tokenHash = opts.token ? sha256(opts.token) : undefined;
    this.server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        linger(req); // refused before its body was read: drain it so the client sees the answer, not a reset
        sendError(res, err);
      });
    });
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  close(): Promise<void> {
    this.events.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.tokenHash) return true;
    const got = bearerToken(req.headers.authorization);
    return got !== undefined && timingSafeEqual(sha256(got), this.tokenHash);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      throw badRequest('the request target is not a valid path');
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const badHost = hostRefusal(req.headers.host, { allowedHosts: this.opts.allowedHosts ?? [] });
    if (badHost) throw new AdminError(403, 'MG_ERR_ADMIN_HOST_NOT_ALLOWED', badHost);
    if (method !== 'GET' && method !== 'HEAD') {
      const crossOrigin = crossOriginRefusal(req.headers);
      if (crossOrigin) throw new AdminError(403, 'MG_ERR_ADMIN_CROSS_ORIGIN', crossOrigin);
      if (!this.authorized(req)) {
        throw new AdminError(req.headers.authorization ? 403 : 401, 'MG_ERR_ADMIN_UNAUTHORIZED', 'a valid bearer token is required for this call');
      }
      if (hasBody(req)) {
        // DELETE has no body semantics (RFC 9110 §9.3.5): one sent anyway is a client bug, not ignored.
        if (method === 'DELETE') throw badRequest('DELETE takes no body');
        const badType = contentTypeRefusal(req.headers['content-type']);
        if (badType) throw new AdminError(415, 'MG_ERR_ADMIN_UNSUPPORTED_MEDIA_TYPE', badType);
      }
    }
    // Idempotent retries of membership writes: `x-meshgate-client: <client-id>:<seq>`.
    const clientSeq = typeof req.headers['x-meshgate-client'] === 'string' ? req.headers['x-meshgate-client'] : undefined;

    if (path === '/healthz' && method === 'GET') {
      const ok = this.backend.isServing();
      return sendJson(res, ok ? 200 : 503, { status: ok ? 'serving' : 'not serving' });
    }
    if (path === '/metrics' && method === 'GET') {
      const m = await this.backend.metrics();
      res.writeHead(200, { 'content-type': m.contentType });
      res.end(m.body);
      return;
    }
    if (path === '/api/v1/status' && method === 'GET') {
      if (url.searchParams.get('consistent') === 'true') await this.consistent();
      return sendJson(res, 200, this.backend.status());
    }
    if (path === '/api/v1/events' && method === 'GET') {
      this.events.attach(res);
      return;
    }
    if ((path === '/dashboard' || path === '/dashboard/') && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(this.backend.dashboardHtml());
      return;
    }
    if (path.startsWith('/dashboard/assets/') && method === 'GET') {
      const asset = this.backend.dashboardAsset(path.slice('/dashboard/assets/'.length));
      if (!asset) throw notFound(`no asset ${path}`);
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
      res.end(asset.body);
      return;
    }
    if (path === '/api/v1/config/reload' && method === 'POST') {
      const body = await readJson(req, this.opts.maxBodyBytes, true);
      if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0) throw badRequest('config/reload takes no body (or {})');
      const r = await this.backend.reload();
      return sendJson(res, r.ok ? 200 : 400, r);
    }
    if (path === '/api/v1/cluster/peers' && method === 'POST') {
      return sendJson(res, 200, await this.backend.addPeer(await readJson(req, this.opts.maxBodyBytes)));
    }
    if (path === '/api/v1/cluster/leadership-transfer' && method === 'POST') {
      return sendJson(res, 200, await this.backend.transferLeadership(await readJson(req, this.opts.maxBodyBytes, true)));
    }
    let m = /^\/api\/v1\/cluster\/peers\/([^/]+)$/.exec(path);
    if (m && method === 'DELETE') return sendJson(res, 200, await this.backend.removePeer(segment(m[1]!)));
    m = /^\/api\/v1\/services\/([^/]+)\/upstreams$/.exec(path);
    if (m && method === 'GET') {
      if (url.searchParams.get('consistent') === 'true') await this.consistent();
      const svc = segment(m[1]!);
      const out = this.backend.serviceUpstreams(svc);
      if (out === undefined) throw notFound(`unknown service "${svc}"`);
      return sendJson(res, 200, out);
    }
    m = /^\/api\/v1\/services\/([^/]+)\/upstreams\/([^/]+)$/.exec(path);
    if (m && method === 'PUT') {
      const body = await readJson(req, this.opts.maxBodyBytes);
      return sendJson(res, 200, await this.backend.putUpstream(segment(m[1]!), segment(m[2]!), body, clientSeq));
    }
    if (m && method === 'DELETE') {
      return sendJson(res, 200, await this.backend.deleteUpstream(segment(m[1]!), segment(m[2]!), clientSeq));
    }
    throw notFound(`no such admin endpoint: ${method} ${path}`);
  }

  private async consistent(): Promise<void> {
    if (!this.backend.consistentRead) return;
    await this.backend.consistentRead();
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof AdminError) return sendJson(res, err.status, { error: { code: err.code, message: err.message } });
  const e = err as { status?: number; code?: string; message?: string };
  // Typed errors from other areas (raft, config) carry a stable code and sometimes a status.
  if (typeof e?.code === 'string' && e.code.startsWith('MG_ERR_')) {
    return sendJson(res, e.status ?? statusForCode(e.code), { error: { code: e.code, message: e.message ?? e.code } });
  }
  sendJson(res, 500, { error: { code: 'MG_ERR_ADMIN_INTERNAL', message: (err as Error)?.message ?? 'internal error' } });
}

function statusForCode(code: string): number {
  if (/NO_QUORUM|NOT_LEADER|UNAVAILABLE|TIMEOUT|DROPPED|CLOSED|STORAGE_FAILED/.test(code)) return 503;
  if (code.includes('CONFLICT') || code.includes('IN_PROGRESS') || code.includes('PENDING')) return 409;
  if (code.includes('NOT_FOUND') || code.includes('UNKNOWN')) return 404;
  return 400;
}

/** A request that carries a body (a declared length above 0, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** A percent-decoded path segment; malformed encoding ("%E0%A4%A") is a 400, not a 500. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest(`path segment ${JSON.stringify(raw.slice(0, 100))} is not valid percent-encoding`);
  }
}
