/**
 * Open WebSockets across the peer's life: a config reload and cluster membership changes (an
 * upstream added, the tunnel's own upstream set to draining, the added one removed) do not close
 * them; SIGTERM closes them after `node.drainTimeout` and the peer exits 0. A one-peer Raft group
 * carries the membership writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { waitFor } from '../helpers/meshgate.js';
import { startWsRig, status, type WsRig } from './lib/ws-peer.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: false, cluster: true });
});
afterAll(async () => {
  await rig?.close();
});

function open(path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}${path}`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no echo of ${text}`)), 5_000);
    ws.once('message', (m) => {
      clearTimeout(t);
      resolve(m.toString());
    });
    ws.send(text);
  });
}

async function admin(method: string, path: string, body?: unknown): Promise<number> {
  const r = await fetch(`${rig.peer.adminUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  await r.text();
  return r.status;
}

describe('open WebSockets across reloads, membership changes and shutdown', () => {
  it('a reload and membership changes leave them open; SIGTERM closes them and the peer exits 0', async () => {
    const conns = await Promise.all([open('/life-1/echo'), open('/life-2/echo'), open('/sticky/life-3/echo')]);
    const closed = conns.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));
    let closedEarly = false;
    for (const c of closed) void c.then(() => (closedEarly = true));
    const allEcho = async (tag: string) => {
      for (const [i, ws] of conns.entries()) expect(await echo(ws, `${tag}-${i}`)).toBe(`${tag}-${i}`);
    };
    await allEcho('start');

    const gen = (await status(rig.peer)).generation;
    writeFileSync(rig.peer.configFile, rig.config(`\n      - { id: b, url: ${rig.b.url} }`));
    expect(await admin('POST', '/api/v1/config/reload')).toBe(200);
    await waitFor(async () => (await status(rig.peer)).generation > gen, 5_000, () => 'reload not applied');
    await allEcho('after-reload');

    expect(await admin('PUT', '/api/v1/services/ws/upstreams/c', { url: rig.b.url })).toBe(200);
    expect(await admin('PUT', '/api/v1/services/ws/upstreams/a', { url: rig.a.url, state: 'draining' })).toBe(200);
    expect(await admin('DELETE', '/api/v1/services/ws/upstreams/c')).toBe(200);
    await allEcho('after-membership');
    expect(closedEarly).toBe(false);
    expect((await status(rig.peer)).websockets).toBe(3);

    const exited = rig.peer.stop('SIGTERM');
    const codes = await Promise.all(closed);
    // 1006: the connection was closed without a close frame (meshgate does not speak WebSocket).
    expect(codes.every((c) => c === 1006 || c === 1001)).toBe(true);
    expect(await exited).toEqual({ code: 0, signal: null });
    await waitFor(() => rig.a.openWebSockets + rig.b.openWebSockets === 0, 5_000, () => 'backend still has WebSockets open');
  });
});
