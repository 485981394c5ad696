/**
 * Binary encodings shared by the WAL (storage.ts) and the peer transport (transport.ts): CRC32C, a tiny
 * little-endian writer/reader, and codecs for Entry, HardState, ConfState, Snapshot and Message.
 *
 * Invariants:
 * - Decoders never trust input: every length is bounds-checked and a malformed buffer throws
 *   `CodecError` (the transport counts it as malformed and drops it; the WAL only decodes records whose
 *   CRC already matched).
 * - Integers (term, index, commit) are written as float64 so any safe integer round-trips exactly;
 *   decoding rejects non-integers and negatives.
 * - Layouts are versioned by their container (WAL file header, transport frame version byte).
 */
import type { ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot } from './raft/types.js';

export class CodecError extends Error {}

// ---------------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) — RFC 3720 §12.1 / B.4; chosen over CRC32 (IEEE)
// for its better error detection on storage payloads, as in hashicorp/raft-wal and ext4 metadata.
// Table-driven, one byte at a time: the log is small, simplicity beats slicing-by-8 here.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `buf[start, end)`, continuing from `crc` (pass 0 to start). */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------------
const utf8 = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true });

export class BufWriter {
  private buf: Buffer;
  private len = 0;
  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
    return this;
  }
  f64(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** u32 length + bytes. */
  blob(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }
  /** u16 length + UTF-8. */
  str(s: string): this {
    const b = utf8.encode(s);
    if (b.length > 0xffff) throw new CodecError('string too long');
    return this.u16(b.length).bytes(b);
  }
  get length(): number {
    return this.len;
  }
  /** A view of the written bytes (shares memory with the writer until the next write). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export class BufReader {
  private off: number;
  private readonly view: DataView;
  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.off = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.off + n > this.end) throw new CodecError(`truncated: need ${n} bytes at ${this.off}`);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.off++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off, true);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.off, true);
    this.off += 8;
    return v;
  }
  /** A non-negative safe integer stored as float64. */
  uint(): number {
    const v = this.f64();
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`bad integer ${v}`);
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    // Copy: callers keep entries long after the frame/file buffer is gone.
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return out;
  }
  blob(): Uint8Array {
    return this.bytes(this.u32());
  }
  str(): string {
    const n = this.u16();
    this.need(n);
    try {
      const s = utf8d.decode(this.buf.subarray(this.off, this.off + n));
      this.off += n;
      return s;
    } catch {
      throw new CodecError('bad utf-8');
    }
  }
  get offset(): number {
    return this.off;
  }
  get remaining(): number {
    return this.end - this.off;
  }
  done(): void {
    if (this.off !== this.end) throw new CodecError(`${this.end - this.off} trailing bytes`);
  }
}

// ---------------------------------------------------------------------------------------------------
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'conf-change'];

export function writeEntry(w: BufWriter, e: Entry): void {
  w.f64(e.term).f64(e.index).u8(ENTRY_TYPES.indexOf(e.type)).blob(e.data);
}

export function readEntry(r: BufReader): Entry {
  const term = r.uint();
  const index = r.uint();
  const t = ENTRY_TYPES[r.u8()];
  if (t === undefined) throw new CodecError('bad entry type');
  return { term, index, type: t, data: r.blob() };
}

export function writeHardState(w: BufWriter, hs: HardState): void {
  w.f64(hs.term).f64(hs.commit).str(hs.vote);
}

export function readHardState(r: BufReader): HardState {
  const term = r.uint();
  const commit = r.uint();
  return { term, commit, vote: r.str() };
}

export function writeConfState(w: BufWriter, cs: ConfState): void {
  w.u16(cs.voters.length);
  for (const v of cs.voters) w.str(v);
  w.u16(cs.learners.length);
  for (const l of cs.learners) w.str(l);
}

export function readConfState(r: BufReader): ConfState {
  const voters: string[] = [];
  for (let n = r.u16(); n > 0; n--) voters.push(r.str());
  const learners: string[] = [];
  for (let n = r.u16(); n > 0; n--) learners.push(r.str());
  return { voters, learners };
}

export function writeSnapshot(w: BufWriter, s: Snapshot): void {
  w.f64(s.metadata.index).f64(s.metadata.term);
  writeConfState(w, s.metadata.confState);
  w.blob(s.data);
}

export function readSnapshot(r: BufReader): Snapshot {
  const index = r.uint();
  const term = r.uint();
  const confState = readConfState(r);
  return { metadata: { index, term, confState }, data: r.blob() };
}

// ---------------------------------------------------------------------------------------------------
// Message: u8 type, from, to, term, u16 presence bitmap, then the present optional fields in order.
const MESSAGE_TYPES: readonly MessageType[] = [
  'MsgHup', 'MsgPreVote', 'MsgPreVoteResp', 'MsgVote', 'MsgVoteResp', 'MsgApp', 'MsgAppResp',
  'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgSnap', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp',
  'MsgProp', 'MsgTransferLeader',
];
const F_LOGTERM = 1, F_INDEX = 2, F_ENTRIES = 4, F_COMMIT = 8, F_REJECT = 16, F_REJECT_TRUE = 32,
  F_REJECT_HINT = 64, F_LOGTERM_HINT = 128, F_SNAPSHOT = 256, F_CONTEXT = 512;

export function encodeMessage(m: Message): Buffer {
  const w = new BufWriter(64 + (m.entries?.reduce((n, e) => n + e.data.length + 24, 0) ?? 0) + (m.snapshot?.data.length ?? 0));
  const t = MESSAGE_TYPES.indexOf(m.type);
  if (t < 0) throw new CodecError(`unknown message type ${m.type}`);
  let flags = 0;
  if (m.logTerm !== undefined) flags |= F_LOGTERM;
  if (m.index !== undefined) flags |= F_INDEX;
  if (m.entries !== undefined) flags |= F_ENTRIES;
  if (m.commit !== undefined) flags |= F_COMMIT;
  if (m.reject !== undefined) flags |= F_REJECT | (m.reject ? F_REJECT_TRUE : 0);
  if (m.rejectHint !== undefined) flags |= F_REJECT_HINT;
  if (m.logTermHint !== undefined) flags |= F_LOGTERM_HINT;
  if (m.snapshot !== undefined) flags |= F_SNAPSHOT;
  if (m.context !== undefined) flags |= F_CONTEXT;
  w.u8(t).str(m.from).str(m.to).f64(m.term).u16(flags);
  if (m.logTerm !== undefined) w.f64(m.logTerm);
  if (m.index !== undefined) w.f64(m.index);
  if (m.entries !== undefined) {
    w.u32(m.entries.length);
    for (const e of m.entries) writeEntry(w, e);
  }
  if (m.commit !== undefined) w.f64(m.commit);
  if (m.rejectHint !== undefined) w.f64(m.rejectHint);
  if (m.logTermHint !== undefined) w.f64(m.logTermHint);
  if (m.snapshot !== undefined) writeSnapshot(w, m.snapshot);
  if (m.context !== undefined) w.str(m.context);
  return w.finish();
}

export function decodeMessage(buf: Uint8Array): Message {
  const r = new BufReader(buf);
  const type = MESSAGE_TYPES[r.u8()];
  if (type === undefined) throw new CodecError('unknown message type');
  const from = r.str();
  const to = r.str();
  const term = r.uint();
  const flags = r.u16();
  const m: { -readonly [K in keyof Message]: Message[K] } = { type, from, to, term };
  if (flags & F_LOGTERM) m.logTerm = r.uint();
  if (flags & F_INDEX) m.index = r.uint();
  if (flags & F_ENTRIES) {
    const n = r.u32();
    // Each entry takes at least 21 bytes; reject counts the buffer cannot hold before allocating.
    if (n * 21 > r.remaining) throw new CodecError('entry count exceeds frame');
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) entries.push(readEntry(r));
    m.entries = entries;
  }
  if (flags & F_COMMIT) m.commit = r.uint();
  if (flags & F_REJECT) m.reject = (flags & F_REJECT_TRUE) !== 0;
  if (flags & F_REJECT_HINT) m.rejectHint = r.uint();
  if (flags & F_LOGTERM_HINT) m.logTermHint = r.uint();
  if (flags & F_SNAPSHOT) m.snapshot = readSnapshot(r);
  if (flags & F_CONTEXT) m.context = r.str();
  r.done();
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Routed report (routed-reports.ts): a driver-to-driver frame beside the Raft messages, never given to the
// core. u8 ROUTED_TYPE (outside MESSAGE_TYPES, so a peer that predates it drops the frame as an unknown
// message type and nothing else), from, to, index.
const ROUTED_TYPE = 0xf0;

export interface RoutedReport {
  readonly from: string;
  readonly to: string;
  /** The sender's routing includes every entry up to this index. */
  readonly index: number;
}

export function encodeRoutedReport(r: RoutedReport): Buffer {
  return new BufWriter(32 + r.from.length + r.to.length).u8(ROUTED_TYPE).str(r.from).str(r.to).f64(r.index).finish();
}

/** True for a payload encodeRoutedReport wrote (decodeMessage takes everything else). */
export function isRoutedReport(buf: Uint8Array): boolean {
  return buf.length > 0 && buf[0] === ROUTED_TYPE;
}

export function decodeRoutedReport(buf: Uint8Array): RoutedReport {
  const r = new BufReader(buf);
  if (r.u8() !== ROUTED_TYPE) throw new CodecError('not a routed report');
  const from = r.str();
  const to = r.str();
  const index = r.uint();
  r.done();
  return { from, to, index };
}
