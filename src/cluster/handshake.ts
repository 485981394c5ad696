/**
 * Wire format of the Raft peer transport (version 2): framing, the handshake and the frame codecs. Pure:
 * no sockets here (transport.ts does the I/O), so every refusal can be unit-tested byte by byte.
 *
 *   every frame:  u32 bodyLength | body        (little-endian; a body longer than the reader's limit is refused)
 *   CHALLENGE   (listener → dialer, right after accept)
 *     body = u8 version=2 | u8 kind=0 | 16 B nonce | u16+utf8 listenerId | 16 B clusterId | 32 B HMAC(secret, ·)
 *   HELLO       (dialer → listener, first frame; authenticates the dialer)
 *     body = u8 2 | u8 kind=3 | u16+utf8 from | u16+utf8 to | 16 B clusterId | 32 B HMAC(K, ·)
 *   PROBE       (dialer → listener, instead of HELLO: the first-boot identity check, identity.ts)
 *     body = u8 2 | u8 kind=4 | u16+utf8 from | u16+utf8 to | 32 B HMAC(K, ·)
 *   PROBE_REPLY (listener → dialer, then the listener closes)
 *     body = u8 2 | u8 kind=5 | 16 B clusterId | f64 term | u8 heardFromYou | 32 B HMAC(K, ·)
 *   DATA / CHUNK (dialer → listener, after HELLO)
 *     body = u8 2 | u8 kind (1 data, 2 chunk) | u16+utf8 from | u16+utf8 to | f64 seq | payload | 32 B HMAC(K, ·)
 *     CHUNK payload = u32 totalBytes | u32 offset | bytes
 *
 * K = HMAC(secret, "meshgate-raft-v2" | nonce): one key per connection, so nothing recorded on one
 * connection verifies on another. A clusterId of 16 zero bytes means "none yet" (a joining learner).
 * Version 1 (no HELLO, no cluster id) is refused: the first byte of every body is the version.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BufReader, BufWriter, CodecError } from './codec.js';
import type { NodeId } from './raft/types.js';

export const TRANSPORT_VERSION = 2;
export const KIND_CHALLENGE = 0;
export const KIND_DATA = 1;
export const KIND_CHUNK = 2;
export const KIND_HELLO = 3;
export const KIND_PROBE = 4;
export const KIND_PROBE_REPLY = 5;
export const MAC_BYTES = 32;
export const NONCE_BYTES = 16;
export const CLUSTER_ID_BYTES = 16;
/**
 * Largest frame accepted before the dialer authenticated: a HELLO or PROBE is two ids and 52 bytes, so
 * 4 KiB is generous, and it is all an unauthenticated connection can make the listener buffer.
 */
export const MAX_PREAUTH_FRAME_BYTES = 4096;
export const NO_CLUSTER_ID: Buffer = Buffer.alloc(CLUSTER_ID_BYTES);
const KEY_LABEL = Buffer.from('meshgate-raft-v2', 'latin1');

export class HandshakeError extends Error {}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** K = HMAC(secret, label | nonce). */
export function sessionKey(secret: Uint8Array, nonce: Uint8Array): Buffer {
  return hmac(secret, KEY_LABEL, nonce);
}

export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

function signed(w: BufWriter, key: Uint8Array): Buffer {
  const body = w.finish();
  return frame(Buffer.concat([body, hmac(key, body)]));
}

/** Splits a body into its signed part after checking the MAC; throws HandshakeError on a mismatch. */
export function verified(body: Uint8Array, key: Uint8Array): Uint8Array {
  if (body.length < 2 + MAC_BYTES) throw new HandshakeError('frame too short');
  const signedPart = body.subarray(0, body.length - MAC_BYTES);
  const mac = body.subarray(body.length - MAC_BYTES);
  const expected = hmac(key, signedPart);
  if (!timingSafeEqual(expected, mac)) throw new HandshakeError('HMAC mismatch (wrong cluster.secret or tampering)');
  return signedPart;
}

function header(r: BufReader, kind: number): void {
  const v = r.u8();
  if (v !== TRANSPORT_VERSION) throw new HandshakeError(`transport version ${v}, this peer speaks ${TRANSPORT_VERSION} (upgrade every peer: docs/architecture.md)`);
  const k = r.u8();
  if (k !== kind) throw new HandshakeError(`frame kind ${k}, expected ${kind}`);
}

function clusterId(r: BufReader): Buffer {
  return Buffer.from(r.bytes(CLUSTER_ID_BYTES));
}

export function encodeChallenge(secret: Uint8Array, nonce: Uint8Array, listenerId: NodeId, cid: Uint8Array | undefined): Buffer {
  return signed(new BufWriter(96).u8(TRANSPORT_VERSION).u8(KIND_CHALLENGE).bytes(nonce).str(listenerId).bytes(cid ?? NO_CLUSTER_ID), secret);
}

export interface Challenge {
  readonly nonce: Buffer;
  readonly listenerId: NodeId;
  /** undefined: the listener has no cluster id yet. */
  readonly clusterId: Buffer | undefined;
}

export function decodeChallenge(secret: Uint8Array, body: Uint8Array): Challenge {
  const part = verified(body, secret);
  return parse(part, (r) => {
    header(r, KIND_CHALLENGE);
    const nonce = Buffer.from(r.bytes(NONCE_BYTES));
    const listenerId = r.str();
    const cid = clusterId(r);
    return { nonce, listenerId, clusterId: cid.equals(NO_CLUSTER_ID) ? undefined : cid };
  });
}

export function encodeHello(key: Uint8Array, from: NodeId, to: NodeId, cid: Uint8Array | undefined): Buffer {
  return signed(new BufWriter(96).u8(TRANSPORT_VERSION).u8(KIND_HELLO).str(from).str(to).bytes(cid ?? NO_CLUSTER_ID), key);
}

export function encodeProbe(key: Uint8Array, from: NodeId, to: NodeId): Buffer {
  return signed(new BufWriter(64).u8(TRANSPORT_VERSION).u8(KIND_PROBE).str(from).str(to), key);
}

/** The dialer's first frame: a HELLO (it will send data) or a PROBE (it asks for the listener's state). */
export type Opening =
  | { readonly kind: 'hello'; readonly from: NodeId; readonly to: NodeId; readonly clusterId: Buffer | undefined }
  | { readonly kind: 'probe'; readonly from: NodeId; readonly to: NodeId };

export function decodeOpening(key: Uint8Array, body: Uint8Array): Opening {
  const part = verified(body, key);
  return parse(part, (r) => {
    const kind = part[1];
    header(r, kind === KIND_PROBE ? KIND_PROBE : KIND_HELLO);
    const from = r.str();
    const to = r.str();
    if (kind === KIND_PROBE) return { kind: 'probe', from, to };
    const cid = clusterId(r);
    return { kind: 'hello', from, to, clusterId: cid.equals(NO_CLUSTER_ID) ? undefined : cid };
  });
}

export interface ProbeReply {
  readonly clusterId: Buffer | undefined;
  readonly term: number;
  /** The listener has accepted an authenticated connection from the prober's id before (identity.ts). */
  readonly heardFromYou: boolean;
}

export function encodeProbeReply(key: Uint8Array, reply: ProbeReply): Buffer {
  return signed(new BufWriter(64).u8(TRANSPORT_VERSION).u8(KIND_PROBE_REPLY).bytes(reply.clusterId ?? NO_CLUSTER_ID).f64(reply.term).u8(reply.heardFromYou ? 1 : 0), key);
}

export function decodeProbeReply(key: Uint8Array, body: Uint8Array): ProbeReply {
  const part = verified(body, key);
  return parse(part, (r) => {
    header(r, KIND_PROBE_REPLY);
    const cid = clusterId(r);
    const term = r.uint();
    const heard = r.u8();
    return { clusterId: cid.equals(NO_CLUSTER_ID) ? undefined : cid, term, heardFromYou: heard === 1 };
  });
}

/** One authenticated DATA/CHUNK frame. */
export function encodeDataFrame(key: Uint8Array, kind: 1 | 2, from: NodeId, to: NodeId, seq: number, payload: Uint8Array): Buffer {
  return signed(new BufWriter(payload.length + 64).u8(TRANSPORT_VERSION).u8(kind).str(from).str(to).f64(seq).bytes(payload), key);
}

export interface DataFrame {
  readonly kind: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** Decodes the signed part of a DATA/CHUNK frame whose MAC was already verified. */
export function decodeDataFrame(part: Uint8Array): DataFrame {
  return parse(part, (r) => {
    const v = r.u8();
    if (v !== TRANSPORT_VERSION) throw new HandshakeError(`transport version ${v}`);
    const kind = r.u8();
    const from = r.str();
    const to = r.str();
    const seq = r.uint();
    return { kind, from, to, seq, payload: r.bytes(r.remaining) };
  });
}

function parse<T>(part: Uint8Array, f: (r: BufReader) => T): T {
  const r = new BufReader(part);
  try {
    const out = f(r);
    r.done();
    return out;
  } catch (err) {
    if (err instanceof HandshakeError) throw err;
    if (err instanceof CodecError) throw new HandshakeError(`malformed frame: ${err.message}`);
    throw err;
  }
}

/**
 * Splits a byte stream into frame bodies. Memory is bounded by what has arrived, never by what a length
 * prefix announces: the bytes of an incomplete frame are copied into one owned buffer that grows with
 * them. (The previous reader kept every read as its own Buffer until the announced length arrived: 60
 * connections dripping single bytes took a peer from 73 MB to 560 MB.)
 *
 * Pull style, so the limit can change between frames (raised once the dialer authenticated): push() a
 * read, then call next() until it returns undefined (or 'oversize', after which the stream is dead).
 */
export class FrameReader {
  /** Unconsumed bytes are buf[start, end); buf is borrowed from push() until next() runs dry. */
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  private owned = true;
  constructor(public maxFrame: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Memory held by the reader (capacity of its owned buffer), for tests. */
  get retainedBytes(): number {
    return this.owned ? this.buf.length : 0;
  }

  push(data: Buffer): void {
    if (this.end === this.start) {
      // Nothing pending: read frames straight out of the socket's buffer; a leftover tail is copied out.
      this.buf = data;
      this.start = 0;
      this.end = data.length;
      this.owned = false;
      return;
    }
    const have = this.end - this.start;
    const need = have + data.length;
    if (!this.owned || this.start + need > this.buf.length) {
      // Grow by doubling, but never beyond twice what has arrived: growth follows the bytes.
      const next = Buffer.allocUnsafe(Math.max(need, Math.min(2 * this.buf.length, 2 * need), 64));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.start = 0;
      this.end = have;
      this.owned = true;
    }
    data.copy(this.buf, this.end);
    this.end += data.length;
  }

  /** The next complete body (valid until the next push), undefined when none, 'oversize' if the prefix is above maxFrame. */
  next(): Buffer | undefined | 'oversize' {
    const avail = this.end - this.start;
    if (avail >= 4) {
      const len = this.buf.readUInt32LE(this.start);
      if (len > this.maxFrame) return 'oversize';
      if (avail >= 4 + len) {
        const body = this.buf.subarray(this.start + 4, this.start + 4 + len);
        this.start += 4 + len;
        return body;
      }
    }
    if (!this.owned || avail === 0) {
      // Own the tail (never keep the socket's whole read buffer alive for a few bytes of it).
      const tail = Buffer.allocUnsafe(avail === 0 ? 0 : Math.max(avail, 64));
      this.buf.copy(tail, 0, this.start, this.end);
      this.buf = tail;
      this.start = 0;
      this.end = avail;
      this.owned = true;
    }
    return undefined;
  }
}
