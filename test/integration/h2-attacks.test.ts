/**
 * The HTTP/2 attack classes of issue 15 against a real meshgate process (docs/config.md "HTTP/2
 * limits"), each with node's own http2 client or hand-written frames over a real TLS connection: rapid
 * reset (CVE-2023-44487), an oversized and an HPACK-amplified header block, a CONTINUATION flood
 * (CVE-2024-27316 family), window starvation. Each attack ends with the offending stream or connection
 * refused, while another connection is served throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as h2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';
import { createTestCa, type TestCa } from '../helpers/tls-certs.js';

let backend: Backend;
let ca: TestCa;
let peer: PeerProcess;
let tlsPort: number;

beforeAll(async () => {
  backend = await startBackend('b1');
  const dir = tempDir('meshgate-h2-');
  ca = createTestCa(dir);
  const a = ca.issue('a', ['a.test']);
  tlsPort = await freePort();
  const dataPort = await freePort();
  const adminPort = await freePort();
  peer = await startPeer([
    'node:',
    '  id: h2-1',
    `  listen: 127.0.0.1:${dataPort}`,
    `  admin: { listen: 127.0.0.1:${adminPort} }`,
    '  accessLog: false',
    '  bodyIdleTimeout: 1s', // also the stalled-stream bound
    '  tls:',
    `    listen: 127.0.0.1:${tlsPort}`,
    `    certificates: [{ cert: ${a.cert}, key: ${a.key} }]`,
    'routes:',
    '  - { match: { pathPrefix: / }, service: web }',
    'services:',
    '  web:',
    `    upstreams: [{ id: w1, url: ${backend.url} }]`,
    '',
  ].join('\n'), { adminPort, dataPort, dir });
}, 60_000);

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await backend?.close();
});

function client(settings: Record<string, number> = {}): ClientHttp2Session {
  const c = h2Connect(`https://127.0.0.1:${tlsPort}`, { ca: readFileSync(ca.cert), servername: 'a.test', settings });
  c.on('error', () => undefined);
  return c;
}

function get(c: ClientHttp2Session, path: string, headers: Record<string, string | string[]> = {}): Promise<{ status: number; body: string; rstCode: number | undefined }> {
  return new Promise((resolve) => {
    const req = c.request({ ':path': path, ':authority': 'a.test', ...headers });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('error', () => undefined);
    req.on('close', () => resolve({ status, body, rstCode: req.rstCode }));
  });
}

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`${peer.adminUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).join('\n');
}

describe('HTTP/2 limits', () => {
  it('advertises its bounds: 100 concurrent streams, a 16 KiB header list, no push', async () => {
    const c = client();
    await new Promise((r) => c.once('remoteSettings', r));
    expect(c.remoteSettings.maxConcurrentStreams).toBe(100);
    expect(c.remoteSettings.maxHeaderListSize).toBe(16 * 1024);
    expect(c.remoteSettings.enablePush).toBe(false);
    c.close();
  });

  it('rapid reset: a client opening and cancelling streams in a loop has its connection closed at the limit; other connections are served', async () => {
    const bystander = client();
    expect((await get(bystander, '/id')).status).toBe(200);
    expect(await metric('meshgate_downstream_connections_open')).toMatch(/ 1$/);
    const slowBefore = backend.hits;
    const attacker = client();
    let goaway: number | undefined;
    attacker.on('goaway', (code: number) => (goaway = code));
    let sent = 0;
    const tripped = async () => /h2-rapid-reset"\} 1$/.test(await metric('meshgate_local_responses_total{service="",status="0",reason="h2-rapid-reset"}'));
    // Each stream is cancelled right after its HEADERS went out (the next turn of the event loop; a
    // stream cancelled before that never reaches the wire), before the slow upstream answers.
    while (sent < 3000 && !attacker.destroyed && !(await tripped())) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < 50; i++) {
        const req = attacker.request({ ':path': '/slow?ms=5000', ':authority': 'a.test' });
        req.on('error', () => undefined);
        req.resume();
        const cancel = () => setImmediate(() => {
          sent++;
          req.close(constants.NGHTTP2_CANCEL);
        });
        // On a connected session the stream is ready (has its id) as request() returns.
        if (req.pending) req.once('ready', cancel);
        else cancel();
        batch.push(new Promise((r) => req.once('close', () => r())));
      }
      // node's client does not always notice the connection going away under this load: bound the wait.
      await Promise.race([Promise.all(batch), new Promise((r) => setTimeout(r, 2_000))]);
    }
    expect(await tripped()).toBe(true);
    // Cut at the limit (200 per 10 s), give or take the batches in flight.
    expect(sent).toBeGreaterThan(200);
    expect(sent).toBeLessThanOrEqual(400);
    // The server closed the attacker's TCP connection; the bystander's is the one left.
    await waitFor(async () => / 1$/.test(await metric('meshgate_downstream_connections_open')), 5_000, () => 'attacker connection still open');
    if (goaway !== undefined) expect(goaway).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    // The cancelled streams cost no more than the limit's worth of upstream requests.
    expect(backend.hits - slowBefore).toBeLessThanOrEqual(400);
    expect((await get(bystander, '/id')).status).toBe(200);
    const fresh = client();
    expect((await get(fresh, '/id')).status).toBe(200);
    fresh.close();
    bystander.close();
    attacker.destroy();
  }, 60_000);

  it('an oversized header block and an HPACK-amplified one are refused on their stream (431, or the stream reset ENHANCE_YOUR_CALM as HPACK expands it), never proxied; the connection goes on', async () => {
    const c = client();
    const big = await get(c, '/echo', { 'x-big': 'a'.repeat(20_000) });
    expect(big.status).toBe(431);
    // ~3 KB on the wire (the value once, then one-byte references to HPACK's dynamic table), 30 KB decoded.
    const bomb = await get(c, '/echo', { 'x-bomb': Array.from({ length: 10 }, () => 'b'.repeat(3000)) });
    expect(bomb.status).toBe(0);
    expect(bomb.rstCode).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(backend.received.some((r) => r.headers['x-big'] !== undefined || r.headers['x-bomb'] !== undefined)).toBe(false);
    // Under the limit on the same connection: served, the headers reach the upstream.
    const ok = await get(c, '/echo', { 'x-fine': 'f'.repeat(1000) });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).headers['x-fine']).toHaveLength(1000);
    c.close();
  });

  it('more header lines than node.maxHeadersCount → 431 too-many-headers, as on HTTP/1.1', async () => {
    const c = client();
    const headers: Record<string, string> = {};
    for (let i = 0; i < 101; i++) headers[`x-h${i}`] = 'v';
    const r = await get(c, '/echo', headers);
    expect(r.status).toBe(431);
    c.close();
  });

  it('CONTINUATION flood: HEADERS without END_HEADERS followed by CONTINUATION frames closes the connection (GOAWAY)', async () => {
    const bystander = client();
    const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.test', ca: readFileSync(ca.cert), ALPNProtocols: ['h2'] });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('secureConnect', r));
    expect(s.alpnProtocol).toBe('h2');
    const received: Buffer[] = [];
    s.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    s.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS
    // :method GET, :scheme https, :path /, :authority a.test — no END_HEADERS flag.
    s.write(frame(0x1, 0x1 /* END_STREAM */, 1, Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, 6]), Buffer.from('a.test')])));
    let continuations = 0;
    for (; continuations < 1000 && !s.destroyed; continuations++) {
      const name = `x-c${continuations}`;
      s.write(frame(0x9, 0, 1, Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([40]), Buffer.alloc(40, 0x61)])));
      if (continuations % 50 === 49) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
    expect(s.destroyed).toBe(true);
    // The server's GOAWAY (type 7) is among what it sent before closing.
    expect(frameTypes(Buffer.concat(received))).toContain(0x7);
    expect((await get(bystander, '/id')).status).toBe(200);
    bystander.close();
  });

  it('window starvation: a stream whose client never opens its window is reset after the stall timeout; a slow upstream is not a stall', async () => {
    const starved = client({ initialWindowSize: 0 });
    const slowWaiter = client();
    const [stalled, slow] = await Promise.all([
      get(starved, '/download?bytes=200000'),
      get(slowWaiter, '/slow?ms=2500'),
    ]);
    expect(stalled.status).toBe(200);
    expect(stalled.body).toBe('');
    expect(stalled.rstCode).toBe(constants.NGHTTP2_CANCEL);
    expect(slow.status).toBe(200);
    await waitFor(async () => /[1-9]\d*$/.test(await metric('meshgate_local_responses_total{service="",status="0",reason="h2-stream-stalled"}')), 5_000, () => 'stall not counted');
    starved.close();
    slowWaiter.close();
  }, 30_000);
});

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function frameTypes(buf: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 9 <= buf.length;) {
    const len = buf.readUIntBE(i, 3);
    out.push(buf[i + 3]!);
    i += 9 + len;
  }
  return out;
}
