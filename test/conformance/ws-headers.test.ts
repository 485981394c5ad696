/**
 * The Upgrade path applies the HTTP path's header rules (issue 12: "the same way, by the same
 * code"). The same forged and hop-by-hop headers go out over raw sockets, once as a plain GET and
 * once as a WebSocket handshake, through the same route; the backend must receive exactly the same
 * header set, apart from the handshake's own headers. The real `ws` client's forged headers are
 * replaced too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { exchange, plainRequest, upgradeRequest } from './lib/ws-raw.js';
import { startWsRig, type WsRig } from './lib/ws-peer.js';
import type { SeenRequest } from './lib/ws-backend.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: false });
});
afterAll(async () => {
  await rig?.close();
});

/** Headers a client must not be able to set or pass through (forged identity, hop-by-hop, listed). */
const FORGED: Array<readonly [string, string]> = [
  ['X-Forwarded-For', '6.6.6.6'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Host', 'evil.example'],
  ['x-meshgate-fence', '999999'],
  ['X-Request-Id', 'ws-conformance-1'],
  ['Keep-Alive', 'timeout=5'],
  ['Proxy-Connection', 'keep-alive'],
  ['TE', 'trailers'],
  ['Trailer', 'x-trailer'],
  ['Proxy-Authorization', 'Basic c2VjcmV0'],
  ['X-Listed', 'named by Connection, so hop-by-hop'],
  ['X-Custom', 'end-to-end, kept'],
  ['Cookie', 'a=b; c=d'],
  ['User-Agent', 'raw-socket/1'],
];
/** What the WebSocket handshake itself adds on the wire to the upstream. */
const HANDSHAKE = new Set(['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version']);

function pairs(seen: SeenRequest, drop: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    const name = seen.rawHeaders[i]!.toLowerCase();
    if (!drop.has(name)) out.push(`${name}: ${seen.rawHeaders[i + 1]}`);
  }
  return out.sort();
}

function lastSeen(kind: 'http' | 'upgrade', url: string): SeenRequest {
  const found = [...rig.a.seen].reverse().find((s) => s.kind === kind && s.url === url);
  if (!found) throw new Error(`backend saw no ${kind} request for ${url}`);
  return found;
}

describe('forwarded headers on the Upgrade path', () => {
  it('the backend receives the same header set as for a plain HTTP request through the same route', async () => {
    const plain = await exchange(rig.dataPort, plainRequest('/hdr/echo', [...FORGED, ['Connection', 'x-listed']]), { untilHeaders: true });
    expect(plain.status).toBe(200);
    const up = await exchange(rig.dataPort, upgradeRequest('/hdr/echo', FORGED.map(([n, v]) => [n, v] as const).concat([['Connection', 'x-listed']])));
    expect(up.status).toBe(101);

    const http = lastSeen('http', '/hdr/echo');
    const ws = lastSeen('upgrade', '/hdr/echo');
    // undici marks its own hop `connection: keep-alive`; the handshake's hop is `connection: upgrade`.
    expect(pairs(ws, HANDSHAKE)).toEqual(pairs(http, new Set(['connection'])));

    const got = new Map(pairs(ws, new Set()).map((p) => [p.slice(0, p.indexOf(':')), p.slice(p.indexOf(':') + 2)]));
    expect(got.get('x-forwarded-for')).toBe('127.0.0.1');
    expect(got.get('x-forwarded-proto')).toBe('http');
    expect(got.get('x-forwarded-host')).toBe('ws.test');
    expect(got.get('x-request-id')).toBe('ws-conformance-1');
    expect(got.get('x-custom')).toBe('end-to-end, kept');
    expect(got.get('connection')).toBe('upgrade');
    expect(got.get('upgrade')).toBe('websocket');
    for (const gone of ['x-meshgate-fence', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization', 'x-listed']) {
      expect(got.has(gone), `${gone} must not reach the backend`).toBe(false);
    }
    // Each header once: nothing appended to a client's copy.
    expect(ws.rawHeaders.filter((_, i) => i % 2 === 0 && ws.rawHeaders[i]!.toLowerCase() === 'x-forwarded-for')).toHaveLength(1);
  });

  it("the ws client's forged X-Forwarded-For and fence are replaced, not appended", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/hdr2/echo`, {
      headers: { 'X-Forwarded-For': '6.6.6.6', 'x-meshgate-fence': '7', 'X-Forwarded-Host': 'evil.example' },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.close();
    const seen = lastSeen('upgrade', '/hdr2/echo');
    const all = pairs(seen, new Set());
    expect(all.filter((p) => p.startsWith('x-forwarded-for:'))).toEqual(['x-forwarded-for: 127.0.0.1']);
    expect(all.filter((p) => p.startsWith('x-forwarded-host:'))).toEqual([`x-forwarded-host: 127.0.0.1:${rig.dataPort}`]);
    expect(all.some((p) => p.startsWith('x-meshgate-fence:'))).toBe(false);
  });

  it('the 101 the client gets carries the backend headers, x-request-id and the upgrade pair, no hop-by-hop extras', async () => {
    const up = await exchange(rig.dataPort, upgradeRequest('/hdr3/echo', [['X-Request-Id', 'ws-conformance-3']]));
    expect(up.status).toBe(101);
    const names = up.headers.map(([n]) => n.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['sec-websocket-accept', 'x-backend', 'x-request-id', 'connection', 'upgrade']));
    expect(names.filter((n) => n === 'connection')).toHaveLength(1);
    expect(up.headers.find(([n]) => n.toLowerCase() === 'x-request-id')?.[1]).toBe('ws-conformance-3');
    expect(up.headers.find(([n]) => n.toLowerCase() === 'upgrade')?.[1]).toBe('websocket');
  });
});
