/**
 * Raw-socket clients of a meshgate Raft port, for attack tests: slot holders and slow-drip senders that
 * reconnect when closed, and a client that completes the handshake under any id and cluster id (it
 * knows the secret) and sends forged Raft messages. Everything is closed by stop()/close().
 */
import * as net from 'node:net';
import { encodeMessage } from '../../src/cluster/codec.js';
import { decodeChallenge, encodeDataFrame, encodeHello, FrameReader, MAX_PREAUTH_FRAME_BYTES, sessionKey } from '../../src/cluster/handshake.js';
import type { Message } from '../../src/cluster/raft/types.js';

export interface Attack {
  /** Connections opened so far (reconnects included). */
  opened(): number;
  stop(): void;
}

/**
 * `count` connections to each port, kept open (reopened when the peer closes them): each announces a
 * frame of `announce` bytes, then sends one byte every `dripMs` (`announce` 0: sends nothing at all).
 */
export function rawAttack(ports: readonly number[], opts: { count: number; announce: number; dripMs: number; reconnectMs?: number }): Attack {
  let stopped = false;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const open = (port: number): void => {
    if (stopped) return;
    opened++;
    const s = net.connect({ host: '127.0.0.1', port });
    s.setNoDelay(true); // one byte per segment, as a dripping attacker sends them
    sockets.add(s);
    let timer: NodeJS.Timeout | undefined;
    s.on('error', () => undefined);
    s.on('connect', () => {
      if (opts.announce === 0) return;
      const head = Buffer.alloc(4);
      head.writeUInt32LE(opts.announce, 0);
      s.write(head);
      timer = setInterval(() => s.write(Buffer.from([0x41])), opts.dripMs);
      timers.add(timer);
    });
    s.on('close', () => {
      sockets.delete(s);
      if (timer) {
        clearInterval(timer);
        timers.delete(timer);
      }
      // Reconnect after a pause: the attacker keeps its connections held. (With a short pause this is a
      // connection flood, whose cost is Node's own per-socket garbage: see docs/architecture.md.)
      const t = setTimeout(() => {
        timers.delete(t);
        open(port);
      }, opts.reconnectMs ?? 1000);
      timers.add(t);
    });
  };
  for (const port of ports) for (let i = 0; i < opts.count; i++) open(port);
  return {
    opened: () => opened,
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * Completes the handshake with the listener at `port` as `from` presenting `clusterId`, then sends
 * `messages` (Raft messages, encoded as the driver would). Resolves when the listener closed the
 * connection or after `lingerMs`.
 */
export function forgedPeer(opts: { port: number; secret: string; from: string; to: string; clusterId: Buffer; messages: Message[]; lingerMs?: number }): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: opts.port });
    const reader = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
    let done = false;
    const finish = (r: 'closed' | 'open'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('open'), opts.lingerMs ?? 1000);
    s.on('error', () => undefined);
    s.on('close', () => finish('closed'));
    s.once('data', (d: Buffer) => {
      reader.push(d);
      const body = reader.next();
      if (!body || body === 'oversize') return finish('closed');
      const ch = decodeChallenge(Buffer.from(opts.secret), body);
      const key = sessionKey(Buffer.from(opts.secret), ch.nonce);
      s.write(encodeHello(key, opts.from, opts.to, opts.clusterId));
      opts.messages.forEach((m, seq) => s.write(encodeDataFrame(key, 1, opts.from, opts.to, seq, encodeMessage(m))));
    });
  });
}
