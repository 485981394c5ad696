/**
 * An in-process network for the driver simulator, behind node-io.ts NodeTransport: what PeerTransport
 * promises node.ts, with the faults a real network adds. Payloads are the bytes node.ts encoded with
 * codec.ts; they are copied at send and handed to the receiver's onMessage, which decodes them, so no
 * object is ever shared between two simulated peers.
 *
 * Kept from PeerTransport (transport.ts): a bounded queue per peer (1,024 messages; the oldest dropped and
 * the peer reported unreachable on overflow) that holds messages while the link is down and is flushed,
 * in order, once a dial succeeds — so messages blocked by a partition or a crash arrive long after, to
 * the peer's next incarnation; dials retried with the transport's backoff while something is queued,
 * cut short by a frame from that peer or by a vote to send; a killed process sends nothing more; the handshake's identity checks (the
 * dialer must have a cluster id equal to the listener's, be a member, and be admitted — durably recorded —
 * before its first frame is delivered; membership checked again on every frame); MsgSnap's onDone.
 * Added faults: loss, duplication and reordering of individual messages, one-way cuts, and messages in
 * flight on a link that breaks are lost with its connection.
 */
import type { NodeTransport } from '../../../src/cluster/node-io.js';
import type { ProbeAnswer } from '../../../src/cluster/identity.js';
import type { NodeId } from '../../../src/cluster/raft/types.js';
import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_MAX_MS, DEFAULT_QUEUE_LIMIT, type PeerLinkStatus, type TransportOptions, type TransportStats } from '../../../src/cluster/transport.js';
import type { Random } from '../../../src/lib/rng.js';
import type { Proc, Scheduler } from './scheduler.js';

export interface NetFaults {
  /** Probability that one message is lost. */
  drop: number;
  /** Probability that one message is delivered twice. */
  duplicate: number;
  /** Probability that one message is held back (reordered behind later ones). */
  reorder: number;
  /**
   * Probability that one message arrives 50–1,500 ms late, behind elections and term changes: what a
   * queue flushed after a reconnect, or a stalled connection that recovers, delivers (issue 19).
   */
  longDelay: number;
  /** One-hop latency range in virtual ms. */
  minDelay: number;
  maxDelay: number;
}

export const CALM: NetFaults = { drop: 0, duplicate: 0, reorder: 0, longDelay: 0, minDelay: 0.2, maxDelay: 1 };

export interface NetStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Messages that waited in a sender's queue while the link was down and were delivered after a dial. */
  deliveredAfterOutage: number;
  queueOverflow: number;
  refusedHandshakes: number;
}

interface Endpoint {
  readonly id: NodeId;
  readonly opts: TransportOptions;
  readonly proc: Proc;
}

interface Conn {
  readonly to: Endpoint;
  /** Frames of one connection arrive in order unless a reorder fault holds one back. */
  lastArrival: number;
  /** Admission (identity.admit) must finish before the first frame is delivered; frames chain on it. */
  ready: Promise<boolean>;
  /** Admission refused: the listener closed the connection (the dialer redials, as PeerTransport does). */
  refused: boolean;
}

interface Queued {
  readonly payload: Uint8Array;
  readonly onDone: ((ok: boolean) => void) | undefined;
  /** Virtual time the message was queued (to count deliveries after an outage). */
  readonly at: number;
}

interface Link {
  readonly id: NodeId;
  address: string;
  queue: Queued[];
  conn: Conn | undefined;
  dialing: boolean;
  /** The pending dial (a reconnect backoff), so a sign of life from the peer can cut it short. */
  dialTask: { cancelled: boolean } | undefined;
  attempts: number;
}

const ZERO_STATS: TransportStats = {
  framesReceived: 0, delivered: 0, sent: 0, droppedBadMac: 0, droppedOversize: 0, droppedMalformed: 0,
  droppedWrongDestination: 0, droppedQueueFull: 0, droppedUnknownPeer: 0, droppedWrongCluster: 0,
  droppedNonMember: 0, connectFailures: 0, handshakeFailures: 0, handshakeTimeouts: 0, evictedPending: 0,
  idleClosed: 0, probesAnswered: 0,
};


export class SimNetwork {
  faults: NetFaults = CALM;
  /** Called after each send (the simulator's failpoint: a crash right after a message left). */
  onSend: ((from: NodeId) => void) | undefined;
  /** Sees every frame a live process hands its transport (the checker records what each peer said). */
  onFrame: ((from: NodeId, payload: Uint8Array) => void) | undefined;
  readonly stats: NetStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, deliveredAfterOutage: 0, queueOverflow: 0, refusedHandshakes: 0 };
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** One-way cuts, "from>to". */
  private readonly cuts = new Set<string>();

  constructor(private readonly sched: Scheduler, private readonly rng: Random) {}

  transport(opts: TransportOptions, proc: Proc): NodeTransport {
    return new SimTransport(this, this.sched, this.rng, opts, proc);
  }

  /** Listening now (SimTransport.start). */
  register(ep: Endpoint): void {
    this.endpoints.set(ep.id, ep);
  }

  unregister(ep: Endpoint): void {
    if (this.endpoints.get(ep.id) === ep) this.endpoints.delete(ep.id);
  }

  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  healAll(): void {
    this.cuts.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.has(`${from}>${to}`);
  }

  /** The live listener `from` would reach at `to` now, if any. */
  reach(from: NodeId, to: NodeId): Endpoint | undefined {
    if (this.cuts.has(`${from}>${to}`)) return undefined;
    const ep = this.endpoints.get(to);
    return ep && ep.proc.alive ? ep : undefined;
  }

  /** A connection is usable while its listener is the same live process and the link is not cut. */
  usable(from: NodeId, c: Conn): boolean {
    return !c.refused && this.reach(from, c.to.id) === c.to;
  }

  /** The first-boot probe (probe.ts) answered from the listener's identity, like its PROBE_REPLY. */
  probe(o: { self: NodeId; peer: NodeId }): Promise<ProbeAnswer> {
    return new Promise((resolve) => {
      this.sched.after(1 + this.rng() * 2, () => {
        const ep = this.reach(o.self, o.peer);
        const id = ep?.opts.identity;
        if (!ep || !id || this.isCut(o.peer, o.self)) return resolve('unreachable');
        resolve({ clusterId: id.clusterId(), term: id.term(), heardFromYou: id.hasHeard(o.self) });
      });
    });
  }

  delay(): number {
    const f = this.faults;
    return f.minDelay + this.rng() * (f.maxDelay - f.minDelay);
  }
}

class SimTransport implements NodeTransport {
  private readonly links = new Map<NodeId, Link>();
  private readonly ep: Endpoint;
  private closed = false;
  private sent = 0;
  private delivered = 0;

  constructor(
    private readonly net: SimNetwork,
    private readonly sched: Scheduler,
    private readonly rng: Random,
    private readonly opts: TransportOptions,
    private readonly proc: Proc,
  ) {
    this.ep = { id: opts.id, opts: { ...opts, onMessage: (from, payload) => this.receive(from, payload) }, proc };
  }

  async start(): Promise<{ host: string; port: number }> {
    this.net.register(this.ep);
    return this.address;
  }

  get address(): { host: string; port: number } {
    return { host: 'sim', port: 0 };
  }

  stats(): Readonly<TransportStats> {
    return { ...ZERO_STATS, sent: this.sent, delivered: this.delivered };
  }

  peerStatus(): PeerLinkStatus[] {
    return [...this.links.values()].map((l) => ({ id: l.id, address: l.address, connected: this.connected(l), queued: l.queue.length }));
  }

  setPeer(id: NodeId, address: string): void {
    if (id === this.opts.id) return;
    const l = this.links.get(id);
    if (l) l.address = address;
    else this.links.set(id, { id, address, queue: [], conn: undefined, dialing: false, dialTask: undefined, attempts: 0 });
  }

  removePeer(id: NodeId): void {
    const l = this.links.get(id);
    if (!l) return;
    this.links.delete(id);
    l.conn = undefined;
    for (const q of l.queue.splice(0)) q.onDone?.(false);
  }

  send(to: NodeId, payload: Uint8Array, onDone?: (ok: boolean) => void, urgent = false): void {
    // A process killed in the middle of a loop of sends (a failpoint) sends nothing more.
    if (!this.proc.alive) return;
    this.net.onFrame?.(this.opts.id, payload);
    const l = this.links.get(to);
    if (this.closed || !l) {
      onDone?.(false);
      if (!this.closed) this.opts.onUnreachable?.(to);
      return;
    }
    this.net.stats.sent++;
    this.sent++;
    l.queue.push({ payload: Uint8Array.from(payload), onDone, at: this.sched.now });
    if (l.queue.length > (this.opts.queueLimit ?? DEFAULT_QUEUE_LIMIT)) {
      l.queue.shift()!.onDone?.(false);
      this.net.stats.queueOverflow++;
      this.opts.onUnreachable?.(to);
    }
    if (this.connected(l)) this.flush(l);
    else if (urgent) this.dialNow(l);
    else this.dial(l);
    this.net.onSend?.(this.opts.id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.links.keys()]) this.removePeer(id);
    this.net.unregister(this.ep);
  }

  // ---- internals ----------------------------------------------------------------------------------
  private connected(l: Link): boolean {
    if (l.conn && !this.net.usable(this.opts.id, l.conn)) l.conn = undefined;
    return l.conn !== undefined;
  }

  /**
   * PeerTransport's reconnect: the first dial at once, then exponential backoff with "equal jitter" up to
   * DEFAULT_BACKOFF_MAX_MS (transport.ts backoffMs). A link in backoff keeps its queue the whole time, so
   * what it holds (acks, votes of an older term) is delivered seconds later, after elections.
   */
  private dial(l: Link, ms?: number): void {
    if (l.dialing || this.closed) return;
    l.dialing = true;
    const d = Math.min(DEFAULT_BACKOFF_MAX_MS, DEFAULT_BACKOFF_BASE_MS * 2 ** Math.min(l.attempts, 20));
    const wait = ms ?? (l.attempts === 0 ? 0 : d / 2 + this.rng() * (d / 2));
    l.dialTask = this.sched.after(wait + this.net.delay() * 2, () => {
      l.dialing = false;
      l.dialTask = undefined;
      if (this.closed || this.links.get(l.id) !== l || this.connected(l)) return;
      const to = this.net.reach(this.opts.id, l.id);
      const conn = to && !this.net.isCut(l.id, this.opts.id) ? this.handshake(to) : undefined;
      if (!conn) {
        l.attempts++;
        this.opts.onUnreachable?.(l.id);
        if (l.queue.length > 0) this.dial(l);
        return;
      }
      l.attempts = 0;
      l.conn = conn;
      this.flush(l);
    }, this.proc);
  }

  /** Cuts a pending reconnect backoff short (transport.ts dialNow: a vote to send, or a frame from the peer). */
  private dialNow(l: Link): void {
    if (this.closed || !l.dialing || !l.dialTask) return this.dial(l, 0);
    l.dialTask.cancelled = true;
    l.dialing = false;
    l.dialTask = undefined;
    this.dial(l, 0);
  }

  /** The listener's HELLO checks (transport.ts): cluster ids, membership, then durable admission. */
  private handshake(to: Endpoint): Conn | undefined {
    const mine = this.opts.identity?.clusterId();
    const theirs = to.opts.identity?.clusterId();
    const id = to.opts.identity;
    if (!mine || (theirs && !theirs.equals(mine)) || (id && !id.isMember(this.opts.id))) {
      this.net.stats.refusedHandshakes++;
      return undefined;
    }
    const conn: Conn = { to, lastArrival: 0, ready: Promise.resolve(true), refused: false };
    if (id) {
      conn.ready = id.admit(this.opts.id, mine).then(
        () => true,
        () => {
          conn.refused = true;
          this.net.stats.refusedHandshakes++;
          return false;
        },
      );
    }
    return conn;
  }

  private flush(l: Link): void {
    const c = l.conn!;
    for (const q of l.queue.splice(0)) {
      q.onDone?.(true);
      const f = this.net.faults;
      if (this.rng() < f.drop) {
        this.net.stats.lost++;
        continue;
      }
      const copies = this.rng() < f.duplicate ? 2 : 1;
      if (copies === 2) this.net.stats.duplicated++;
      for (let k = 0; k < copies; k++) {
        let at = this.sched.now + this.net.delay();
        if (this.rng() < f.longDelay) at += 50 + this.rng() * 1450;
        else if (this.rng() < f.reorder) at += this.rng() * 20;
        else at = Math.max(at, c.lastArrival);
        c.lastArrival = Math.max(c.lastArrival, at);
        const outage = this.sched.now - q.at > 1;
        this.sched.after(at - this.sched.now, () => this.arrive(c, q.payload, outage));
      }
    }
  }

  /** A frame reaches the listener: lost if the connection broke on the way, else delivered once admitted. */
  private arrive(c: Conn, payload: Uint8Array, outage: boolean): void {
    if (!this.net.usable(this.opts.id, c)) {
      this.net.stats.lost++;
      return;
    }
    const from = this.opts.id;
    c.ready = c.ready.then((ok) => {
      if (!ok || !c.to.proc.alive || !this.net.usable(from, c)) return ok;
      if (c.to.opts.identity && !c.to.opts.identity.isMember(from)) return ok;
      this.net.stats.delivered++;
      if (outage) this.net.stats.deliveredAfterOutage++;
      c.to.opts.onMessage(from, payload);
      return ok;
    });
  }

  private receive(from: NodeId, payload: Uint8Array): void {
    this.delivered++;
    // transport.ts onPeerAlive: a frame from a peer our link to it waits out a backoff for: dial now, so
    // its queue (whatever it held while the peer was down) is flushed at once.
    const l = this.links.get(from);
    if (l && l.dialing && l.attempts > 0 && !this.connected(l)) {
      l.attempts = 0;
      this.dialNow(l);
    }
    this.opts.onMessage(from, payload);
  }
}
