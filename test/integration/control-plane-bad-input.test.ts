/**
 * Issue 13 reproductions against a three-peer cluster of real processes: each one now gets its refusal,
 * and afterwards the cluster still elects (leader SIGKILLed), commits (a write lands on every peer),
 * routes (requests reach the backend through every peer) and a restarted peer starts and catches up.
 * Then every admin endpoint is fed bodies that are huge, nested, of the wrong type and of the wrong
 * encoding: each gets a 4xx (never a 500 or a reset) and changes nothing.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort, startPeer, tempDir, waitFor } from '../helpers/meshgate.js';

const run = promisify(execFile);
let backend: Backend;
let cluster: TestCluster;
const IDS = ['gw-1', 'gw-2', 'gw-3'];
const SERVICES = (healthInterval: string) => `
routes:
  - { match: { pathPrefix: / }, service: api }
services:
  api:
    retries: { attempts: 1, on: [connect-failure, reset, 503] }
    healthCheck: { path: /healthz, interval: ${healthInterval}, timeout: 1s }
    upstreams:
      - { id: static, url: ${backend.url} }
`;

beforeAll(async () => {
  backend = await startBackend('cp');
  cluster = new TestCluster(() => SERVICES('2s'));
  await cluster.allocate(IDS);
  await Promise.all(IDS.map((id) => cluster.start(id, IDS)));
  await cluster.leader();
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
  await backend?.close();
});

interface Raw {
  status: number;
  body: string;
}

/** One request with exactly these headers and bytes (Node's client; no defaults beyond Host). */
function raw(id: string, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Raw> {
  const port = cluster.spec(id).adminPort;
  // An explicit length: Node's client sends a DELETE body with neither length nor chunking otherwise.
  const all = body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers };
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: all, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

const AUTH = { authorization: 'Bearer admin-token' };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };

async function everyPeer<T>(f: (id: string) => Promise<T>): Promise<T[]> {
  return Promise.all(IDS.filter((id) => cluster.isLive(id)).map(f));
}

async function upstreamIds(id: string): Promise<string[]> {
  const r = await cluster.admin(id, '/api/v1/services/api/upstreams');
  return ((await r.json()) as { upstreams: Array<{ id: string }> }).upstreams.map((u) => u.id).sort();
}

/** The state a refused request must not move: members, voters and learners on every peer. */
async function fingerprint(): Promise<string> {
  const parts = await everyPeer(async (id) => {
    const st = await cluster.raft(id);
    return JSON.stringify([id, await upstreamIds(id), st?.voters, st?.learners]);
  });
  return parts.join('\n');
}

async function routesThroughEveryPeer(): Promise<void> {
  for (const id of IDS.filter((i) => cluster.isLive(i))) {
    const r = await fetch(`${cluster.procs.get(id)!.url}/id`, { signal: AbortSignal.timeout(5_000) });
    expect(r.status, `routing through ${id}`).toBe(200);
    await r.arrayBuffer();
  }
}

describe('issue 13 reproductions get their refusal; the cluster keeps electing, committing and routing', () => {
  it('refuses the writes that used to stop Raft or freeze routing, with the reason', async () => {
    const before = await fingerprint();
    const refusals: Array<[string, string, unknown, RegExp]> = [
      ['POST', '/api/v1/cluster/peers', { id: 'gw-9', address: '127.0.0.1:99999', role: 'learner' }, /port 99999 is out of range 1–65535/],
      ['POST', '/api/v1/cluster/peers', { id: 'gw-9', address: '127.0.0.1:0', role: 'learner' }, /out of range/],
      ['PUT', '/api/v1/services/api/upstreams/frag', { url: 'http://127.0.0.1:31003/#x' }, /fragment/],
      ['PUT', '/api/v1/services/api/upstreams/pw', { url: 'http://:password@127.0.0.1:31003' }, /credentials/],
      ['PUT', '/api/v1/services/api/upstreams/heavy', { url: backend.url, weight: 10_001 }, /weight must be an integer in 1\.\.10000/],
      ['PUT', '/api/v1/services/api/upstreams/half', { url: backend.url, weight: 1.5 }, /weight must be an integer/],
      ['PUT', '/api/v1/services/api/upstreams/newer', { url: backend.url, tags: ['x'] }, /unknown field/],
    ];
    for (const [method, path, body, reason] of refusals) {
      const r = await raw('gw-2', method, path, JSON_AUTH, JSON.stringify(body));
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
      expect(JSON.parse(r.body).error.message).toMatch(reason);
    }
    expect(await fingerprint()).toBe(before);
    // No password ever reaches status or the dashboard's data.
    const status = await (await cluster.admin('gw-1', '/api/v1/status')).text();
    expect(status).not.toContain('password');
    for (const id of IDS) expect((await cluster.raft(id))?.hasQuorum).toBe(true);
  });

  it('then still commits, routes, elects a new leader after a SIGKILL, and the killed peer restarts and catches up', async () => {
    const put = await cluster.admin('gw-3', '/api/v1/services/api/upstreams/good-1', { method: 'PUT', body: JSON.stringify({ url: backend.url, weight: 10_000 }) });
    expect(put.status).toBe(200);
    await waitFor(async () => (await everyPeer(upstreamIds)).every((l) => l.includes('good-1')), 10_000, () => 'good-1 on every peer');
    await routesThroughEveryPeer();

    const leader = await cluster.leader();
    await cluster.kill(leader);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    const via = IDS.find((id) => cluster.isLive(id))!;
    expect((await cluster.admin(via, '/api/v1/services/api/upstreams/good-2', { method: 'PUT', body: JSON.stringify({ url: backend.url }) })).status).toBe(200);
    await cluster.start(leader, IDS);
    await waitFor(async () => (await upstreamIds(leader)).includes('good-2'), 15_000, () => `${leader} caught up`);
    expect((await cluster.raft(leader))?.role).toBeDefined();
    await routesThroughEveryPeer();
  }, 60_000);

  it('a reload with healthCheck.interval 0ms is refused with file:line:column and the old config keeps serving', async () => {
    const p = cluster.procs.get('gw-1')!;
    const good = cluster.configFor(cluster.spec('gw-1'), IDS);
    for (const bad of ['interval: 0ms', 'interval: 2s, timeout: 0ms']) {
      writeFileSync(p.configFile, good.replace('interval: 2s, timeout: 1s', bad));
      const r = await raw('gw-1', 'POST', '/api/v1/config/reload', AUTH);
      expect(r.status).toBe(400);
      const errors = (JSON.parse(r.body) as { errors: string[] }).errors;
      expect(errors.some((e) => /config\.yaml:\d+:\d+: services\.api\.healthCheck\.(interval|timeout): duration "0ms" is below the minimum of 1ms/.test(e))).toBe(true);
    }
    writeFileSync(p.configFile, good.replace('services:\n  api:\n', 'services:\n  api:\n    outlierDetection: { baseEjectionTime: 0ms }\n'));
    expect((await raw('gw-1', 'POST', '/api/v1/config/reload', AUTH)).status).toBe(400);
    expect(cluster.isLive('gw-1')).toBe(true);
    await routesThroughEveryPeer();
    writeFileSync(p.configFile, good);
    expect((await raw('gw-1', 'POST', '/api/v1/config/reload', AUTH)).status).toBe(200);
  });
});

describe('admin hardening (DESIGN.md §4)', () => {
  it('refuses a foreign Host on reads and writes (DNS rebinding), accepts IP literals and localhost', async () => {
    for (const path of ['/api/v1/status', '/metrics', '/api/v1/events', '/dashboard']) {
      const r = await raw('gw-1', 'GET', path, { host: 'rebind.attacker.example' });
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
    }
    expect((await raw('gw-1', 'GET', '/api/v1/status', { host: `localhost:${cluster.spec('gw-1').adminPort}` })).status).toBe(200);
    expect((await raw('gw-1', 'GET', '/healthz', { host: `127.0.0.1:${cluster.spec('gw-1').adminPort}` })).status).toBe(200);
  });

  it('refuses cross-origin and non-JSON mutations; takes the bearer scheme in any case', async () => {
    const before = await fingerprint();
    const body = JSON.stringify({ url: backend.url });
    const path = '/api/v1/services/api/upstreams/csrf';
    const host = `127.0.0.1:${cluster.spec('gw-1').adminPort}`;
    expect((await raw('gw-1', 'PUT', path, { ...AUTH, 'content-type': 'text/plain' }, body)).status).toBe(415);
    expect((await raw('gw-1', 'PUT', path, { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' }, body)).status).toBe(415);
    expect((await raw('gw-1', 'PUT', path, AUTH, body)).status).toBe(415);
    expect((await raw('gw-1', 'PUT', path, { ...JSON_AUTH, origin: 'http://evil.example' }, body)).status).toBe(403);
    expect((await raw('gw-1', 'PUT', path, { ...JSON_AUTH, origin: 'null' }, body)).status).toBe(403);
    expect((await raw('gw-1', 'PUT', path, { ...JSON_AUTH, 'sec-fetch-site': 'cross-site' }, body)).status).toBe(403);
    expect((await raw('gw-1', 'POST', '/api/v1/config/reload', { ...AUTH, 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect(await fingerprint()).toBe(before);
    // Same origin (the dashboard's own page) and curl both work; the scheme is case-insensitive.
    expect((await raw('gw-1', 'PUT', path, { ...JSON_AUTH, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, body)).status).toBe(200);
    const curl = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', '-H', 'authorization: bearer admin-token', `http://${host}${path}`]);
    expect(curl.stdout).toBe('200');
    expect((await raw('gw-1', 'DELETE', path, { authorization: 'BEARER admin-token' })).status).toBe(404); // authorized; already gone
    expect((await raw('gw-1', 'DELETE', path, { authorization: 'Basic admin-token' })).status).toBe(403);
  });

  it('answers malformed percent-encoding with 400 and a 16 MiB chunked body with a 413 the client sees', async () => {
    for (const path of ['/api/v1/services/%E0%A4%A/upstreams', '/api/v1/services/api/upstreams/%ZZ', '/api/v1/cluster/peers/%']) {
      const method = path.includes('peers') ? 'DELETE' : path.endsWith('upstreams') ? 'GET' : 'PUT';
      const r = await raw('gw-1', method, path, JSON_AUTH, method === 'PUT' ? '{}' : undefined);
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
    }
    const dir = tempDir('mg-big-');
    const file = join(dir, 'big.json');
    writeFileSync(file, Buffer.alloc(16 * 1024 * 1024, 0x20));
    const { stdout } = await run('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', 'PUT', '-H', 'transfer-encoding: chunked', '-H', 'content-type: application/json', '-H', 'authorization: Bearer admin-token', '--data-binary', `@${file}`, `http://127.0.0.1:${cluster.spec('gw-2').adminPort}/api/v1/services/api/upstreams/big`], { maxBuffer: 1 << 20 });
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('413');
    expect(lines.join('')).toContain('MG_ERR_ADMIN_BODY_TOO_LARGE');
  });

  it('every endpoint with a huge, nested, wrongly typed or wrongly encoded body gets a 4xx and changes nothing', async () => {
    const before = await fingerprint();
    const endpoints: Array<[string, string]> = [
      ['PUT', '/api/v1/services/api/upstreams/x1'],
      ['POST', '/api/v1/cluster/peers'],
      ['POST', '/api/v1/cluster/leadership-transfer'],
      ['POST', '/api/v1/config/reload'],
      ['DELETE', '/api/v1/services/api/upstreams/static'],
      ['DELETE', '/api/v1/cluster/peers/gw-3'],
    ];
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const bodies: Array<[string, Buffer, string]> = [
      ['huge', Buffer.from(JSON.stringify({ url: 'x'.repeat(70 * 1024) })), 'application/json'],
      ['nested arrays', Buffer.from(deep(30_000)), 'application/json'],
      ['nested objects', Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)), 'application/json'],
      ['array', Buffer.from('[{"url":"http://127.0.0.1:1"}]'), 'application/json'],
      ['string', Buffer.from('"http://127.0.0.1:1"'), 'application/json'],
      ['number', Buffer.from('42'), 'application/json'],
      ['null', Buffer.from('null'), 'application/json'],
      ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x75, 0x72, 0x6c, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'application/json'],
      ['UTF-16', Buffer.from('\ufeff{"url":"http://127.0.0.1:1"}', 'utf16le'), 'application/json; charset=utf-16'],
      ['not JSON', Buffer.from('url=http://127.0.0.1:1'), 'application/json'],
      ['form', Buffer.from('url=http://127.0.0.1:1'), 'application/x-www-form-urlencoded'],
    ];
    for (const [method, path] of endpoints) {
      for (const [name, body, type] of bodies) {
        const r = await raw('gw-1', method, path, { ...AUTH, 'content-type': type }, body);
        // DELETE takes no body, but one sent with it is read under the same rules.
        expect(r.status, `${method} ${path} with ${name}: ${r.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${path} with ${name}`).toBeLessThan(500);
        expect(JSON.parse(r.body).error.code).toMatch(/^MG_ERR_/);
      }
    }
    expect(await fingerprint()).toBe(before);
    for (const id of IDS.filter((i) => cluster.isLive(i))) expect((await cluster.raft(id))?.hasQuorum).toBe(true);
  }, 60_000);
});

describe('a non-loopback admin listener without a token', () => {
  it('is refused at start and by meshgate check, saying why', async () => {
    const [adminPort, dataPort] = [await freePort(), await freePort()];
    const yaml = `node: { id: solo, listen: 127.0.0.1:${dataPort}, admin: { listen: 0.0.0.0:${adminPort} } }\nservices:\n  web:\n    upstreams: [{ id: a, url: http://127.0.0.1:1 }]\n`;
    const p = await startPeer(yaml, { adminPort, dataPort, waitReady: false });
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    expect(p.output()).toMatch(/config\.yaml:1:\d+: node\.admin\.listen.*not a loopback address and node\.admin\.token is not set/);
    const main = new URL('../../dist/src/main.js', import.meta.url).pathname;
    const check = await run(process.execPath, [main, 'check', p.configFile]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/config\.yaml:1:\d+: node\.admin\.listen/);
  });
});
