/**
 * Issue 12's crash: an `Upgrade: websocket` request whose backend answers a normal (non-101)
 * response after a delay, with the client gone by then. With http-proxy this was an unhandled
 * `write EPIPE` and the process exited (3 tries, 3 crashes). The client leaves in the three ways a
 * real one does — close (FIN), destroy, and reset (RST) — three times each; afterwards the same
 * process (same pid) still proxies HTTP and WebSocket traffic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../helpers/meshgate.js';
import { exchange, openAndSend, plainRequest, upgradeRequest } from './lib/ws-raw.js';
import { nothingInFlight, startWsRig, upstreamStatus, type WsRig } from './lib/ws-peer.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: false });
});
afterAll(async () => {
  await rig?.close();
});

describe('client gone before a delayed non-101 answer', () => {
  it('the peer survives FIN, destroy and RST, three times each, and keeps serving', async () => {
    const pid = rig.peer.proc.pid;
    const before = rig.a.refusalsWritten + rig.a.refusalsSkipped;
    const leaves: Array<(s: import('node:net').Socket) => void> = [(s) => s.end(), (s) => s.destroy(), (s) => s.resetAndDestroy()];
    for (let round = 0; round < 3; round++) {
      for (const leave of leaves) {
        const seen = rig.a.seen.length;
        const sock = await openAndSend(rig.dataPort, upgradeRequest('/refuse?ms=150&status=403'));
        sock.on('error', () => undefined);
        // The client leaves once its upgrade is at the backend (an RST sent earlier can discard the
        // request in the kernel before meshgate reads it, and then nothing is proxied at all).
        await waitFor(() => rig.a.seen.length > seen, 5_000, () => 'the upgrade did not reach the backend', rig.peer.exited);
        leave(sock);
      }
    }
    // Every refusal came back after its client had gone (the moment the crash happened), unless
    // meshgate had already closed that upstream socket for the gone client.
    const done = () => rig.a.refusalsWritten + rig.a.refusalsSkipped - before;
    await waitFor(() => done() >= 9, 5_000, () => `backend answered ${done()} of 9 upgrades`, rig.peer.exited);
    expect(rig.a.refusalsWritten).toBeGreaterThan(0);
    // Let meshgate process those answers; the process must still be this one, and serving.
    const res = await exchange(rig.dataPort, plainRequest('/plain', [['Connection', 'close']]));
    expect(res.status).toBe(200);
    expect(rig.peer.proc.exitCode).toBeNull();
    expect(rig.peer.proc.pid).toBe(pid);
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/echo`);
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('still here'));
      ws.once('message', (m) => resolve(m.toString()));
      ws.once('error', reject);
    });
    ws.close();
    expect(echoed).toBe('still here');
    expect(rig.peer.output()).not.toMatch(/EPIPE|Unhandled|uncaught/i);
    // The clients' departures are not the upstream's fault, and every in-flight slot came back.
    await waitFor(() => nothingInFlight(rig.peer), 5_000, () => 'in-flight not released');
    const a = await upstreamStatus(rig.peer, 'ws', 'a');
    expect(a.failures).toBe(0);
    expect(a.ejected).toBe(false);
  });
});
