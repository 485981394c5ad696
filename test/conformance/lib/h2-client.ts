/**
 * node:http2 as the conformance suite's HTTP/2 client: a request whose body goes out in the pieces a
 * test gives (each piece handed to the session, and its write callback awaited, before the next: one
 * or more DATA frames per piece, never two pieces in one frame), with pauses, with or without
 * END_STREAM, optionally reset mid-way; and what came back (status, headers, body, the stream's reset
 * code, interim `100`s).
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Target } from './transport.js';

export interface H2Piece {
  readonly bytes: Buffer;
  /** Milliseconds to wait before this write. */
  readonly pauseMs?: number;
}

export interface H2Request {
  readonly method: string;
  readonly path: string;
  /** End-to-end headers in order; a repeated name is sent as repeated fields, in first-seen order. */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly authority?: string;
  readonly pieces?: readonly H2Piece[];
  /** `Expect: 100-continue`: the pieces go only once the server's `100` came (as curl does). */
  readonly expect100?: boolean;
  /** How the request ends after its pieces: END_STREAM (default), RST_STREAM CANCEL (no END_STREAM), or not at all. */
  readonly ending?: 'end' | 'reset' | 'none';
  /** With no pieces and `ending: 'end'`: END_STREAM on HEADERS (default) or a separate empty DATA frame. */
  readonly emptyData?: boolean;
  readonly timeoutMs?: number;
}

export interface H2Answer {
  /** 0 when no response headers came. */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** RST_STREAM code the stream closed with (0 for a clean end). */
  readonly rstCode: number | undefined;
  readonly interim: number[];
  /** The stream ended by itself within timeoutMs. */
  readonly closed: boolean;
}

/** One session to the peer's TLS listener (ALPN h2), verified against the test CA. */
export async function h2Session(target: Target): Promise<ClientHttp2Session> {
  if (!target.tls) throw new Error('HTTP/2 needs the TLS listener (startConformancePeer with tls: true)');
  const s = connect(`https://127.0.0.1:${target.port}`, { ca: target.tls.ca, servername: target.tls.servername });
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** `headers` as node:http2's object: names lower-cased, repeats grouped into one array at the first one's place. */
export function headerObject(headers: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    const prev = out[name];
    out[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** The same list in the order HTTP/2 puts it on the wire (grouped as headerObject does). */
export function wireOrder(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  return Object.entries(headerObject(headers)).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x]));
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function h2Request(session: ClientHttp2Session, r: H2Request): Promise<H2Answer> {
  const pieces = r.pieces ?? [];
  const ending = r.ending ?? 'end';
  const headers: OutgoingHttpHeaders = { ':method': r.method, ':path': r.path, ':authority': r.authority ?? 'conformance.test', ...headerObject(r.headers ?? []) };
  if (r.expect100) headers.expect = '100-continue';
  const endAtOnce = ending === 'end' && pieces.length === 0 && !r.emptyData && !r.expect100;
  // Aborting through the signal resets the stream (CANCEL) without ending it first; stream.close()
  // would send END_STREAM before its RST_STREAM — a complete body, then a cancel.
  const abort = new AbortController();
  const stream: ClientHttp2Stream = session.request(headers, { endStream: endAtOnce, signal: abort.signal });
  return new Promise((resolve) => {
    let status = 0;
    let resHeaders: IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    const interim: number[] = [];
    let finished = false;
    let continued: (() => void) | undefined;
    const timer = setTimeout(() => finish(false), r.timeoutMs ?? 15_000);
    const finish = (closed: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      continued?.();
      if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      resolve({ status, headers: resHeaders, body: Buffer.concat(body), rstCode: stream.rstCode, interim, closed });
    };
    stream.on('continue', () => {
      interim.push(100);
      continued?.();
    });
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
      continued?.();
    });
    stream.on('data', (d: Buffer) => body.push(d));
    stream.on('error', () => undefined);
    stream.on('close', () => finish(true));
    const write = async (): Promise<void> => {
      // The server answered (or refused) before its `100`: a client that waits sends no body.
      if (r.expect100) await new Promise<void>((go) => (continued = go));
      continued = undefined;
      for (const p of pieces) {
        if (p.pauseMs) await pause(p.pauseMs);
        if (finished || stream.destroyed || (r.expect100 && status !== 0)) return;
        await new Promise<void>((done) => stream.write(p.bytes, () => done()));
      }
      if (finished || stream.destroyed) return;
      if (ending === 'end') stream.end();
      // The last DATA frame first, then the reset: the server has the bytes and then learns they are all it gets.
      else if (ending === 'reset') setTimeout(() => abort.abort(), 50);
    };
    if (!endAtOnce) void write();
  });
}
