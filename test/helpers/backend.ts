/**
 * Real HTTP backends for integration tests, on loopback port 0. Each records what it received so a
 * test can assert what reached (or never reached) an upstream.
 *
* Routes (matched on the last path segment): /id → its name; /echo → the request's method, url and headers as JSON; /slow?ms=N → answers
 * after N ms (and records whether the client went away first); /upload → sha256 of the body;
 * /download?bytes=N → N deterministic bytes; /status/N → status N; /healthz → 200, or the status set
 * with `setHealth`; WebSocket upgrades on any path echo messages.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly hits: number;
  readonly received: IncomingMessage[];
  /** Requests to /slow whose client disconnected before the answer. */
  readonly aborted: number;
  setHealth(status: number): void;
  /** Answer every non-health request with this status (0 = normal behaviour). */
  setFailAll(status: number): void;
  /** Add latency (ms) to every /id request. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

export function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

export async function startBackend(name: string, port = 0): Promise<Backend> {
  let health = 200;
  let failAll = 0;
  let delay = 0;
  let hits = 0;
  let aborted = 0;
  const received: IncomingMessage[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    if (url.pathname === '/healthz') {
      res.writeHead(health, { 'content-type': 'text/plain' });
      res.end(health === 200 ? 'ok' : 'unhealthy');
      return;
    }
    hits++;
    received.push(req);
    if (received.length > 1000) received.shift();
    if (failAll) {
      res.writeHead(failAll, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(`${name} failing`);
      return;
    }
    res.setHeader('x-backend', name);
    // Routes match on the last path segment, so a test can prefix paths to pick a meshgate route.
    const last = `/${url.pathname.split('/').pop() ?? ''}`;
    switch (last) {
      case '/echo':
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'keep-alive': 'timeout=5', 'x-custom': 'kept' });
        res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers }));
        return;
      case '/slow': {
        const ms = Number(url.searchParams.get('ms') ?? 1000);
        let done = false;
        const t = setTimeout(() => {
          done = true;
          res.end(name);
        }, ms);
        res.once('close', () => {
          if (!done) {
            aborted++;
            clearTimeout(t);
          }
        });
        return;
      }
      case '/upload': {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          n += c.length;
          h.update(c);
        });
        req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
        return;
      }
      case '/download': {
        const bytes = Number(url.searchParams.get('bytes') ?? 0);
        const body = pattern(bytes);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
        // Write in 64 KiB pieces respecting backpressure, as a real streaming backend would.
        let off = 0;
        const pump = () => {
          while (off < bytes) {
            const end = Math.min(bytes, off + 65536);
            const ok = res.write(body.subarray(off, end));
            off = end;
            if (!ok) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      default:
        if (url.pathname.startsWith('/status/')) {
          res.writeHead(Number(url.pathname.slice(8)) || 500);
          res.end(name);
          return;
        }
        req.resume();
        if (delay) {
          setTimeout(() => res.end(name), delay);
          return;
        }
        res.end(name);
    }
  });
  server.keepAliveTimeout = 5_000;
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m, isBinary) => ws.send(isBinary ? m : `${name}:${m.toString()}`)));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return {
    name,
    port: p,
    url: `http://127.0.0.1:${p}`,
    get hits() {
      return hits;
    },
    get aborted() {
      return aborted;
    },
    received,
    setHealth: (s) => (health = s),
    setFailAll: (s) => (failAll = s),
    setDelay: (ms) => (delay = ms),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A TCP server that answers every request with bytes that are not HTTP. */
export async function startGarbageBackend(): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  let hits = 0;
  const server: NetServer = createNetServer((sock) => {
    sock.once('data', () => {
      hits++;
      sock.end('HTTP/1.1 2OO NOT-A-STATUS\r\nBroken Header Line\r\n\r\ngarbage');
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return hits;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A port that nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
