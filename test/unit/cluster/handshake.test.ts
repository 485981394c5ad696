/**
 * The transport's wire format without sockets: framing (truncated, oversize, dripped a byte at a time,
 * memory held), and each handshake frame refused for a wrong secret, a tampered byte, a wrong version,
 * trailing or missing bytes.
 */
import { describe, expect, it } from 'vitest';
import { BufWriter } from '../../../src/cluster/codec.js';
import {
  decodeChallenge,
  decodeDataFrame,
  decodeOpening,
  decodeProbeReply,
  encodeChallenge,
  encodeDataFrame,
  encodeHello,
  encodeProbe,
  encodeProbeReply,
  frame,
  FrameReader,
  HandshakeError,
  hmac,
  KIND_HELLO,
  MAX_PREAUTH_FRAME_BYTES,
  sessionKey,
  verified,
} from '../../../src/cluster/handshake.js';

const SECRET = Buffer.from('correct horse battery staple');
const NONCE = Buffer.alloc(16, 7);
const KEY = sessionKey(SECRET, NONCE);
const CID = Buffer.alloc(16, 0xab);
const body = (f: Buffer): Buffer => f.subarray(4);

describe('FrameReader', () => {
  it('returns whole frames from one read, across reads, and keeps an incomplete tail', () => {
    const r = new FrameReader(1024);
    const a = frame(Buffer.from('alpha'));
    const b = frame(Buffer.from('bravo'));
    r.push(Buffer.concat([a, b.subarray(0, 6)]));
    expect(r.next()?.toString()).toBe('alpha');
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(6);
    r.push(b.subarray(6));
    expect(r.next()?.toString()).toBe('bravo');
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(0);
  });

  it('refuses a length prefix above the limit before anything else arrives', () => {
    const r = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(MAX_PREAUTH_FRAME_BYTES + 1, 0);
    r.push(head);
    expect(r.next()).toBe('oversize');
  });

  it('holds memory in proportion to what arrived, not to what the prefix announced', () => {
    const r = new FrameReader(4 * 1024 * 1024);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(4 * 1024 * 1024, 0);
    r.push(head);
    expect(r.next()).toBeUndefined();
    let arrived = 4;
    for (let i = 0; i < 2000; i++) {
      // Each byte arrives the way a socket delivers it: a view into a 64 KiB read buffer.
      r.push(Buffer.alloc(65536, 0x41).subarray(0, 1));
      arrived++;
      expect(r.next()).toBeUndefined();
    }
    expect(r.buffered).toBe(arrived);
    expect(r.retainedBytes).toBeLessThanOrEqual(2 * arrived + 64);
  });

  it('a frame dripped one byte at a time comes out whole', () => {
    const r = new FrameReader(1024);
    const f = frame(Buffer.from('slowly'));
    const out: string[] = [];
    for (const byte of f) {
      r.push(Buffer.from([byte]));
      for (let b = r.next(); b !== undefined && b !== 'oversize'; b = r.next()) out.push(b.toString());
    }
    expect(out).toEqual(['slowly']);
  });

  it('a raised limit applies from the next frame on (authentication)', () => {
    const r = new FrameReader(8);
    r.push(Buffer.concat([frame(Buffer.from('hello')), frame(Buffer.alloc(100, 1))]));
    expect(r.next()?.toString()).toBe('hello');
    r.maxFrame = 1024;
    expect((r.next() as Buffer).length).toBe(100);
  });
});

describe('handshake frames', () => {
  it('round-trip: CHALLENGE, HELLO, PROBE, PROBE_REPLY, DATA', () => {
    expect(decodeChallenge(SECRET, body(encodeChallenge(SECRET, NONCE, 'gw-1', CID)))).toEqual({ nonce: NONCE, listenerId: 'gw-1', clusterId: CID });
    expect(decodeChallenge(SECRET, body(encodeChallenge(SECRET, NONCE, 'gw-1', undefined))).clusterId).toBeUndefined();
    expect(decodeOpening(KEY, body(encodeHello(KEY, 'gw-2', 'gw-1', CID)))).toEqual({ kind: 'hello', from: 'gw-2', to: 'gw-1', clusterId: CID });
    expect(decodeOpening(KEY, body(encodeProbe(KEY, 'gw-2', 'gw-1')))).toEqual({ kind: 'probe', from: 'gw-2', to: 'gw-1' });
    const reply = { clusterId: CID, term: 12, heardFromYou: true };
    expect(decodeProbeReply(KEY, body(encodeProbeReply(KEY, reply)))).toEqual(reply);
    const d = decodeDataFrame(verified(body(encodeDataFrame(KEY, 1, 'gw-2', 'gw-1', 3, Buffer.from('payload'))), KEY));
    expect({ ...d, payload: Buffer.from(d.payload).toString() }).toEqual({ kind: 1, from: 'gw-2', to: 'gw-1', seq: 3, payload: 'payload' });
  });

  it('wrong secret or key, and any flipped byte, fail the HMAC', () => {
    expect(() => decodeChallenge(Buffer.from('other secret'), body(encodeChallenge(SECRET, NONCE, 'gw-1', CID)))).toThrow(/HMAC/);
    const hello = body(encodeHello(KEY, 'gw-2', 'gw-1', CID));
    expect(() => decodeOpening(sessionKey(SECRET, Buffer.alloc(16, 8)), hello)).toThrow(/HMAC/);
    for (let i = 0; i < hello.length; i++) {
      const t = Buffer.from(hello);
      t[i]! ^= 0x01;
      expect(() => decodeOpening(KEY, t), `byte ${i}`).toThrow(HandshakeError);
    }
  });

  it('truncated frames are refused, never read past their end', () => {
    const hello = body(encodeHello(KEY, 'gw-2', 'gw-1', CID));
    for (let n = 0; n < hello.length; n++) expect(() => decodeOpening(KEY, hello.subarray(0, n))).toThrow(HandshakeError);
  });

  it('a correctly signed frame with a bad layout is malformed, not a crash', () => {
    const sign = (w: BufWriter): Buffer => Buffer.concat([w.finish(), hmac(KEY, w.finish())]);
    // Version 1 (no HELLO, no cluster id): refused with the reason.
    expect(() => decodeOpening(KEY, sign(new BufWriter().u8(1).u8(KIND_HELLO).str('a').str('b')))).toThrow(/version 1/);
    // Missing the cluster id; trailing bytes.
    expect(() => decodeOpening(KEY, sign(new BufWriter().u8(2).u8(KIND_HELLO).str('a').str('b')))).toThrow(/malformed/);
    expect(() => decodeOpening(KEY, sign(new BufWriter().u8(2).u8(KIND_HELLO).str('a').str('b').bytes(CID).u8(0)))).toThrow(/malformed/);
    // A data frame where a HELLO belongs.
    expect(() => decodeOpening(KEY, body(encodeDataFrame(KEY, 1, 'a', 'b', 0, Buffer.from('x'))))).toThrow(/kind 1/);
    // A negative or fractional seq.
    expect(() => decodeDataFrame(new BufWriter().u8(2).u8(1).str('a').str('b').f64(-1).finish())).toThrow(HandshakeError);
  });
});
