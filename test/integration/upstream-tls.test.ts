/**
 * TLS and mutual TLS to upstreams (issue 15, DESIGN.md §9 `services.<name>.upstreamTls`): a real
 * meshgate process in front of real node:https backends whose certificates come from a private CA
 * made at test time with `openssl` (test/helpers/upstream-certs.ts). Clients: undici, curl, ws.
 *
 * Pinned here:
 * - an https upstream is reached with `ca`, refused (502 `upstream-tls`) with the system store or an
 *   unrelated CA, and refused when `serverName` is not on its certificate; the refused handshake never
 *   reaches the backend's application;
 * - a backend requiring a client certificate is reached with cert/key (it sees our CN) and refused
 *   without; the refusal counts as a connect failure: retried to another upstream under
 *   `retries.on: [connect-failure]`, and ejected by `consecutiveLocalOriginFailures`;
 * - active health checks of an https upstream use the service's TLS settings;
 * - a WebSocket through meshgate to an https upstream (wss to the upstream) echoes;
 * - a CA file that does not parse, a missing file and a cert/key mismatch fail `meshgate check` naming
 *   the file; a reload with such a file is refused and the old config keeps serving; a reload that
 *   changes upstreamTls takes effect on the next request (new pools);
 * - an https upstream registered through the admin API (Raft) is accepted and dialled with its
 *   service's upstreamTls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { startBackend, type Backend } from '../helpers/backend.js';
import { makeUpstreamCerts, startHttpsBackend, type HttpsBackend, type UpstreamCerts } from '../helpers/upstream-certs.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;
const run = promisify(execFile);
/** Hang guard for polled conditions (never a timing assertion). */
const HANG_MS = 15_000;
const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });

let certs: UpstreamCerts;
let plain: HttpsBackend;
let mtls: HttpsBackend;
let probed: HttpsBackend;
/** A plain HTTP backend named by an https:// URL. */
let cleartext: Backend;
let peer: PeerProcess;
let dp: number;
let ap: number;

interface TlsBlock { ca?: string; serverName?: string; cert?: string; key?: string }

function tlsYaml(t: TlsBlock | undefined): string {
  if (t === undefined) return '';
  const fields = Object.entries(t).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ');
  return `    upstreamTls: { ${fields} }\n`;
}

function service(name: string, urls: string[], tls: TlsBlock | undefined, extra = ''): string {
  return `  ${name}:\n${tlsYaml(tls)}${extra}    upstreams:\n${urls.map((u, i) => `      - { id: ${name}-${i + 1}, url: ${u} }`).join('\n')}\n`;
}

/** The peer's config; `trustedTls` is the one block the reload tests rewrite. */
function config(trustedTls: TlsBlock = { ca: certs.ca }): string {
  const names = ['trusted', 'named', 'system', 'wrongca', 'mismatch', 'cleartext', 'mtls', 'nocert', 'retry', 'eject', 'checked', 'checkednoca'];
  return `
node:
  id: gw-utls
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
${names.map((n) => `  - { match: { pathPrefix: /${n} }, service: ${n} }`).join('\n')}
services:
${service('trusted', [plain.url], trustedTls)}${service('named', [plain.url], { ca: certs.ca, serverName: 'api.internal' })}${service('system', [plain.url], undefined)}${service('wrongca', [plain.url], { ca: certs.otherCa })}${service('mismatch', [plain.url], { ca: certs.ca, serverName: 'wrong.internal' })}${service('cleartext', [cleartext.url.replace('http:', 'https:')], { ca: certs.ca })}${service('mtls', [mtls.url], { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey })}${service('nocert', [mtls.url], { ca: certs.ca })}${service('retry', [mtls.url, plain.url], { ca: certs.ca }, '    retries: { attempts: 1, on: [connect-failure] }\n')}${service('eject', [mtls.url], { ca: certs.ca }, '    outlierDetection: { consecutiveLocalOriginFailures: 2, baseEjectionTime: 60s, maxEjectionPercent: 100 }\n')}${service('checked', [probed.url], { ca: certs.ca }, '    healthCheck: { interval: 200ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1 }\n')}${service('checkednoca', [probed.url], undefined, '    healthCheck: { interval: 200ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1 }\n')}`;
}

async function get(path: string): Promise<{ status: number; reason: string | null; body: string }> {
  const r = await fetch(`${peer.url}${path}`);
  return { status: r.status, reason: r.headers.get('x-meshgate-reason'), body: await r.text() };
}

interface UpstreamStatus { id: string; health: string; ejected: boolean; lastCheck?: { ok: boolean; error?: string } }
async function status(): Promise<{ generation: number; lastReload: { ok: boolean; errors?: string[] }; services: Record<string, { upstreams: UpstreamStatus[] }> }> {
  return (await fetch(`${peer.adminUrl}/api/v1/status`)).json() as never;
}

async function check(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, 'check', file], { encoding: 'utf8', timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  certs = makeUpstreamCerts(tempDir('meshgate-upstream-certs-'));
  [plain, mtls, probed] = await Promise.all([
    startHttpsBackend('plain', certs),
    startHttpsBackend('mtls', certs, { requireClientCert: true }),
    startHttpsBackend('probed', certs),
  ]);
  cleartext = await startBackend('cleartext');
  [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(config(), { dataPort: dp, adminPort: ap });
}, 60_000);

afterAll(async () => {
  keepAlive.destroy();
  await peer?.stop('SIGKILL');
  await Promise.all([plain, mtls, probed, cleartext].map((b) => b?.close()));
});

describe('upstreamTls: server verification', () => {
  it('reaches an https upstream whose certificate the configured CA signed (IP SAN, no SNI)', async () => {
    for (let i = 0; i < 3; i++) expect(await get('/trusted/x')).toEqual({ status: 200, reason: null, body: 'plain' });
  });

  it('sends serverName as SNI and verifies the certificate against it', async () => {
    expect(await get('/named/x')).toEqual({ status: 200, reason: null, body: 'plain' });
  });

  it('takes SNI from serverName, never from the client\'s Host, and keeps one pooled connection across Hosts', async () => {
    const before = plain.handshakes.length;
    for (let i = 0; i < 5; i++) {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: dp, path: '/named/host', headers: { host: `client-${i}.example` }, agent: keepAlive }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(r).toEqual({ status: 200, body: 'plain' });
    }
    // A named pool dialled at most once here (an earlier test may have opened it already).
    const fresh = plain.handshakes.slice(before);
    expect(fresh.length).toBeLessThanOrEqual(1);
    expect(plain.handshakes.filter((n) => n.startsWith('client-'))).toEqual([]);
    expect(plain.handshakes).toContain('api.internal');
  });

  it.each([
    ['system', 'the system trust store (upstreamTls omitted)'],
    ['wrongca', 'an unrelated CA'],
    ['mismatch', 'a serverName the certificate does not name'],
    ['cleartext', 'plain HTTP behind an https:// URL'],
  ])('refuses the upstream with 502 upstream-tls under %s (%s), and nothing reaches it', async (svc) => {
    const before = plain.hits + cleartext.hits;
    const r = await get(`/${svc}/x`);
    expect(r.status).toBe(502);
    expect(r.reason).toBe('upstream-tls');
    expect(r.body).toBe('502 upstream TLS handshake failed\n');
    expect(plain.hits + cleartext.hits).toBe(before);
  });

  it('curl through meshgate gets the https upstream, and the refusal with its reason', async () => {
    const ok = await run('curl', ['--silent', '--show-error', `${peer.url}/trusted/curl`], { encoding: 'utf8' });
    expect(ok.stdout).toBe('plain');
    const refused = await run('curl', ['--silent', '--show-error', '-D', '-', '-o', '/dev/null', `${peer.url}/system/curl`], { encoding: 'utf8' });
    expect(refused.stdout).toMatch(/^HTTP\/1\.1 502 /);
    expect(refused.stdout.toLowerCase()).toContain('x-meshgate-reason: upstream-tls');
  });
});

describe('upstreamTls: mutual TLS', () => {
  it('reaches a backend that requires a client certificate with cert/key, presenting our certificate', async () => {
    expect(await get('/mtls/x')).toEqual({ status: 200, reason: null, body: 'mtls' });
    expect(mtls.lastClientCn).toBe('meshgate-client');
  });

  it('is refused (502 upstream-tls) without a client certificate, and nothing reaches the application', async () => {
    const before = mtls.hits;
    const r = await get('/nocert/x');
    expect(r.status).toBe(502);
    expect(r.reason).toBe('upstream-tls');
    expect(mtls.hits).toBe(before);
  });

  it('counts a refused handshake as a connect failure: retried elsewhere under retries.on connect-failure', async () => {
    // retry: [mtls (refuses us: no client cert), plain], round-robin: every request ends on plain.
    for (let i = 0; i < 4; i++) expect(await get('/retry/x')).toEqual({ status: 200, reason: null, body: 'plain' });
    const metrics = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/meshgate_upstream_connect_errors_total\{service="retry",upstream="retry-1",cause="connect-failure"\} [1-9]/);
  });

  it('counts it as a local-origin failure for outlier detection (consecutiveLocalOriginFailures ejects)', async () => {
    for (let i = 0; i < 2; i++) expect((await get('/eject/x')).reason).toBe('upstream-tls');
    await waitFor(async () => (await status()).services.eject!.upstreams[0]!.ejected, HANG_MS, () => 'eject-1 never ejected');
  });
});

describe('upstreamTls: active health checks', () => {
  it('probes an https upstream with the service TLS settings: healthy with the CA, unhealthy without', async () => {
    const health = async (svc: string) => (await status()).services[svc]!.upstreams[0]!;
    await waitFor(async () => (await health('checked')).health === 'healthy', HANG_MS, () => 'checked never healthy');
    await waitFor(async () => (await health('checkednoca')).health === 'unhealthy', HANG_MS, () => 'checkednoca never unhealthy');
    expect((await health('checkednoca')).lastCheck?.error).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
    probed.setHealth(503);
    await waitFor(async () => (await health('checked')).health === 'unhealthy', HANG_MS, () => 'checked never unhealthy on 503');
    probed.setHealth(200);
    await waitFor(async () => (await health('checked')).health === 'healthy', HANG_MS, () => 'checked never healthy again');
  });
});

describe('upstreamTls: WebSocket (wss to the upstream)', () => {
  it.each([['trusted', 'plain'], ['mtls', 'mtls']])('echoes through meshgate to an https upstream (%s)', async (svc, backend) => {
    const ws = new WebSocket(`ws://127.0.0.1:${dp}/${svc}/ws`);
    try {
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const echo = await new Promise<string>((resolve) => {
        ws.once('message', (m) => resolve(m.toString()));
        ws.send('hello');
      });
      expect(echo).toBe(`${backend}:hello`);
    } finally {
      ws.close();
    }
  });

  it.each(['system', 'nocert'])('answers an Upgrade to an upstream whose handshake fails (%s) with 502 upstream-tls', async (svc) => {
    const ws = new WebSocket(`ws://127.0.0.1:${dp}/${svc}/ws`);
    const res = await new Promise<{ status: number; reason: unknown }>((resolve, reject) => {
      ws.once('unexpected-response', (_req, r) => resolve({ status: r.statusCode ?? 0, reason: r.headers['x-meshgate-reason'] }));
      ws.once('open', () => reject(new Error('upgrade succeeded')));
      ws.once('error', () => undefined);
    });
    ws.terminate();
    expect(res).toEqual({ status: 502, reason: 'upstream-tls' });
  });
});

describe('upstreamTls: files are config', () => {
  it.each([
    ['a CA file that does not parse', () => ({ ca: certs.garbage }), () => certs.garbage, /no PEM certificate/],
    ['a missing CA file', () => ({ ca: join(certs.dir, 'missing.pem') }), () => join(certs.dir, 'missing.pem'), /cannot read/],
    ['a key that does not match the certificate', () => ({ ca: certs.ca, cert: certs.clientCert, key: certs.serverKey }), () => certs.serverKey, /does not match the certificate/],
  ])('meshgate check refuses %s, naming the file and the line', async (_what, tls, named, message) => {
    const file = join(tempDir(), 'config.yaml');
    writeFileSync(file, config(tls()));
    const r = await check(file);
    expect(r.code).toBe(1);
    const line = r.stderr.trim().split('\n')[0]!;
    expect(line).toContain(named());
    expect(line).toMatch(message);
    expect(line).toMatch(/config\.yaml:\d+:\d+: services\.trusted\.upstreamTls\.(ca|key): /);
  });

  it('meshgate check accepts the good files', async () => {
    const file = join(tempDir(), 'config.yaml');
    writeFileSync(file, config());
    const r = await check(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a reload with a CA file that does not parse is refused, naming it, and the old config keeps serving', async () => {
    const gen = (await status()).generation;
    writeFileSync(peer.configFile, config({ ca: certs.garbage }));
    await waitFor(async () => (await status()).lastReload.ok === false, HANG_MS, () => 'the bad reload was never reported');
    const s = await status();
    expect(s.generation).toBe(gen);
    expect(s.lastReload.errors?.join('\n')).toContain(certs.garbage);
    expect(await get('/trusted/x')).toEqual({ status: 200, reason: null, body: 'plain' });
  });

  it('a reload that changes upstreamTls dials with the new settings from the next request on', async () => {
    // Warm a keep-alive connection under the good CA, then distrust it: the old pool must not be reused.
    expect((await get('/trusted/x')).status).toBe(200);
    let gen = (await status()).generation;
    writeFileSync(peer.configFile, config({ ca: certs.otherCa }));
    await waitFor(async () => (await status()).generation > gen, HANG_MS, () => 'reload to other-ca never applied');
    expect(await get('/trusted/x')).toMatchObject({ status: 502, reason: 'upstream-tls' });
    gen = (await status()).generation;
    writeFileSync(peer.configFile, config());
    await waitFor(async () => (await status()).generation > gen, HANG_MS, () => 'reload back to the CA never applied');
    expect(await get('/trusted/x')).toEqual({ status: 200, reason: null, body: 'plain' });
  });
});

describe('upstreamTls: an https upstream registered through the admin API (Raft membership)', () => {
  let solo: PeerProcess | undefined;
  afterAll(async () => {
    await solo?.stop('SIGKILL');
  });

  it('is accepted, replicated and dialled with its service upstreamTls (mutual TLS)', async () => {
    const [sdp, sap, raft] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir();
    solo = await startPeer(`
node:
  id: solo
  listen: 127.0.0.1:${sdp}
  admin: { listen: 127.0.0.1:${sap} }
  accessLog: false
cluster:
  listen: 127.0.0.1:${raft}
  dataDir: ${join(dir, 'data')}
  secret: upstream-tls-test-secret
  bootstrap: [{ id: solo, address: 127.0.0.1:${raft} }]
routes:
  - { match: { pathPrefix: / }, service: api }
services:
  api:
    upstreamTls: { ca: ${JSON.stringify(certs.ca)}, cert: ${JSON.stringify(certs.clientCert)}, key: ${JSON.stringify(certs.clientKey)} }
    upstreams: []
`, { dir, dataPort: sdp, adminPort: sap });
    const put = async () => fetch(`${solo!.adminUrl}/api/v1/services/api/upstreams/r1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: mtls.url }) });
    // The first write waits for the single voter to elect itself (503 no quorum until then).
    await waitFor(async () => (await put()).ok, HANG_MS, () => 'PUT of the https upstream never accepted');
    await waitFor(async () => (await fetch(`${solo!.url}/x`)).status === 200, HANG_MS, () => 'registered https upstream never served');
    const r = await fetch(`${solo.url}/x`);
    expect(await r.text()).toBe('mtls');
    expect(mtls.lastClientCn).toBe('meshgate-client');
  });
});
