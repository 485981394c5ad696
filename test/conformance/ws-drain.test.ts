/**
 * An Upgrade request that arrives while the peer drains (SIGTERM) is refused 503 `shutting-down`,
 * never tunnelled: a tunnel opened then would only be cut when the drain ends. A real peer process;
 * the request's head is begun before SIGTERM (a connection mid-request is not idle, so the drain
 * keeps it) and finished once the peer says it is draining.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { waitFor } from '../helpers/meshgate.js';
import { exchange, header, upgradeRequest } from './lib/ws-raw.js';
import { startWsRig, type WsRig } from './lib/ws-peer.js';

let rig: WsRig;
beforeAll(async () => {
  // Long enough that the drain is still under way when the rest of the head arrives on a busy machine.
  rig = await startWsRig({ accessLog: false, drainTimeout: '20s' });
});
afterAll(async () => {
  await rig?.close();
});

describe('upgrades during drain', () => {
  it('a new upgrade while draining gets 503 shutting-down and reaches no backend; the peer exits 0', async () => {
    const request = upgradeRequest('/drain/echo');
    const split = request.indexOf('\r\n') + 2;
    const sock = connect(rig.dataPort, '127.0.0.1');
    sock.on('error', () => undefined);
    let answer = '';
    sock.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    await new Promise<void>((resolve) => sock.write(request.slice(0, split), () => resolve()));
    // Control, and an ordering fence: a whole upgrade on a second connection, opened after the first
    // one's request line was sent, is tunnelled — so by then the peer has read that line too.
    expect((await exchange(rig.dataPort, request)).status).toBe(101);
    const seen = rig.a.seen.length;

    const exited = rig.peer.stop('SIGTERM');
    await waitFor(() => /"msg":"draining"/.test(rig.peer.output()), 10_000, () => `peer never said draining:\n${rig.peer.output().slice(-2000)}`);
    sock.write(request.slice(split));
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer; got ${JSON.stringify(answer)}`)), 10_000))]);

    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    const lines = answer.split('\r\n');
    expect(lines).toContain('x-meshgate-reason: shutting-down');
    expect(header({ status: 503, headers: lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as const), body: Buffer.alloc(0), closed: true }, 'connection')).toBe('close');
    expect(rig.a.seen.length).toBe(seen);
    // Nothing else holds the drain: the peer exits cleanly, well before the drain timeout.
    expect(await exited).toEqual({ code: 0, signal: null });
  });
});
