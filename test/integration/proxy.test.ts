/**
 * The data path against real backends and a real meshgate process (issue 2's "must show").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { deadPort, pattern, startBackend, startGarbageBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';

let a: Backend, b: Backend, c: Backend, slow: Backend;
let garbage: Awaited<ReturnType<typeof startGarbageBackend>>;
let peer: PeerProcess;
let dead: number;

function config(dataPort: number, adminPort: number): string {
  return `
node:
  id: gw-test
  listen: 127.0.0.1:${dataPort}
  admin: { listen: 127.0.0.1:${adminPort} }
  accessLog: false
  maxHeaderSize: 8KiB
  maxBodySize: 16MiB
  drainTimeout: 10s
routes:
  - { match: { pathPrefix: /dead }, service: dead }
  - { match: { pathPrefix: /garbage }, service: garbage }
  - { match: { pathPrefix: /none }, service: none }
  - { match: { pathPrefix: /timeout }, service: slow }
  - { match: { pathPrefix: /retry }, service: retry }
  - { match: { host: other.example }, service: slow }
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    balancer: round-robin
    upstreams:
      - { id: a, url: ${a.url} }
      - { id: b, url: ${b.url} }
      - { id: c, url: ${c.url} }
  retry:
    balancer: round-robin
    retries: { attempts: 2, on: [connect-failure], budgetPercent: 100 }
    upstreams:
      - { id: dead-1, url: http://127.0.0.1:${dead} }
      - { id: a, url: ${a.url} }
  dead:
    retries: { attempts: 0 }
    upstreams: [{ id: dead-1, url: http://127.0.0.1:${dead} }]
  garbage:
    retries: { attempts: 0 }
    upstreams: [{ id: g, url: ${garbage.url} }]
  none:
    upstreams: [{ id: off, url: ${a.url}, state: disabled }]
  slow:
    timeouts: { response: 300ms }
    upstreams: [{ id: s, url: ${slow.url} }]
`;
}

beforeAll(async () => {
  [a, b, c, slow] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c'), startBackend('slow')]);
  garbage = await startGarbageBackend();
  dead = await deadPort();
  const [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(config(dp, ap), { dataPort: dp, adminPort: ap });
});

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await Promise.all([a, b, c, slow].map((x) => x?.close()));
  await garbage?.close();
});

describe('proxy core', () => {
  it('spreads requests across the upstreams of a service', async () => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`${peer.url}/id`);
      expect(r.status).toBe(200);
      const name = await r.text();
      seen[name] = (seen[name] ?? 0) + 1;
    }
    expect(seen).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('sets X-Forwarded-* and keeps a client request id, generates one otherwise', async () => {
    const r = await fetch(`${peer.url}/echo`, { headers: { 'x-request-id': 'req-123', 'x-forwarded-for': '6.6.6.6', 'x-meshgate-fence': '999' } });
    const body = (await r.json()) as { headers: Record<string, string> };
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).toBe('http');
    expect(body.headers['x-forwarded-host']).toBe(new URL(peer.url).host);
    expect(body.headers['x-request-id']).toBe('req-123');
    expect(body.headers['x-meshgate-fence']).toBeUndefined();
    expect(r.headers.get('x-request-id')).toBe('req-123');
    const r2 = await fetch(`${peer.url}/echo`);
    const b2 = (await r2.json()) as { headers: Record<string, string> };
    expect(b2.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('streams a 5 MiB body both ways intact, with bounded proxy memory', async () => {
    const size = 5 * 1024 * 1024;
    const body = pattern(size);
    const want = createHash('sha256').update(body).digest('hex');
    const rssBefore = await peerRss();
    const rounds = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const up = await fetch(`${peer.url}/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
        const upJson = (await up.json()) as { bytes: number; sha256: string };
        const down = await fetch(`${peer.url}/download?bytes=${size}`);
        const got = createHash('sha256').update(Buffer.from(await down.arrayBuffer())).digest('hex');
        return { up: upJson, down: got };
      }),
    );
    for (const r of rounds) {
      expect(r.up).toEqual({ bytes: size, sha256: want });
      expect(r.down).toBe(want);
    }
    // 6 × 5 MiB each way = 60 MiB moved; buffering whole bodies would grow RSS by tens of MiB.
    const growth = (await peerRss()) - rssBefore;
    expect(growth).toBeLessThan(40 * 1024 * 1024);
  });

  it('proxies a WebSocket and echoes messages', async () => {
    const ws = new WebSocket(`${peer.url.replace('http', 'ws')}/chat`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hello'));
      ws.once('message', (m) => resolve(m.toString()));
      ws.once('error', reject);
    });
    expect(reply).toMatch(/^[abc]:hello$/);
    ws.close();
  });

  it('answers 502 when the upstream refuses connections', async () => {
    const r = await fetch(`${peer.url}/dead`);
    expect(r.status).toBe(502);
    expect(r.headers.get('x-meshgate-reason')).toBe('upstream-connect-failure');
  });

  it('answers 503 when no upstream is eligible', async () => {
    const hitsBefore = a.hits;
    const r = await fetch(`${peer.url}/none`);
    expect(r.status).toBe(503);
    expect(await r.text()).toContain('no healthy upstream');
    expect(a.hits).toBe(hitsBefore);
  });

  it('answers 504 when the upstream does not answer within the response timeout', async () => {
    const r = await fetch(`${peer.url}/timeout/slow?ms=3000`);
    expect(r.status).toBe(504);
    expect(r.headers.get('x-meshgate-reason')).toBe('upstream-timeout');
  });

  it('answers 502, not a crash, when the upstream sends a malformed response', async () => {
    const r = await fetch(`${peer.url}/garbage`);
    expect(r.status).toBe(502);
    expect(garbage.hits).toBeGreaterThan(0);
    const again = await fetch(`${peer.url}/id`);
    expect(again.status).toBe(200);
  });

  it('retries an idempotent request on another upstream after a connect failure', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${peer.url}/retry/id`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('a');
    }
  });

  it('refuses a request with both Content-Length and Transfer-Encoding without reaching a backend', async () => {
    const before = a.hits + b.hits + c.hits;
    const res = await raw(
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /id HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(a.hits + b.hits + c.hits).toBe(before);
  });

  it('refuses an oversized header with 431 without reaching a backend', async () => {
    const before = a.hits + b.hits + c.hits;
    const res = await raw(`GET /id HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(16 * 1024)}\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 431 /);
    expect(a.hits + b.hits + c.hits).toBe(before);
  });

  it('refuses a declared body over maxBodySize with 413 without reaching a backend', async () => {
    const before = a.hits + b.hits + c.hits;
    const res = await raw('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 413 /);
    expect(a.hits + b.hits + c.hits).toBe(before);
  });

  it('gives a Connection: close client no keep-alive header and closes the connection', async () => {
    const res = await raw('GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const head = res.slice(0, res.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toMatch(/^http\/1\.1 200 /);
    expect(head).toContain('connection: close');
    // The backend sent `Keep-Alive: timeout=5`; it is hop-by-hop and must not reach this client.
    expect(head).not.toContain('keep-alive');
    expect(head).toContain('x-custom: kept');
  });

  it('cancels the upstream request when the client aborts', async () => {
    const before = slow.aborted;
    const req = httpRequest(`${peer.url}/slow?ms=20000`, { headers: { host: 'other.example' } });
    req.on('error', () => undefined);
    req.end();
    // Wait until the request reached the backend, then abort the client side.
    await waitFor(() => slow.received.some((r) => r.url === '/slow?ms=20000'), 5000);
    req.destroy();
    await waitFor(() => slow.aborted > before, 5000, () => 'backend never saw the abort');
  });

  it('meshgate check reports file:line:column and exits 1', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'node:\n  id: x\n  listen: 127.0.0.1:1\n  nope: true\n');
    const r = spawnSync(process.execPath, [new URL('../../dist/src/main.js', import.meta.url).pathname, 'check', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file}:4:3: unknown key "nope" in node`);
  });
});

describe('shutdown', () => {
  it('drains in-flight requests on SIGTERM and exits 0', async () => {
    const [dp, ap] = [await freePort(), await freePort()];
    const p = await startPeer(config(dp, ap), { dataPort: dp, adminPort: ap });
    const inFlight = fetch(`${p.url}/x`, { headers: { host: 'other.example' } }).catch((e: unknown) => e);
    // Slow backend answers after 1 s by default for /slow only; use the slow service with a long response.
    const slowReq = fetch(`${p.url}/timeout/slow?ms=250`).then((r) => r.status);
    await waitFor(() => slow.received.some((r) => r.url === '/timeout/slow?ms=250'), 5000);
    p.proc.kill('SIGTERM');
    expect(await slowReq).toBe(200);
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    await inFlight;
    await expect(fetch(`${p.url}/id`)).rejects.toThrow();
  });
});

async function peerRss(): Promise<number> {
  const text = await (await fetch(`${peer.adminUrl}/metrics`)).text();
  const m = /^process_resident_memory_bytes (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
}

function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(peer.url).port);
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => {
      s.destroy();
      resolve(out);
    });
  });
}
