/**
 * Raw-socket HTTP/1.1 for the Upgrade-path tests: bytes exactly as a test writes them (forged and
 * hop-by-hop headers included, nothing added by a client library), and the answer parsed by hand.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface RawResponse {
  readonly status: number;
  /** Header lines as received, [name, value] in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Bytes after the header block, up to the close (or the end of a 101's first read). */
  readonly body: Buffer;
  /** True when the peer closed the connection after the answer. */
  readonly closed: boolean;
}

export function header(res: RawResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

/** A WebSocket handshake request (RFC 6455 §4.1) with `extra` header lines after the required ones. */
export function upgradeRequest(path: string, extra: ReadonlyArray<readonly [string, string]> = [], host = 'ws.test'): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    'Connection: Upgrade',
    'Upgrade: websocket',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...extra.map(([n, v]) => `${n}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export function plainRequest(path: string, extra: ReadonlyArray<readonly [string, string]> = [], host = 'ws.test'): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}`, ...extra.map(([n, v]) => `${n}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Sends `request` and reads the answer: for a 101, until the header block is complete (the socket is
 * then destroyed); otherwise until the server closes the connection or, with `untilHeaders`, until
 * the header block. Rejects after `timeoutMs` (a hang guard, not a timing assertion).
 */
export function exchange(port: number, request: string, opts: { timeoutMs?: number; untilHeaders?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${opts.timeoutMs ?? 5000} ms; got ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)), opts.timeoutMs ?? 5000);
    const finish = (err?: Error, closed = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      const parsed = parse(buf, closed);
      if (parsed) resolve(parsed);
      else reject(new Error(`incomplete answer: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
    };
    sock.on('error', (err) => finish(buf.length ? undefined : err, true));
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const p = parse(buf, false);
      if (p && (p.status === 101 || opts.untilHeaders)) finish();
    });
    sock.on('close', () => finish(undefined, true));
    sock.write(request);
  });
}

function parse(buf: Buffer, closed: boolean): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN);
  const headers = lines.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()] as const;
  });
  return { status, headers, body: buf.subarray(end + 4), closed };
}

/** Decodes a chunked body (for relayed non-101 answers without Content-Length). */
export function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', off);
    if (eol === -1) throw new Error('truncated chunked body');
    const size = parseInt(body.subarray(off, eol).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** Opens a socket, writes `request`, and hands the socket back once it is written (for abrupt-close scenarios). */
export function openAndSend(port: number, request: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(request, () => resolve(sock)));
    sock.on('error', reject);
  });
}
