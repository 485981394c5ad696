/**
 * A real WebSocket backend (the `ws` server on node:http) for the Upgrade-path conformance tests. It
 * records the raw header block of every HTTP request and every upgrade handshake it receives, so a
 * test can compare what reached it through meshgate with what was sent.
 *
 * Paths (matched on the last path segment, so a test can prefix paths to pick a meshgate route):
 * - `/echo`   upgrade: echoes every message unchanged (text stays text, binary stays binary); the
 *             101 carries `x-backend: <name>`. Plain HTTP: 200 with `x-backend` (headers are recorded).
 * - `/refuse?status=N&ms=M&chunked=1` upgrade: after M ms answers a normal (non-101) response with
 *             status N (default 403), `x-backend`, `x-refused: yes` and a body, then closes; chunked=1
 *             sends the body without Content-Length.
 *             cut=1 promises a longer body than it sends, then resets the connection.
 * - `/silent` upgrade: never answers the handshake (the socket is held until close()).
 * - `/drop`   upgrade: accepts, and resets the TCP connection (RST) on the first message.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SeenRequest {
  readonly kind: 'http' | 'upgrade';
  readonly url: string;
  readonly rawHeaders: readonly string[];
}

export interface WsBackend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Every request and handshake received, oldest first. */
  readonly seen: SeenRequest[];
  /** WebSocket connections open on this backend now. */
  readonly openWebSockets: number;
  /** Handshakes answered with a refusal whose client had already gone (the crash scenario). */
  readonly refusalsWritten: number;
  /** Refusals not written because the proxy had already closed that upstream socket (its client left first). */
  readonly refusalsSkipped: number;
  close(): Promise<void>;
}

export const REFUSAL_BODY = 'upgrade refused by the backend\n';

export async function startWsBackend(name: string): Promise<WsBackend> {
  const seen: SeenRequest[] = [];
  const held = new Set<Duplex>();
  const sockets = new Set<Socket>();
  let refusalsWritten = 0;
  let refusalsSkipped = 0;
  const server: Server = createServer((req, res) => {
    seen.push({ kind: 'http', url: req.url ?? '', rawHeaders: req.rawHeaders });
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
    res.end(name);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  wss.on('headers', (headers) => headers.push(`x-backend: ${name}`));
  wss.on('connection', (ws: WebSocket) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push({ kind: 'upgrade', url: req.url ?? '', rawHeaders: req.rawHeaders });
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://backend');
    const last = url.pathname.split('/').pop();
    if (last === 'silent') {
      held.add(socket);
      socket.once('close', () => held.delete(socket));
      return;
    }
    if (last === 'refuse') {
      const status = Number(url.searchParams.get('status') ?? 403);
      const ms = Number(url.searchParams.get('ms') ?? 0);
      const chunked = url.searchParams.get('chunked') === '1';
      const cut = url.searchParams.get('cut') === '1';
      setTimeout(() => {
        if (socket.destroyed) {
          refusalsSkipped++;
          return;
        }
        if (cut) {
          socket.write(`HTTP/1.1 ${status} Refused\r\nContent-Length: 100000\r\n\r\n${REFUSAL_BODY}`, () => (socket as Socket).resetAndDestroy());
          return;
        }
        const framing = chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n`;
        const body = chunked ? `${REFUSAL_BODY.length.toString(16)}\r\n${REFUSAL_BODY}\r\n0\r\n\r\n` : REFUSAL_BODY;
        socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: text/plain\r\nX-Backend: ${name}\r\nX-Refused: yes\r\nConnection: close\r\n${framing}\r\n${body}`);
        refusalsWritten++;
      }, ms);
      return;
    }
    if (last === 'drop') {
      wss.handleUpgrade(req, socket, head, (ws) => ws.once('message', () => (socket as Socket).resetAndDestroy()));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    get openWebSockets() {
      return wss.clients.size;
    },
    get refusalsWritten() {
      return refusalsWritten;
    },
    get refusalsSkipped() {
      return refusalsSkipped;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of held) s.destroy();
        for (const s of sockets) s.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
}
