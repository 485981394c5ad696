/**
 * The first-boot identity check on the wire (identity.ts decideFirstBoot): dial a peer, verify its
 * CHALLENGE with the cluster secret, send PROBE, read the signed PROBE_REPLY, close. Anything else (no
 * listener, timeout, wrong secret, wrong id at that address) is 'unreachable': the rule treats it as a
 * peer that did not answer.
 */
import * as net from 'node:net';
import {
  decodeChallenge,
  decodeProbeReply,
  encodeProbe,
  FrameReader,
  MAX_PREAUTH_FRAME_BYTES,
  sessionKey,
} from './handshake.js';
import { decideFirstBoot, IdentityError, type ProbeAnswer } from './identity.js';
import type { ClusterLogger } from './logger.js';
import type { NodeId } from './raft/types.js';
import { parsePeerAddress } from '../model/validate/index.js';

export const PROBE_TIMEOUT_MS = 1000;

export function probePeer(opts: { self: NodeId; peer: NodeId; address: string; secret: Uint8Array; timeoutMs?: number }): Promise<ProbeAnswer> {
  return new Promise((resolve) => {
    const target = parsePeerAddress(opts.address);
    if (!target.ok) {
      resolve('unreachable');
      return;
    }
    const s = net.connect(target.value);
    const reader = new FrameReader(MAX_PREAUTH_FRAME_BYTES);
    let key: Buffer | undefined;
    let settled = false;
    const done = (a: ProbeAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve(a);
    };
    const timer = setTimeout(() => done('unreachable'), opts.timeoutMs ?? PROBE_TIMEOUT_MS);
    s.on('error', () => done('unreachable'));
    s.on('close', () => done('unreachable'));
    s.on('data', (data: Buffer) => {
      reader.push(data);
      for (;;) {
        const body = reader.next();
        if (body === undefined) return;
        if (body === 'oversize') return done('unreachable');
        try {
          if (!key) {
            const ch = decodeChallenge(opts.secret, body);
            if (ch.listenerId !== opts.peer) return done('unreachable');
            key = sessionKey(opts.secret, ch.nonce);
            s.write(encodeProbe(key, opts.self, opts.peer));
          } else {
            return done(decodeProbeReply(key, body));
          }
        } catch {
          return done('unreachable');
        }
      }
    });
  });
}

/** Between probe rounds while the rule says wait; and how long to wait before refusing. */
export const FIRST_BOOT_RETRY_MS = 250;
export const FIRST_BOOT_WAIT_MS = 10_000;

/**
 * Runs the first-boot rule (identity.ts decideFirstBoot) against every other peer of cluster.bootstrap:
 * resolves when this peer may start, throws IdentityError when it must not (with what to do instead).
 */
export async function firstBootCheck(opts: {
  self: NodeId;
  derived: Buffer | undefined;
  peers: readonly { id: NodeId; address: string }[];
  secret: Uint8Array;
  log: ClusterLogger;
  waitMs?: number;
  /** The driver simulator's probe, clock and timers (node-io.ts); default the real ones. */
  probe?: typeof probePeer;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}): Promise<void> {
  const probe = opts.probe ?? probePeer;
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + (opts.waitMs ?? FIRST_BOOT_WAIT_MS);
  for (let round = 0; ; round++) {
    const answers = new Map<NodeId, ProbeAnswer>();
    await Promise.all(opts.peers.map(async (p) => answers.set(p.id, await probe({ self: opts.self, peer: p.id, address: p.address, secret: opts.secret }))));
    const d = decideFirstBoot(opts.self, opts.derived, answers);
    if (d.action === 'start') return;
    if (d.action === 'refuse') throw new IdentityError(d.reason);
    if (now() > deadline) {
      throw new IdentityError(`cluster.dataDir is empty and ${d.why}; refusing to start rather than risk a lost vote. Start this peer again once ${d.missing.join(', ')} answer(s), or re-add it as a new member (docs/architecture.md, "Cluster identity").`);
    }
    if (round === 0) opts.log.warn({ missing: d.missing }, `raft: first boot waits: ${d.why}`);
    await sleep(FIRST_BOOT_RETRY_MS);
  }
}
