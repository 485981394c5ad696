/**
 * Everything RaftNode (node.ts) takes from the outside world: time, timers, randomness, the peer
 * transport, the filesystem of the data dir and the first-boot probe. Production uses `realNodeIo`; the
 * driver simulator (test/sim/driver/) passes virtual time, a seeded scheduler, an in-process network and
 * a simulated disk, so the production Ready loop, storage.ts, codec.ts and the identity rules run under
 * its faults. Nothing here changes what production does: each real member is what node.ts called before.
 */
import { randomBytes } from 'node:crypto';
import { probePeer } from './probe.js';
import type { ProbeAnswer } from './identity.js';
import type { NodeId } from './raft/types.js';
import { nodeFs } from './storage.js';
import type { StorageFs } from './storage-fs.js';
import { PeerTransport, type PeerLinkStatus, type TransportOptions, type TransportStats } from './transport.js';

/** Opaque handle of a pending timer; `unref` where the host has it (a timer must not keep a process up). */
export interface TimerHandle {
  unref?(): unknown;
}

export interface NodeTimers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(t: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(t: TimerHandle | undefined): void;
  /** Runs `fn` after the I/O already queued (node's setImmediate): lets replies leave first. */
  setImmediate(fn: () => void): void;
}

/** What node.ts uses of PeerTransport; the simulator implements it over an in-process network. */
export interface NodeTransport {
  start(): Promise<{ host: string; port: number }>;
  readonly address: { host: string; port: number } | undefined;
  stats(): Readonly<TransportStats>;
  peerStatus(): PeerLinkStatus[];
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  send(to: NodeId, payload: Uint8Array, onDone?: (ok: boolean) => void, urgent?: boolean): void;
  close(): Promise<void>;
}

export interface NodeIo {
  /** Monotonic milliseconds (performance.now()). */
  now(): number;
  timers: NodeTimers;
  /** Uniform [0, 1): boot id, the core's election jitter seed, the tick phase. */
  random(): number;
  transport(opts: TransportOptions): NodeTransport;
  fs: StorageFs;
  /** The first-boot probe of one peer (probe.ts). */
  probe(o: { self: NodeId; peer: NodeId; address: string; secret: Uint8Array }): Promise<ProbeAnswer>;
}

const realTimers: NodeTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout | undefined),
  setImmediate: (fn) => void setImmediate(fn),
};

export const realNodeIo: NodeIo = {
  now: () => performance.now(),
  timers: realTimers,
  // Crypto randomness, as before the seam: two peers started together must not draw the same jitter.
  random: () => randomBytes(4).readUInt32LE(0) / 2 ** 32,
  transport: (opts) => new PeerTransport(opts),
  fs: nodeFs,
  probe: (o) => probePeer(o),
};

/** `realNodeIo` with some members replaced. */
export function nodeIo(over: Partial<NodeIo> | undefined): NodeIo {
  return over ? { ...realNodeIo, ...over } : realNodeIo;
}
