/**
 * Peer-to-peer transport for Raft messages: TCP on `cluster.listen`, length-prefixed frames, every frame
 * authenticated with HMAC-SHA256 derived from `cluster.secret`. The transport carries opaque payloads
 * (node.ts encodes Raft messages with codec.ts); it never interprets them. Wire format: handshake.ts.
 *
 * Connections are one-way, like etcd's rafthttp streams: each peer dials every other peer and only sends on
 * the connection it dialled; the listener only receives. The listener speaks first (CHALLENGE with a fresh
 * nonce, its id and its cluster id); the dialer's first frame is a HELLO (its id, our id, its cluster id)
 * or a PROBE (identity.ts, first boot), signed with the per-connection key.
 *
 * Invariants:
 * - Nothing is delivered unless its HMAC verifies (timingSafeEqual), the connection's HELLO named this
 *   node and a cluster id equal to ours, the sender is a member (`identity.isMember`, checked at HELLO and
 *   on every frame), `from` matches the HELLO and the seq is exactly the next one. The nonce makes the key
 *   per connection and the seq orders frames within it, so a recorded frame cannot be replayed.
 * - What an unauthenticated connection costs is bounded: its frames may not exceed MAX_PREAUTH_FRAME_BYTES,
 *   it must authenticate within HANDSHAKE_TIMEOUT_MS, at most MAX_PENDING_PER_SOURCE of them per remote
 *   address and MAX_PENDING_INBOUND in all (a new one evicts the oldest), and they never take the place of
 *   an authenticated peer's connection. Buffered bytes follow what arrived, never a length prefix
 *   (FrameReader), and a chunked message is kept as the chunks that arrived.
 * - An authenticated connection that stays silent for IDLE_TIMEOUT_MS is closed (the dialer redials when it
 *   has something to send); a new connection from a peer id replaces its older ones.
 * - Oversize, malformed and refused frames are counted, logged at most once per remote per
 *   LOG_INTERVAL_MS, and the connection is closed; the bytes are never delivered.
 * - send() never blocks and never throws: each peer has a bounded queue; on overflow the oldest message is
 *   dropped and the peer is reported unreachable (Raft tolerates loss; the core probes again).
 * - Outbound connections reconnect with exponential backoff and jitter.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { BufWriter } from './codec.js';
import {
  decodeChallenge,
  decodeDataFrame,
  decodeOpening,
  encodeChallenge,
  encodeDataFrame,
  encodeHello,
  encodeProbeReply,
  FrameReader,
  HandshakeError,
  KIND_CHUNK,
  KIND_DATA,
  MAX_PREAUTH_FRAME_BYTES,
  NONCE_BYTES,
  sessionKey,
  verified,
} from './handshake.js';
import { noopLogger, type ClusterLogger } from './logger.js';
import type { NodeId } from './raft/types.js';
import { parseListenAddress, parsePeerAddress, type Checked, type HostPort } from '../model/validate/index.js';

export { TRANSPORT_VERSION } from './handshake.js';
/**
 * 4 MiB per frame once authenticated: the core bounds a MsgApp at 1 MiB of entries (DEFAULT_MAX_SIZE_PER_MSG),
 * so ordinary frames are far below this; bigger messages (snapshots) are split into CHUNK_BYTES chunks.
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
/**
 * Both sides give the handshake this long: a CHALLENGE and a HELLO are one round trip, so 2 s is far
 * above any LAN RTT, and short enough that a connection that never authenticates is gone quickly.
 */
export const HANDSHAKE_TIMEOUT_MS = 2000;
/** Unauthenticated connections in all; when full, a new one evicts the oldest (so holders cannot lock peers out). */
export const MAX_PENDING_INBOUND = 64;
/** Unauthenticated connections per remote address; when full, a new one evicts that address's oldest. */
export const MAX_PENDING_PER_SOURCE = 8;
/**
 * An authenticated inbound connection with no frame for this long is closed. A leader's link carries
 * heartbeats every tick; a follower-to-follower link is silent between elections, and its dialer simply
 * redials (one round trip) when it next has something to send.
 */
export const IDLE_TIMEOUT_MS = 5 * 60_000;
/** Rate limit for drop logs: at most one line per remote per interval, however hostile the remote is. */
export const LOG_INTERVAL_MS = 10_000;

/**
 * What the transport needs to know about this peer's cluster (node.ts backs it with identity.ts and the
 * applied configuration). Policy lives there; the transport only enforces it.
 */
export interface TransportIdentity {
  /** This peer's cluster id, or undefined while it has none (a joiner never contacted, a first-boot probe). */
  clusterId(): Buffer | undefined;
  /** Current Raft term, for PROBE replies. */
  term(): number;
  /** This data dir accepted a connection from `id` before (PROBE replies). */
  hasHeard(id: NodeId): boolean;
  /** Frames from `id` are accepted now (it is in the configuration, or we have none yet). */
  isMember(id: NodeId): boolean;
  /**
   * `from` authenticated presenting `clusterId` (equal to ours, or ours is undefined): resolve when it may
   * send (the cluster id adopted and `from` recorded durably); reject to refuse the connection.
   */
  admit(from: NodeId, clusterId: Buffer): Promise<void>;
}

/** A fixed cluster id, every authenticated id a member: for embedders and tests without a data dir. */
export function staticIdentity(clusterId: Buffer = Buffer.alloc(16, 0x6d)): TransportIdentity {
  return { clusterId: () => clusterId, term: () => 0, hasHeard: () => false, isMember: () => true, admit: () => Promise.resolve() };
}

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
  /** HELLO from a peer of another cluster (or from a dialer with no cluster id). */
  droppedWrongCluster: number;
  /** HELLO or frame from an id that is not in the current configuration. */
  droppedNonMember: number;
  connectFailures: number;
  handshakeFailures: number;
  /** Inbound connections closed for not authenticating within HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeouts: number;
  /** Unauthenticated inbound connections evicted to make room (MAX_PENDING_*). */
  evictedPending: number;
  /** Authenticated inbound connections closed after IDLE_TIMEOUT_MS of silence. */
  idleClosed: number;
  probesAnswered: number;
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
  /** Cluster id and membership checks of the handshake; default staticIdentity(). */
  readonly identity?: TransportIdentity;
  readonly handshakeTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** Jitter source; defaults to Math.random (jitter needs no reproducibility outside tests). */
  readonly random?: () => number;
}

/** host:port through the one address validator (model/validate); throws its message. */
function hostPortOf(r: Checked<HostPort>): HostPort {
  if (!r.ok) throw new Error(r.message);
  return r.value;
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
  private readonly identity: TransportIdentity;
  /** Unauthenticated inbound connections, oldest first (Set keeps insertion order). */
  private readonly pending = new Set<net.Socket>();
  private readonly pendingBySource = new Map<string, Set<net.Socket>>();
  /** Authenticated inbound connections by peer id (normally one each). */
  private readonly authenticated = new Map<NodeId, Set<net.Socket>>();
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
    droppedWrongCluster: 0,
    droppedNonMember: 0,
    connectFailures: 0,
    handshakeFailures: 0,
    handshakeTimeouts: 0,
    evictedPending: 0,
    idleClosed: 0,
    probesAnswered: 0,
  };

  constructor(private readonly opts: TransportOptions) {
    this.secret = Buffer.from(typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : opts.secret);
    if (this.secret.length === 0) throw new Error('cluster.secret must not be empty');
    this.log = opts.logger ?? noopLogger;
    this.identity = opts.identity ?? staticIdentity();
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    const { host, port } = hostPortOf(parseListenAddress(this.opts.listen));
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
    const parsed = parsePeerAddress(address);
    if (!parsed.ok) {
      const err = parsed.message;
      // Never throws into the apply path: a committed address we cannot dial leaves the peer unreachable.
      this.rateLimitedLog(`addr:${id}`, { peer: id, address, err }, 'raft transport: peer address is not host:port; the peer stays unreachable');
      return;
    }
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
    for (const s of this.pending) s.destroy();
    for (const set of this.authenticated.values()) for (const s of set) s.destroy();
    this.pending.clear();
    this.pendingBySource.clear();
    this.authenticated.clear();
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
    const target = parsePeerAddress(p.address);
    if (!target.ok) return; // setPeer never stores such an address; kept for safety
    const socket = net.connect(target.value);
    socket.setNoDelay(true);
    p.socket = socket;
    p.state = 'connecting';
    const reader = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
    const timeout = setTimeout(() => fail('handshake timeout', true), this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
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
      reader.push(data);
      const body = reader.next();
      if (body === undefined) return;
      if (body === 'oversize') return fail('oversize challenge', true);
      let nonce: Buffer;
      try {
        const ch = decodeChallenge(this.secret, body);
        if (ch.listenerId !== p.id) return fail(`address ${p.address} belongs to peer ${JSON.stringify(ch.listenerId)}, not ${JSON.stringify(p.id)}`, true);
        const ours = this.identity.clusterId();
        if (!ours) return fail('this peer has no cluster id yet (it waits to be contacted by the leader)', true);
        if (ch.clusterId && !ch.clusterId.equals(ours)) return fail(`peer belongs to cluster ${ch.clusterId.toString('hex')}, this one is ${ours.toString('hex')}`, true);
        nonce = ch.nonce;
      } catch (err) {
        return fail(err instanceof HandshakeError && /HMAC/.test(err.message) ? 'challenge HMAC mismatch: the peer uses a different cluster.secret' : `bad challenge: ${(err as Error).message}`, true);
      }
      clearTimeout(timeout);
      p.key = sessionKey(this.secret, nonce);
      p.seq = 0;
      p.state = 'open';
      p.attempts = 0;
      socket.write(encodeHello(p.key, this.opts.id, p.id, this.identity.clusterId()));
      this.flush(p);
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
    const source = s.remoteAddress ?? '?';
    const remote = `${source}:${s.remotePort ?? '?'}`;
    this.admitPending(s, source);
    s.setNoDelay(true);
    const nonce = randomBytes(NONCE_BYTES);
    // Derived when the first frame arrives: a connection that never speaks costs no second HMAC.
    let key: Buffer | undefined;
    const reader = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
    const maxFrame = this.opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    let from: NodeId | undefined;
    /** HELLO verified, waiting for identity.admit (frames stay in the reader meanwhile). */
    let admitting = false;
    let authenticated = false;
    let expectSeq = 0;
    let assembling: { total: number; got: number; parts: Uint8Array[] } | undefined;
    let dead = false;
    const drop = (counter: keyof TransportStats, reason: string): void => {
      if (dead) return;
      dead = true;
      this.counters[counter]++;
      this.rateLimitedLog(`in:${from ?? source}`, { remote, peer: from, reason }, 'raft transport: dropped frame from peer and closed the connection');
      s.destroy();
    };
    const handshakeTimer = setTimeout(() => drop('handshakeTimeouts', `no authentication within ${this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`), this.opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    s.on('error', () => undefined);
    s.on('close', () => {
      dead = true;
      clearTimeout(handshakeTimer);
      this.forgetInbound(s, source, from);
    });
    s.write(encodeChallenge(this.secret, nonce, this.opts.id, this.identity.clusterId()));

    /** The dialer's first frame: HELLO (then data follows) or PROBE (answered, then closed). */
    const opening = (body: Buffer): void => {
      let o;
      try {
        key = sessionKey(this.secret, nonce);
        o = decodeOpening(key, body);
      } catch (err) {
        return drop(/HMAC/.test((err as Error).message) ? 'droppedBadMac' : 'droppedMalformed', (err as Error).message);
      }
      from = o.from;
      if (o.to !== this.opts.id) return drop('droppedWrongDestination', `connection addressed to ${JSON.stringify(o.to)}`);
      if (o.kind === 'probe') {
        this.counters.probesAnswered++;
        clearTimeout(handshakeTimer);
        s.end(encodeProbeReply(key!, { clusterId: this.identity.clusterId(), term: this.identity.term(), heardFromYou: this.identity.hasHeard(o.from) }));
        dead = true;
        return;
      }
      const ours = this.identity.clusterId();
      if (!o.clusterId) return drop('droppedWrongCluster', 'the dialer has no cluster id');
      if (ours && !o.clusterId.equals(ours)) return drop('droppedWrongCluster', `peer of cluster ${o.clusterId.toString('hex')}, this one is ${ours.toString('hex')}`);
      if (!this.identity.isMember(o.from)) return drop('droppedNonMember', `${JSON.stringify(o.from)} is not in the current configuration`);
      admitting = true;
      clearTimeout(handshakeTimer);
      s.pause();
      const sender = o.from;
      this.identity.admit(sender, o.clusterId).then(
        () => {
          if (dead) return;
          admitting = false;
          authenticated = true;
          this.promote(s, source, sender);
          reader.maxFrame = maxFrame;
          this.onPeerAlive(sender);
          s.resume();
          consume();
        },
        (err: unknown) => drop('droppedWrongCluster', `refused: ${(err as Error).message}`),
      );
    };

    const dataFrame = (body: Buffer): void => {
      this.counters.framesReceived++;
      let f;
      try {
        f = decodeDataFrame(verified(body, key!));
      } catch (err) {
        return drop(/HMAC/.test((err as Error).message) ? 'droppedBadMac' : 'droppedMalformed', (err as Error).message);
      }
      if (f.to !== this.opts.id) return drop('droppedWrongDestination', `frame addressed to ${JSON.stringify(f.to)}`);
      if (f.from !== from) return drop('droppedMalformed', `sender changed from ${from} to ${f.from} on one connection`);
      if (f.seq !== expectSeq) return drop('droppedMalformed', `sequence ${f.seq}, expected ${expectSeq} (replay or reorder)`);
      // Membership is checked on every frame too: a peer removed while connected is cut off at once.
      if (!this.identity.isMember(f.from)) return drop('droppedNonMember', `${JSON.stringify(f.from)} is no longer in the configuration`);
      expectSeq++;
      if (f.kind === KIND_DATA) {
        if (assembling) return drop('droppedMalformed', 'data frame inside a chunked message');
        this.deliver(f.from, f.payload);
      } else if (f.kind === KIND_CHUNK) {
        const payload = f.payload;
        if (payload.length < 8) return drop('droppedMalformed', 'short chunk');
        const view = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
        const total = view.readUInt32LE(0);
        const off = view.readUInt32LE(4);
        const part = payload.subarray(8);
        if (total > MAX_MESSAGE_BYTES) return drop('droppedOversize', `chunked message of ${total} bytes`);
        if (off === 0) assembling = { total, got: 0, parts: [] };
        if (!assembling || off !== assembling.got || assembling.total !== total || off + part.length > total) return drop('droppedMalformed', 'chunk out of order');
        // Kept as the chunks that arrived, joined at the end: memory follows the bytes, not `total`.
        assembling.parts.push(part);
        assembling.got += part.length;
        if (assembling.got === total) {
          const msg = Buffer.concat(assembling.parts, total);
          assembling = undefined;
          this.deliver(f.from, msg);
        }
      } else {
        return drop('droppedMalformed', `unknown frame kind ${f.kind}`);
      }
    };

    const consume = (): void => {
      while (!dead && !admitting) {
        const body = reader.next();
        if (body === undefined) return;
        if (body === 'oversize') return drop('droppedOversize', `frame above ${reader.maxFrame} bytes${authenticated ? '' : ' before authentication'}`);
        if (from === undefined) opening(body);
        else dataFrame(body);
      }
    };
    s.on('data', (data: Buffer) => {
      if (dead) return;
      reader.push(data);
      consume();
    });
  }

  /** Registers an unauthenticated connection, evicting the oldest one of its source or in all when full. */
  private admitPending(s: net.Socket, source: string): void {
    const evict = (victim: net.Socket | undefined): void => {
      if (!victim) return;
      this.counters.evictedPending++;
      this.rateLimitedLog(`evict:${source}`, { remote: source, pending: this.pending.size }, 'raft transport: too many unauthenticated connections, closing the oldest');
      this.forgetInbound(victim, victim.remoteAddress ?? '?', undefined);
      victim.destroy();
    };
    const mine = this.pendingBySource.get(source);
    if (mine && mine.size >= MAX_PENDING_PER_SOURCE) evict(mine.values().next().value);
    if (this.pending.size >= MAX_PENDING_INBOUND) evict(this.pending.values().next().value);
    this.pending.add(s);
    const bySource = this.pendingBySource.get(source);
    if (bySource) bySource.add(s);
    else this.pendingBySource.set(source, new Set([s]));
  }

  /** The connection authenticated as `id`: out of the pending pool; it replaces older connections of `id`. */
  private promote(s: net.Socket, source: string, id: NodeId): void {
    this.forgetInbound(s, source, undefined);
    const older = this.authenticated.get(id);
    if (older) for (const o of [...older]) o.destroy();
    this.authenticated.set(id, new Set([s]));
    const idle = this.opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    s.setTimeout(idle, () => {
      this.counters.idleClosed++;
      s.destroy();
    });
  }

  private forgetInbound(s: net.Socket, source: string, id: NodeId | undefined): void {
    this.pending.delete(s);
    const bySource = this.pendingBySource.get(source);
    if (bySource?.delete(s) && bySource.size === 0) this.pendingBySource.delete(source);
    if (id !== undefined) {
      const set = this.authenticated.get(id);
      if (set?.delete(s) && set.size === 0) this.authenticated.delete(id);
    }
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
