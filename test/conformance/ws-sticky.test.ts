/**
 * Sticky sessions, fences and the access log on the Upgrade path: a WebSocket without a session
 * cookie gets one in its 101 and a fence upstream; with the cookie it lands on the same upstream as
 * the session's HTTP requests (one pin, shared by both paths), and a client-forged fence never
 * reaches the backend. Every upgrade writes one access-log line when it ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../helpers/meshgate.js';
import { exchange, header, plainRequest, upgradeRequest } from './lib/ws-raw.js';
import { startWsRig, type WsRig } from './lib/ws-peer.js';
import type { SeenRequest, WsBackend } from './lib/ws-backend.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: true });
});
afterAll(async () => {
  await rig?.close();
});

function headerOf(seen: SeenRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if (seen.rawHeaders[i]!.toLowerCase() === name) out.push(seen.rawHeaders[i + 1]!);
  return out;
}

/** The request `url` as the backend that got it saw it. */
function seenBy(url: string): { backend: WsBackend; seen: SeenRequest } {
  for (const backend of [rig.a, rig.b]) {
    const seen = [...backend.seen].reverse().find((s) => s.url === url);
    if (seen) return { backend, seen };
  }
  throw new Error(`no backend saw ${url}`);
}

interface AccessLine {
  kind: string;
  method: string;
  path: string;
  status: number;
  service: string;
  upstream?: string;
  requestId: string;
  durationMs: number;
  reason?: string;
}

function accessLines(): AccessLine[] {
  return rig.peer
    .output()
    .split('\n')
    .filter((l) => l.includes('"kind":"access"'))
    .map((l) => JSON.parse(l) as AccessLine);
}

describe('sticky sessions and fences on the Upgrade path', () => {
  it('a new session gets its cookie in the 101, a fence upstream, and keeps its upstream for WebSocket and HTTP alike', async () => {
    const first = await exchange(rig.dataPort, upgradeRequest('/sticky/s1/echo', [['x-meshgate-fence', '1']]));
    expect(first.status).toBe(101);
    const setCookie = header(first, 'set-cookie');
    expect(setCookie).toMatch(/^mg_session=[^;]+;.*HttpOnly/i);
    const cookie = setCookie!.split(';')[0]!;
    const { backend, seen } = seenBy('/sticky/s1/echo');
    const fence = headerOf(seen, 'x-meshgate-fence');
    expect(fence).toHaveLength(1);
    expect(fence[0]).not.toBe('1');
    expect(Number(fence[0])).toBeGreaterThan(0);

    for (let i = 0; i < 6; i++) {
      const url = `/sticky/s1-${i}/echo`;
      const extra = [['Cookie', cookie], ['x-meshgate-fence', '1']] as const;
      const res = i % 2 === 0
        ? await exchange(rig.dataPort, upgradeRequest(url, extra))
        : await exchange(rig.dataPort, plainRequest(url, [...extra, ['Connection', 'close']]));
      expect(res.status).toBe(i % 2 === 0 ? 101 : 200);
      expect(header(res, 'x-backend'), `${url} stays on the session's upstream`).toBe(backend.name);
      expect(header(res, 'set-cookie')).toBeUndefined();
      const again = seenBy(url);
      expect(again.backend).toBe(backend);
      expect(headerOf(again.seen, 'x-meshgate-fence')).toEqual(fence);
    }
  });

  it('a session pinned by HTTP first is honoured by its WebSocket (the ws client)', async () => {
    const http = await exchange(rig.dataPort, plainRequest('/sticky/h1/echo', [['Connection', 'close']]));
    const cookie = header(http, 'set-cookie')!.split(';')[0]!;
    const pinned = header(http, 'x-backend');
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/sticky/h1-ws/echo`, { headers: { Cookie: cookie } });
    const backendName = await new Promise<string | undefined>((resolve, reject) => {
      ws.once('upgrade', (res) => resolve(res.headers['x-backend'] as string | undefined));
      ws.once('error', reject);
    });
    ws.close();
    expect(backendName).toBe(pinned);
  });
});

describe('access log on the Upgrade path', () => {
  it('writes one line per upgrade when it ends: 101 with its duration and end, and refusals with their status', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/logged/echo`, { headers: { 'X-Request-Id': 'ws-logged-1' } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send('hi'));
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    // Open tunnels are logged when they end, not before.
    expect(accessLines().some((l) => l.requestId === 'ws-logged-1')).toBe(false);
    ws.close();
    await exchange(rig.dataPort, upgradeRequest('/refuse?status=403', [['X-Request-Id', 'ws-logged-2']]));
    await exchange(rig.dataPort, upgradeRequest('/dead/echo', [['X-Request-Id', 'ws-logged-3']]));
    // Access lines are batched and leave within 1 s.
    await waitFor(() => ['ws-logged-1', 'ws-logged-2', 'ws-logged-3'].every((id) => accessLines().some((l) => l.requestId === id)), 5_000, () => `access lines: ${JSON.stringify(accessLines().slice(-5))}`);
    const byId = (id: string) => accessLines().filter((l) => l.requestId === id);
    const [tunnel] = byId('ws-logged-1');
    expect(byId('ws-logged-1')).toHaveLength(1);
    expect(tunnel).toMatchObject({ method: 'GET', path: '/logged/echo', status: 101, service: 'ws', upstream: 'a' });
    expect(['client-closed', 'upstream-closed']).toContain(tunnel!.reason);
    expect(tunnel!.durationMs).toBeGreaterThan(0);
    expect(byId('ws-logged-2')).toEqual([expect.objectContaining({ status: 403, service: 'ws', upstream: 'a' })]);
    expect(byId('ws-logged-3')).toEqual([expect.objectContaining({ status: 502, service: 'dead', upstream: 'dead-1', reason: 'upstream-connect-failure' })]);
  });
});
