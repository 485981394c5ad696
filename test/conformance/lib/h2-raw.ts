/**
 * A hand-written HTTP/2 client for requests node:http2 and nghttp refuse to send (duplicate or absent
 * pseudo-headers, connection-specific fields): one TLS connection (ALPN h2), the preface, SETTINGS,
 * then one HEADERS frame on stream 1 whose block is the given fields as HPACK literals (no indexing, no
 * Huffman: the bytes are exactly the fields), optionally DATA frames. It reads back what the server did
 * with stream 1: its response `:status` (decoded when HPACK gives it as a static-table entry or a plain
 * literal, as nghttp2 does for a first response), a RST_STREAM code, a GOAWAY code.
 */
import { connect } from 'node:tls';
import type { Target } from './transport.js';

export interface RawH2Outcome {
  /** The response's :status; undefined when none came; -1 when it came in a form not decoded here. */
  readonly status: number | undefined;
  readonly rstCode: number | undefined;
  readonly goawayCode: number | undefined;
}

const TYPE = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, GOAWAY: 0x7 } as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** RFC 7541 §5.1 integer with an N-bit prefix (the prefix's other bits given in `high`). */
function hpackInt(n: number, bits: number, high: number): Buffer {
  const max = (1 << bits) - 1;
  if (n < max) return Buffer.from([high | n]);
  const out = [high | max];
  for (n -= max; n >= 128; n >>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

/** Literal header field without indexing, new name (RFC 7541 §6.2.2), raw strings. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v]);
}

/** RFC 7541 Appendix A entries 8–14. */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/** The :status of a response header block that begins with it (RFC 9113 §8.3: pseudo-headers first). */
function statusOf(block: Buffer): number {
  const b = block[0]!;
  if (b & 0x80) return STATIC_STATUS[b & 0x7f] ?? -1;
  // Literal with a static name index (8 = :status), with or without indexing.
  const nameIndex = (b & 0xc0) === 0x40 ? b & 0x3f : b & 0x0f;
  const len = block[1]!;
  if (nameIndex !== 8 || len & 0x80) return -1;
  return Number(block.subarray(2, 2 + len).toString('latin1'));
}

export interface RawH2Request {
  /** Header fields in order, pseudo-headers included, exactly as sent. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  /** DATA frames after HEADERS; the last ends the stream. None: END_STREAM on HEADERS. */
  readonly data?: readonly Buffer[];
  readonly timeoutMs?: number;
}

export function rawH2(target: Target, r: RawH2Request): Promise<RawH2Outcome> {
  if (!target.tls) throw new Error('HTTP/2 needs the TLS listener');
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: target.port, ca: target.tls!.ca, servername: target.tls!.servername, ALPNProtocols: ['h2'] });
    let status: number | undefined;
    let rstCode: number | undefined;
    let goawayCode: number | undefined;
    let buf = Buffer.alloc(0);
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ status, rstCode, goawayCode });
    };
    const timer = setTimeout(done, r.timeoutMs ?? 10_000);
    s.on('error', done);
    s.on('close', done);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        const [type, flags] = [buf[3]!, buf[4]!];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === TYPE.SETTINGS && !(flags & FLAG.ACK)) s.write(frame(TYPE.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
        if (stream === 1 && type === TYPE.HEADERS && status === undefined) status = statusOf(payload);
        if (stream === 1 && type === TYPE.RST_STREAM) rstCode = payload.readUInt32BE(0);
        if (type === TYPE.GOAWAY) goawayCode = payload.readUInt32BE(4);
        if ((stream === 1 && (type === TYPE.RST_STREAM || ((type === TYPE.DATA || type === TYPE.HEADERS) && flags & FLAG.END_STREAM))) || type === TYPE.GOAWAY) return done();
      }
    });
    s.once('secureConnect', () => {
      const data = r.data ?? [];
      const block = Buffer.concat(r.fields.map(([k, v]) => literal(k, v)));
      s.write(Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        frame(TYPE.SETTINGS, 0, 0, Buffer.alloc(0)),
        frame(TYPE.HEADERS, FLAG.END_HEADERS | (data.length === 0 ? FLAG.END_STREAM : 0), 1, block),
        ...data.map((d, i) => frame(TYPE.DATA, i === data.length - 1 ? FLAG.END_STREAM : 0, 1, d)),
      ]));
    });
  });
}
