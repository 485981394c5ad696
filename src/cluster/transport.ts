/**
 * Peer-to-peer transport for Raft messages: TCP on `cluster.listen`, length-prefixed frames, every frame
 * authenticated with HMAC-SHA256 derived from `cluster.secret`. The transport carries opaque payloads
 * (node.ts encodes Raft messages with codec.ts); it never interprets them.
 *
 * Connections are one-way, like etcd's rafthttp streams: each peer dials every other peer and only sends on
 * the connection it dialled; the listener only receives. Handshake and frames (little-endian):
 *
 *   every frame:  u32 bodyLength | body                (bodyLength ≤ MAX_FRAME_BYTES, else dropped)
 *   CHALLENGE (listener → dialer, once, right after accept):
 *     body = u8 version=1 | u8 kind=0 | 16 B nonce | u16+utf8 listenerId | 32 B HMAC(secret, preceding body)
 *   DATA / CHUNK (dialer → listener):
 *     body = u8 version=1 | u8 kind (1 data, 2 chunk) | u16+utf8 from | u16+utf8 to | f64 seq | payload
 *            | 32 B HMAC(K, preceding body)       with K = HMAC(secret, "meshgate-raft-v1" | nonce)
 *     CHUNK payload = u32 totalBytes | u32 offset | bytes   (messages above CHUNK_BYTES, e.g. MsgSnap)
 *
 * Invariants:
 * - Nothing is delivered unless its HMAC verifies (timingSafeEqual), its `to` is this node, its `from`
 *   matches the connection's first frame, and its seq is exactly the next one on the connection. The nonce
 *   makes the key per connection and the seq orders frames within it, so a recorded frame cannot be
 *   replayed. A peer with a wrong secret can therefore deliver nothing, and so cannot raise the term.
 * - Oversize, malformed and unauthenticated frames are counted, logged at most once per remote per
 *   LOG_INTERVAL_MS, and the connection is closed; the bytes are never delivered.
 * - send() never blocks and never throws: each peer has a bounded queue; on overflow the oldest message is
 *   dropped and the peer is reported unreachable (Raft tolerates loss; the core probes again).
 * - Outbound connections reconnect with exponential backoff and jitter.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { BufReader, BufWriter } from './codec.js';
import { noopLogger, type ClusterLogger } from './logger.js';
import type { NodeId } from './raft/types.js';

export const TRANSPORT_VERSION = 1;
/**
 * 4 MiB per frame: the core bounds a MsgApp at 1 MiB of entries (DEFAULT_MAX_SIZE_PER_MSG), so ordinary
 * frames are far below this; bigger messages (snapshots) are split into CHUNK_BYTES chunks. The bound
 * caps what an unauthenticated sender can make us buffer before the HMAC check.
 */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** 1 MiB chunks keep one snapshot from monopolising a connection for long and stay well under the frame bound. */
export const CHUNK_BYTES = 1024 * 1024;
/** A reassembled message (a membership snapshot) larger than this is refused: ~100k upstreams fit in far less. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * Per-peer queue: 1024 messages is several seconds of heartbeats and appends to a peer that is down;
 * anything older is stale for Raft anyway.
 */
export const DEFAULT_QUEUE_LIMIT = 1024;
/** Stop handing frames to the socket above this many unflushed bytes and wait for 'drain'. */
const SOCKET_HIGH_WATER = 1024 * 1024;
/** Reconnect backoff: start near a loopback RTT, cap well under an election timeout. */
export const DEFAULT_BACKOFF_BASE_MS = 50;
export const DEFAULT_BACKOFF_MAX_MS = 2000;
/** A dialer that does not get a valid challenge in this time gives up and backs off. */
const HANDSHAKE_TIMEOUT_MS = 5000;
/**
 * Inbound connections are one per peer in normal operation (plus a few during reconnects); each may buffer
 * up to one frame before its HMAC is checked, so the cap bounds what unauthenticated clients can pin.
 */
export const MAX_INBOUND_CONNECTIONS = 64;
/** Rate limit for drop logs: at most one line per remote per interval, however hostile the remote is. */
export const LOG_INTERVAL_MS = 10_000;

const KIND_CHALLENGE = 0;
const KIND_DATA = 1;
const KIND_CHUNK = 2;
const MAC_BYTES = 32;
const NONCE_BYTES = 16;
const KEY_LABEL = Buffer.from('meshgate-raft-v1', 'latin1');

export interface TransportStats {
  framesReceived: number;
  delivered: number;
  sent: number;
  droppedBadMac: number;
  droppedOversize: number;
  droppedMalformed: number;
  droppedWrongDestination: number;
  droppedQueueFull: number;
  droppedUnknownPeer: number;
  connectFailures: number;
  handshakeFailures: number;
}

export interface PeerLinkStatus {
  readonly id: NodeId;
  readonly address: string;
  readonly connected: boolean;
  readonly queued: number;
}

export interface TransportOptions {
  readonly id: NodeId;
  /** host:port to listen on (port 0 picks a free one; see `address` after start()). */
  readonly listen: string;
  readonly secret: string | Uint8Array;
  readonly onMessage: (from: NodeId, payload: Uint8Array) => void;
  /** Called when a message to `peer` was dropped or its connection failed (→ RawNode.reportUnreachable). */
  readonly onUnreachable?: (peer: NodeId) => void;
  readonly logger?: ClusterLogger;
  readonly queueLimit?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly maxFrameBytes?: number;
  /** Jitter source; defaults to Math.random (jitter needs no reproducibility outside tests). */
  readonly random?: () => number;
}

export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid host:port ${JSON.stringify(s)}`);
  return { host: m[1]!, port };
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

function macOk(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}

/** K = HMAC(secret, label | nonce): one key per connection. */
export function deriveSessionKeyForTest(secret: Uint8Array, nonce: Uint8Array): Buffer {
  return hmac(secret, KEY_LABEL, nonce);
}
const sessionKey = deriveSessionKeyForTest;

function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

function encodeChallenge(secret: Uint8Array, nonce: Uint8Array, listenerId: NodeId): Buffer {
  const w = new BufWriter(64).u8(TRANSPORT_VERSION).u8(KIND_CHALLENGE).bytes(nonce).str(listenerId);
  const body = w.finish();
  return frame(Buffer.concat([body, hmac(secret, body)]));
}

/** Encodes one authenticated DATA/CHUNK frame (exported so tests can forge frames). */
export function encodeDataFrameForTest(key: Uint8Array, kind: 1 | 2, from: NodeId, to: NodeId, seq: number, payload: Uint8Array): Buffer {
  const w = new BufWriter(payload.length + 64).u8(TRANSPORT_VERSION).u8(kind).str(from).str(to).f64(seq).bytes(payload);
  const body = w.finish();
  return frame(Buffer.concat([body, hmac(key, body)]));
}
const encodeDataFrame = encodeDataFrameForTest;

/** Splits a byte stream into frame bodies; reports an oversize length before buffering it. */
class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly maxFrame: number) {}

  /** Returns complete bodies, or 'oversize' as soon as a length prefix exceeds the bound. */
  push(data: Buffer): Buffer[] | 'oversize' {
    this.chunks.push(data);
    this.buffered += data.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0]!.readUInt32LE(0);
      if (len > this.maxFrame) return 'oversize';
      // Concatenate once per frame, when it is complete, not on every partial read.
      if (this.buffered < 4 + len) return out;
      const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      out.push(head.subarray(4, 4 + len));
      const rest = head.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
  }
}

interface Queued {
  readonly payload: Uint8Array;
  readonly onDone: ((ok: boolean) => void) | undefined;
}

interface PeerLink {
  id: NodeId;
  address: string;
  socket: net.Socket | undefined;
  state: 'idle' | 'connecting' | 'open';
  key: Buffer | undefined;
  seq: number;
  queue: Queued[];
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  waitingDrain: boolean;
  /** A flush is queued for the end of this turn (see send). */
  flushQueued: boolean;
  removed: boolean;
}

export class PeerTransport {
  private readonly secret: Buffer;
  private readonly log: ClusterLogger;
  private readonly peers = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<net.Socket>();
  private readonly lastLogAt = new Map<string, number>();
  private server: net.Server | undefined;
  private closed = false;
  private bound: { host: string; port: number } | undefined;
  private readonly counters: TransportStats = {
    framesReceived: 0,
    delivered: 0,
    sent: 0,
    droppedBadMac: 0,
    droppedOversize: 0,
    droppedMalformed: 0,
    droppedWrongDestination: 0,
    droppedQueueFull: 0,
    droppedUnknownPeer: 0,
    connectFailures: 0,
    handshakeFailures: 0,
  };

  constructor(private readonly opts: TransportOptions) {
    this.secret = Buffer.from(typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : opts.secret);
    if (this.secret.length === 0) throw new Error('cluster.secret must not be empty');
    this.log = opts.logger ?? noopLogger;
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const { host, port } = parseHostPort(this.opts.listen);
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'raft transport: listener error'));
    const a = server.address() as net.AddressInfo;
    this.bound = { host: a.address, port: a.port };
    return this.bound;
  }

  get address(): { host: string; port: number } | undefined {
    return this.bound;
  }

  stats(): Readonly<TransportStats> {
    return { ...this.counters };
  }

  peerStatus(): PeerLinkStatus[] {
    return [...this.peers.values()].map((p) => ({ id: p.id, address: p.address, connected: p.state === 'open', queued: p.queue.length }));
  }

  /** Adds a peer or changes its address (an open connection to the old address is closed). */
  setPeer(id: NodeId, address: string): void {
    if (id === this.opts.id) return;
    parseHostPort(address);
    const p = this.peers.get(id);
    if (p) {
      if (p.address === address) return;
      p.address = address;
      this.dropConnection(p);
      if (p.queue.length > 0) this.scheduleConnect(p, 0);
      return;
    }
    this.peers.set(id, { id, address, socket: undefined, state: 'idle', key: undefined, seq: 0, queue: [], attempts: 0, timer: undefined, waitingDrain: false, flushQueued: false, removed: false });
  }

  removePeer(id: NodeId): void {
    const p = this.peers.get(id);
    if (!p) return;
    p.removed = true;
    this.peers.delete(id);
    if (p.timer) clearTimeout(p.timer);
    this.dropConnection(p);
    for (const q of p.queue.splice(0)) q.onDone?.(false);
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  /**
   * Queues `payload` for `to`; never blocks or throws. `onDone(ok)` fires when written or dropped.
   * `urgent` (vote requests): a link waiting out a reconnect backoff dials now instead. A follower never
   * sends to another follower, so its link to a peer that restarted can sit in backoff (up to
   * DEFAULT_BACKOFF_MAX_MS) until the next election needs it; measured in the failover bench, that
   * delayed a pre-vote by 208 ms. Elections are rare, so this cannot turn into a dial storm.
   */
  send(to: NodeId, payload: Uint8Array, onDone?: (ok: boolean) => void, urgent = false): void {
    const p = this.peers.get(to);
    if (this.closed || !p) {
      if (!this.closed) this.counters.droppedUnknownPeer++;
      onDone?.(false);
      if (!this.closed) this.opts.onUnreachable?.(to);
      return;
    }
    if (payload.length > MAX_MESSAGE_BYTES) {
      this.rateLimitedLog(`send:${to}`, { peer: to, bytes: payload.length }, 'raft transport: message above MAX_MESSAGE_BYTES not sent');
      onDone?.(false);
      return;
    }
    p.queue.push({ payload, onDone });
    const limit = this.opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (p.queue.length > limit) {
      const dropped = p.queue.shift()!;
      this.counters.droppedQueueFull++;
      dropped.onDone?.(false);
      this.rateLimitedLog(`queue:${to}`, { peer: to, limit }, 'raft transport: peer queue full, dropping oldest messages');
      this.opts.onUnreachable?.(to);
    }
    if (p.state === 'open') this.queueFlush(p);
    else if (p.state === 'idle' && !p.timer) this.scheduleConnect(p, 0);
    else if (urgent && p.state === 'idle' && p.timer) this.dialNow(p);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.peers.values()]) this.removePeer(p.id);
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---------------------------------------------------------------------------------------------------
  // Outbound

  private backoffMs(attempts: number): number {
    const base = this.opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
    const max = this.opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
    const d = Math.min(max, base * 2 ** Math.min(attempts, 20));
    // "Equal jitter": half fixed, half random, so peers that failed together do not retry in lockstep.
    return d / 2 + (this.opts.random ?? Math.random)() * (d / 2);
  }

  /**
   * An authenticated frame just arrived from `id`, so it is up: if our link to it is waiting out a
   * reconnect backoff, dial now. Without this, a peer restarted after a long outage is reachable one
   * way only until the backoff (up to DEFAULT_BACKOFF_MAX_MS) ends, and an election that needs its
   * vote response stalls for a whole extra election timeout (seen in the failover bench).
   */
  private onPeerAlive(id: NodeId): void {
    const p = this.peers.get(id);
    if (!p || p.removed || p.state !== 'idle' || !p.timer) return;
    p.attempts = 0;
    this.dialNow(p);
  }

  /** Cuts a pending reconnect backoff short (the attempt count is kept: a dead peer still backs off). */
  private dialNow(p: PeerLink): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    this.connect(p);
  }

  private scheduleConnect(p: PeerLink, delayMs: number): void {
    if (this.closed || p.removed || p.timer) return;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.connect(p);
    }, delayMs);
    p.timer.unref?.();
  }

  private connect(p: PeerLink): void {
    if (this.closed || p.removed || p.state !== 'idle') return;
    const { host, port } = parseHostPort(p.address);
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    p.socket = socket;
    p.state = 'connecting';
    const reader = new FrameReader(this.opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    const timeout = setTimeout(() => fail('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    let failed = false;
    const fail = (reason: string, handshake = false): void => {
      clearTimeout(timeout);
      if (failed || p.socket !== socket) return;
      failed = true;
      if (handshake) this.counters.handshakeFailures++;
      else if (p.state === 'connecting') this.counters.connectFailures++;
      this.rateLimitedLog(`dial:${p.id}`, { peer: p.id, address: p.address, reason }, 'raft transport: connection to peer failed');
      this.dropConnection(p);
      this.opts.onUnreachable?.(p.id);
      p.attempts++;
      // Keep redialling (with backoff) even with an empty queue: Raft will send heartbeats or probes soon.
      this.scheduleConnect(p, this.backoffMs(p.attempts));
    };
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('connection closed'));
    socket.on('drain', () => {
      p.waitingDrain = false;
      this.flush(p);
    });
    socket.on('data', (data: Buffer) => {
      if (p.state === 'open') return fail('unexpected data from listener', true);
      const bodies = reader.push(data);
      if (bodies === 'oversize') return fail('oversize challenge', true);
      const body = bodies[0];
      if (!body) return;
      try {
        const r = new BufReader(body, 0, body.length - MAC_BYTES);
        if (r.u8() !== TRANSPORT_VERSION || r.u8() !== KIND_CHALLENGE) return fail('unsupported transport version', true);
        const nonce = r.bytes(NONCE_BYTES);
        const listenerId = r.str();
        r.done();
        if (!macOk(hmac(this.secret, body.subarray(0, body.length - MAC_BYTES)), body.subarray(body.length - MAC_BYTES))) {
          return fail('challenge HMAC mismatch: the peer uses a different cluster.secret', true);
        }
        if (listenerId !== p.id) return fail(`address ${p.address} belongs to peer ${JSON.stringify(listenerId)}, not ${JSON.stringify(p.id)}`, true);
        clearTimeout(timeout);
        p.key = sessionKey(this.secret, nonce);
        p.seq = 0;
        p.state = 'open';
        p.attempts = 0;
        this.flush(p);
      } catch {
        fail('malformed challenge', true);
      }
    });
  }

  private dropConnection(p: PeerLink): void {
    const s = p.socket;
    p.socket = undefined;
    p.state = 'idle';
    p.key = undefined;
    p.waitingDrain = false;
    s?.destroy();
  }

  /**
   * Messages sent in one synchronous burst (a Ready's appends, acks and heartbeats) leave in one
   * writev at the end of the turn instead of one write(2) each: with 64 proposers the per-frame
   * writes were the largest single cost in the Raft commit bench.
   */
  private queueFlush(p: PeerLink): void {
    if (p.flushQueued) return;
    p.flushQueued = true;
    queueMicrotask(() => {
      p.flushQueued = false;
      this.flush(p);
    });
  }

  private flush(p: PeerLink): void {
    const s = p.socket;
    if (p.state !== 'open' || !s || !p.key) return;
    s.cork();
    try {
      while (p.queue.length > 0 && !p.waitingDrain) {
        const item = p.queue.shift()!;
        const frames = this.encodeFrames(p, item.payload);
        for (let i = 0; i < frames.length; i++) {
          const last = i === frames.length - 1;
          const ok = s.write(frames[i]!, last && item.onDone ? (err) => item.onDone!(!err) : undefined);
          if (!ok || s.writableLength > SOCKET_HIGH_WATER) p.waitingDrain = true;
        }
        this.counters.sent++;
      }
    } finally {
      s.uncork();
    }
  }

  private encodeFrames(p: PeerLink, payload: Uint8Array): Buffer[] {
    const key = p.key!;
    if (payload.length <= CHUNK_BYTES) return [encodeDataFrame(key, KIND_DATA, this.opts.id, p.id, p.seq++, payload)];
    const frames: Buffer[] = [];
    for (let off = 0; off < payload.length; off += CHUNK_BYTES) {
      const part = payload.subarray(off, Math.min(payload.length, off + CHUNK_BYTES));
      const chunk = new BufWriter(part.length + 8).u32(payload.length).u32(off).bytes(part).finish();
      frames.push(encodeDataFrame(key, KIND_CHUNK, this.opts.id, p.id, p.seq++, chunk));
    }
    return frames;
  }

  // ---------------------------------------------------------------------------------------------------
  // Inbound

  private accept(s: net.Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    if (this.inbound.size >= MAX_INBOUND_CONNECTIONS) {
      this.rateLimitedLog(`cap:${s.remoteAddress ?? '?'}`, { remote: s.remoteAddress, limit: MAX_INBOUND_CONNECTIONS }, 'raft transport: too many inbound connections, refusing');
      s.destroy();
      return;
    }
    this.inbound.add(s);
    s.setNoDelay(true);
    const remote = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
    const nonce = randomBytes(NONCE_BYTES);
    const key = sessionKey(this.secret, nonce);
    const reader = new FrameReader(this.opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    let from: NodeId | undefined;
    let expectSeq = 0;
    let assembling: { buf: Buffer; got: number } | undefined;
    let dead = false;
    const drop = (counter: keyof TransportStats, reason: string): void => {
      if (dead) return;
      dead = true;
      this.counters[counter]++;
      this.rateLimitedLog(`in:${from ?? s.remoteAddress ?? remote}`, { remote, peer: from, reason }, 'raft transport: dropped frame from peer and closed the connection');
      s.destroy();
    };
    s.on('error', () => undefined);
    s.on('close', () => this.inbound.delete(s));
    s.write(encodeChallenge(this.secret, nonce, this.opts.id));
    s.on('data', (data: Buffer) => {
      if (dead) return;
      const bodies = reader.push(data);
      if (bodies === 'oversize') return drop('droppedOversize', `frame above ${this.opts.maxFrameBytes ?? MAX_FRAME_BYTES} bytes`);
      for (const body of bodies) {
        if (dead) return;
        this.counters.framesReceived++;
        if (body.length < 2 + MAC_BYTES) return drop('droppedMalformed', 'frame too short');
        const signed = body.subarray(0, body.length - MAC_BYTES);
        if (!macOk(hmac(key, signed), body.subarray(body.length - MAC_BYTES))) return drop('droppedBadMac', 'HMAC mismatch (wrong cluster.secret or tampering)');
        let kind: number, sender: string, to: string, seq: number, payload: Uint8Array;
        try {
          const r = new BufReader(signed);
          if (r.u8() !== TRANSPORT_VERSION) return drop('droppedMalformed', 'unsupported transport version');
          kind = r.u8();
          sender = r.str();
          to = r.str();
          seq = r.uint();
          payload = r.bytes(r.remaining);
        } catch {
          return drop('droppedMalformed', 'undecodable frame');
        }
        if (to !== this.opts.id) return drop('droppedWrongDestination', `frame addressed to ${JSON.stringify(to)}`);
        if (from !== undefined && sender !== from) return drop('droppedMalformed', `sender changed from ${from} to ${sender} on one connection`);
        if (seq !== expectSeq) return drop('droppedMalformed', `sequence ${seq}, expected ${expectSeq} (replay or reorder)`);
        if (from === undefined) this.onPeerAlive(sender);
        from = sender;
        expectSeq++;
        if (kind === KIND_DATA) {
          if (assembling) return drop('droppedMalformed', 'data frame inside a chunked message');
          this.deliver(sender, payload);
        } else if (kind === KIND_CHUNK) {
          if (payload.length < 8) return drop('droppedMalformed', 'short chunk');
          const total = Buffer.from(payload.buffer, payload.byteOffset, payload.length).readUInt32LE(0);
          const off = Buffer.from(payload.buffer, payload.byteOffset, payload.length).readUInt32LE(4);
          const part = payload.subarray(8);
          if (total > MAX_MESSAGE_BYTES) return drop('droppedOversize', `chunked message of ${total} bytes`);
          if (off === 0) assembling = { buf: Buffer.allocUnsafe(total), got: 0 };
          if (!assembling || off !== assembling.got || assembling.buf.length !== total || off + part.length > total) return drop('droppedMalformed', 'chunk out of order');
          assembling.buf.set(part, off);
          assembling.got += part.length;
          if (assembling.got === total) {
            const msg = assembling.buf;
            assembling = undefined;
            this.deliver(sender, msg);
          }
        } else {
          return drop('droppedMalformed', `unknown frame kind ${kind}`);
        }
      }
    });
  }

  private deliver(from: NodeId, payload: Uint8Array): void {
    this.counters.delivered++;
    try {
      this.opts.onMessage(from, payload);
    } catch (err) {
      this.rateLimitedLog(`handler:${from}`, { peer: from, err }, 'raft transport: message handler threw');
    }
  }

  private rateLimitedLog(key: string, obj: object, msg: string): void {
    const now = performance.now();
    const last = this.lastLogAt.get(key);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    this.lastLogAt.set(key, now);
    if (this.lastLogAt.size > 10_000) this.lastLogAt.clear(); // hostile remotes cannot grow this without bound
    this.log.warn(obj, msg);
  }
}
