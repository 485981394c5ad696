/**
 * A recording HTTP backend for the conformance suite: every request is kept as what arrived
 * (method, url, raw header list, body byte count and sha256), and answered by the path:
 *   /status/N      status N (204 and 304 with no body), body `status N` otherwise
 *   /early/N       status N at once, before reading the body (an upstream that refuses uploads); it then
 *                  reads and drops the body, as NGINX's lingering close does — a server that closes on
 *                  an unread body makes the kernel reset the connection, and a reset can destroy the
 *                  answer in the proxy's receive buffer before it is read (no proxy can relay that)
 *   anything else  200 with a JSON summary of what was received (bytes, sha256)
 * A test compares the record with what its client sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  /** Lower-cased name → values joined with ', ' (what an application reads). */
  readonly headers: Readonly<Record<string, string>>;
  bytes: number;
  sha256: string;
  complete: boolean;
}

export interface RecordingBackend {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** Requests seen (including ones still uploading). */
  readonly count: number;
  close(): Promise<void>;
}

export async function startRecordingBackend(): Promise<RecordingBackend> {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      headers[k] = headers[k] === undefined ? req.rawHeaders[i + 1]! : `${headers[k]}, ${req.rawHeaders[i + 1]!}`;
    }
    const rec: Received = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers, bytes: 0, sha256: '', complete: false };
    received.push(rec);
    const url = req.url ?? '/';
    const early = /\/early\/(\d{3})/.exec(url);
    if (early) {
      res.writeHead(Number(early[1]), { 'content-type': 'text/plain' });
      res.end('refused early\n');
      req.resume();
      return;
    }
    const h = createHash('sha256');
    req.on('data', (c: Buffer) => {
      rec.bytes += c.length;
      h.update(c);
    });
    req.on('end', () => {
      rec.sha256 = h.digest('hex');
      rec.complete = true;
      const st = /\/status\/(\d{3})/.exec(url);
      if (st) {
        const status = Number(st[1]);
        res.writeHead(status, { 'x-backend-status': String(status) });
        res.end(status === 204 || status === 304 || req.method === 'HEAD' ? undefined : `status ${status}\n`);
        return;
      }
      const body = JSON.stringify({ method: req.method, bytes: rec.bytes, sha256: rec.sha256 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': 'rec' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    get count() {
      return received.length;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Headers a proxy may legitimately change per hop (framing, hop-by-hop, the ones it owns). */
const PER_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'x-real-ip', 'forwarded', 'x-meshgate-fence',
]);

/** The end-to-end header list of a request, in order, names lower-cased. */
export function endToEnd(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!.toLowerCase();
    if (!PER_HOP.has(k)) out.push(`${k}: ${rawHeaders[i + 1]!}`);
  }
  return out;
}

/** A TCP server that answers every request with the same raw bytes (for upstream faults). */
export async function startScriptedBackend(answer: Buffer): Promise<{ url: string; readonly hits: number; close(): Promise<void> }> {
  const { createServer: createNet } = await import('node:net');
  let hits = 0;
  const server = createNet((sock) => {
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        hits++;
        buf = '';
        sock.end(answer);
      }
    });
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
