/**
 * A raw-socket HTTP/1.1 client for the conformance suite: it writes exactly the bytes a test gives,
 * in the pieces and with the pauses it gives (so the first body chunk can share a write with the
 * head), and parses whatever comes back with its own small parser (Content-Length, chunked,
 * read-until-close, HEAD/204/304 without a body), independent of Node's.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Target } from './transport.js';

export interface Piece {
  readonly bytes: Buffer;
  /** Milliseconds to wait before this write. */
  readonly pauseMs?: number;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Interim (1xx) responses seen before this one. */
  readonly interim: number[];
}

export interface Exchange {
  readonly responses: RawResponse[];
  /** Bytes after the last complete response (a truncated or garbled answer). */
  readonly rest: Buffer;
  /** True when the server closed the connection. */
  readonly closed: boolean;
}

/** One request head; `headers` are written in order, as given. */
export function head(method: string, target: string, headers: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.from(`${method} ${target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
}

/** `body` as chunked framing, cut at `cuts` (offsets), plus the last-chunk and empty trailer. */
export function chunked(body: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < body.length)].sort((a, b) => a - b).concat(body.length)) {
    if (c <= prev) continue;
    const part = body.subarray(prev, c);
    out.push(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
    prev = c;
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return out;
}

export interface SendOptions {
  /** Methods of the requests written, in order (a HEAD answer has no body). */
  readonly methods: readonly string[];
  /** Give up after this long (a hang guard). */
  readonly timeoutMs?: number;
  /** Stop writing when the server answered or closed (a client that waits, like curl after a 4xx). */
  readonly stopOnResponse?: boolean;
  /** Called after a complete response: may return more pieces to write (Expect: 100-continue). */
  readonly onInterim?: (status: number) => Piece[] | undefined;
}

/** Writes `pieces` to host:port (a Target: inside TLS when it says so) and collects responses until
 *  `methods.length` answers or close. */
export function send(to: number | Target, pieces: readonly Piece[], opts: SendOptions): Promise<Exchange> {
  const target: Target = typeof to === 'number' ? { port: to } : to;
  return new Promise((resolve, reject) => {
    const sock: Socket = target.tls
      ? tlsConnect({ port: target.port, host: '127.0.0.1', ca: target.tls.ca, servername: target.tls.servername, ALPNProtocols: ['http/1.1'] })
      : connect(target.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let closed = false;
    let finished = false;
    const responses: RawResponse[] = [];
    const interim: number[] = [];
    const timer = setTimeout(() => done(), opts.timeoutMs ?? 15_000);
    const done = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve({ responses, rest: buf, closed });
    };
    const parse = (): void => {
      for (;;) {
        const r = parseOne(buf, opts.methods[responses.length] ?? 'GET', closed);
        if (r === undefined) return;
        buf = buf.subarray(r.used);
        if (r.status < 200) {
          interim.push(r.status);
          const more = opts.onInterim?.(r.status);
          if (more) void write(more);
          continue;
        }
        responses.push({ status: r.status, headers: r.headers, body: r.body, interim: interim.splice(0) });
        if (responses.length >= opts.methods.length) return done();
      }
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    sock.on('end', () => {
      closed = true;
      parse();
      done();
    });
    sock.on('error', () => {
      closed = true;
      parse();
      done();
    });
    const write = async (list: readonly Piece[]): Promise<void> => {
      for (const p of list) {
        if (p.pauseMs) await new Promise((r) => setTimeout(r, p.pauseMs));
        if (finished || closed || sock.destroyed) return;
        if (opts.stopOnResponse && responses.length > 0) return;
        if (!sock.write(p.bytes)) await new Promise((r) => sock.once('drain', r));
      }
    };
    sock.once(target.tls ? 'secureConnect' : 'connect', () => void write(pieces).catch((err: Error) => done(err)));
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  used: number;
}

/** One response from the front of `buf`, or undefined when it is not complete yet. */
function parseOne(buf: Buffer, method: string, closed: boolean): Parsed | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    const k = l.slice(0, c).trim().toLowerCase();
    const v = l.slice(c + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const start = end + 4;
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD') return { status, headers, body: Buffer.alloc(0), used: start };
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const le = buf.indexOf('\r\n', at);
      if (le === -1) return undefined;
      const size = parseInt(buf.subarray(at, le).toString('latin1'), 16);
      if (size === 0) {
        const te = buf.indexOf('\r\n\r\n', le);
        if (te === -1) return undefined;
        return { status, headers, body: Buffer.concat(parts), used: te + 4 };
      }
      if (buf.length < le + 2 + size + 2) return undefined;
      parts.push(buf.subarray(le + 2, le + 2 + size));
      at = le + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < start + n) return undefined;
    return { status, headers, body: buf.subarray(start, start + n), used: start + n };
  }
  if (!closed) return undefined;
  return { status, headers, body: buf.subarray(start), used: buf.length };
}
