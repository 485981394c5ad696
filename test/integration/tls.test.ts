/**
 * The HTTPS listener (DESIGN.md §9) through real clients — curl (HTTP/2 and HTTP/1.1), node's http2 and
 * https clients, `openssl s_client`, the `ws` client — with certificates made at test time by the
 * `openssl` CLI (test/helpers/tls-certs.ts): SNI by each certificate's own names, TLS 1.1 refused,
 * X-Forwarded-Proto and Secure cookies, wss, the plain port's refusals (an h2 preface, h2c), a truncated
 * handshake, and certificates rotated and refused through reloads and file changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { request as httpsRequest, Agent } from 'node:https';
import { connect as h2Connect } from 'node:http2';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';
import { createTestCa, type CertFiles, type TestCa } from '../helpers/tls-certs.js';
import { curl } from '../conformance/lib/http-clients.js';

let backend: Backend;
let ca: TestCa;
let dir: string;
let peer: PeerProcess;
let tlsPort: number;
let dataPort: number;
/** The live pair files the config names for a.test (rotated in place by the tests). */
let live: CertFiles;
/** A WebSocket echo upstream that records the headers of each handshake it accepts. */
let wsServer: WebSocketServer;
let wsPort: number;
const wsSeen: Array<Record<string, string | string[] | undefined>> = [];

function configYaml(adminPort: number, extra: { redirect?: boolean } = {}): string {
  return [
    'node:',
    '  id: tls-1',
    `  listen: 127.0.0.1:${dataPort}`,
    `  admin: { listen: 127.0.0.1:${adminPort} }`,
    '  accessLog: false',
    '  tls:',
    `    listen: 127.0.0.1:${tlsPort}`,
    '    certificates:',
    `      - { cert: ${live.cert}, key: ${live.key} }`,
    `      - { cert: ${join(dir, 'b.crt')}, key: ${join(dir, 'b.key')} }`,
    `    redirectHttp: ${extra.redirect === true}`,
    'routes:',
    '  - { match: { pathPrefix: /sticky }, service: sticky }',
    '  - { match: { pathPrefix: /wsrec }, service: wsrec }',
    '  - { match: { pathPrefix: / }, service: web }',
    'services:',
    '  web:',
    `    upstreams: [{ id: w1, url: ${backend.url} }]`,
    '  wsrec:',
    `    upstreams: [{ id: r1, url: http://127.0.0.1:${wsPort} }]`,
    '  sticky:',
    '    sticky: { cookie: mg_s }',
    `    upstreams: [{ id: s1, url: ${backend.url} }]`,
    '',
  ].join('\n');
}

/** The certificate a handshake for `servername` gets (and the protocol it negotiated). */
function peerCertificate(servername: string | undefined, opts: { maxVersion?: 'TLSv1.1' } = {}): Promise<{ cert: PeerCertificate; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, ...(servername ? { servername } : {}), rejectUnauthorized: false, ...(opts.maxVersion ? { maxVersion: opts.maxVersion, minVersion: 'TLSv1' } : {}) }, () => {
      const r = { cert: s.getPeerCertificate(), protocol: s.getProtocol() };
      s.end();
      resolve(r);
    });
    s.once('error', reject);
  });
}

function serialOf(files: CertFiles): string {
  const text = readFileSync(files.cert, 'utf8');
  return new X509Certificate(text).serialNumber;
}

/** GET over HTTPS/1.1 through `agent`, resolving status and body. */
function httpsGet(path: string, agent: Agent | false, host = 'a.test'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: tlsPort, path, servername: host, headers: { host }, ca: readFileSync(ca.cert), agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once('error', reject);
    req.end();
  });
}

async function reload(): Promise<{ ok: boolean; errors?: string[] }> {
  const r = await fetch(`${peer.adminUrl}/api/v1/config/reload`, { method: 'POST' });
  return (await r.json()) as { ok: boolean; errors?: string[] };
}

/** Replaces a file the way a renewal does: a new file renamed over the old (one inode swap). */
function replaceFile(target: string, source: string): void {
  copyFileSync(source, `${target}.new`);
  renameSync(`${target}.new`, target);
}

beforeAll(async () => {
  backend = await startBackend('b1');
  wsPort = await freePort();
  wsServer = new WebSocketServer({ host: '127.0.0.1', port: wsPort });
  wsServer.on('connection', (ws, req) => {
    wsSeen.push(req.headers);
    ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
  });
  dir = tempDir('meshgate-tls-');
  ca = createTestCa(dir);
  const a = ca.issue('a', ['a.test', '*.wild.test']);
  ca.issue('b', ['b.test']);
  live = { cert: join(dir, 'live-a.crt'), key: join(dir, 'live-a.key') };
  copyFileSync(a.cert, live.cert);
  copyFileSync(a.key, live.key);
  tlsPort = await freePort();
  dataPort = await freePort();
  const adminPort = await freePort();
  peer = await startPeer(configYaml(adminPort), { adminPort, dataPort, dir });
}, 60_000);

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await backend?.close();
  for (const c of wsServer?.clients ?? []) c.terminate();
  await new Promise((r) => wsServer?.close(r));
});

const CURL_TLS = () => ['--cacert', ca.cert, '--resolve', `a.test:${tlsPort}:127.0.0.1`, '--resolve', `b.test:${tlsPort}:127.0.0.1`, '--resolve', `x.wild.test:${tlsPort}:127.0.0.1`];

describe('HTTPS listener', () => {
  it('curl --http2 and --http1.1 are served, verified against the test CA, with X-Forwarded-Proto: https', async () => {
    for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
      const r = await curl([...CURL_TLS(), flag, '-w', '\\n%{http_code} %{http_version}', `https://a.test:${tlsPort}/echo`]);
      expect(r.code, r.stderr).toBe(0);
      const [body, status] = r.stdout.split('\n');
      expect(status).toBe(`200 ${version}`);
      const seen = JSON.parse(body!) as { headers: Record<string, string> };
      expect(seen.headers['x-forwarded-proto']).toBe('https');
      expect(seen.headers.host).toBe(`a.test:${tlsPort}`);
      expect(seen.headers['x-forwarded-host']).toBe(`a.test:${tlsPort}`);
      // No pseudo-header leaks to the HTTP/1.1 upstream.
      expect(Object.keys(seen.headers).filter((k) => k.startsWith(':'))).toEqual([]);
    }
    const plain = await curl(['-w', '\\n%{http_code}', `http://127.0.0.1:${dataPort}/echo`]);
    expect(JSON.parse(plain.stdout.split('\n')[0]!).headers['x-forwarded-proto']).toBe('http');
  });

  it("node's http2 client: same answer as HTTP/1.1, :authority as Host, split cookies joined", async () => {
    const client = h2Connect(`https://a.test:${tlsPort}`, { ca: readFileSync(ca.cert), host: '127.0.0.1', servername: 'a.test' } as never);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = client.request({ ':path': '/echo?x=1', ':method': 'GET', cookie: ['a=1', 'b=2'] });
        let body = '';
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
      });
      expect(answer.status).toBe(200);
      const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
      expect(seen.url).toBe('/echo?x=1');
      expect(seen.headers.host).toBe(`a.test:${tlsPort}`);
      expect(seen.headers.cookie).toBe('a=1; b=2');
      expect(seen.headers['x-forwarded-proto']).toBe('https');
    } finally {
      client.close();
    }
  });

  it('an h2 POST body of unknown length (no content-length) reaches the upstream whole', async () => {
    const client = h2Connect(`https://127.0.0.1:${tlsPort}`, { ca: readFileSync(ca.cert), servername: 'a.test' });
    try {
      const body = Buffer.alloc(200_000, 7);
      const answer = await new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': '/upload', ':method': 'POST', ':authority': 'a.test' });
        let out = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (out += c));
        req.on('end', () => resolve(out));
        req.on('error', reject);
        req.write(body.subarray(0, 50_000));
        setTimeout(() => req.end(body.subarray(50_000)), 20);
      });
      expect(answer).toContain(createHash('sha256').update(body).digest('hex'));
    } finally {
      client.close();
    }
  });

  it('the request metrics count each protocol and scheme', async () => {
    const text = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    for (const series of ['{protocol="h2",scheme="https"}', '{protocol="http1",scheme="https"}', '{protocol="http1",scheme="http"}']) {
      expect(text).toMatch(new RegExp(`^meshgate_requests_by_protocol_total${series.replace(/[{}]/g, '\\$&')} [1-9]`, 'm'));
    }
  });

  it('SNI picks the certificate by its own names; a wildcard covers one label; unknown or no SNI gets the first', async () => {
    expect((await peerCertificate('a.test')).cert.subject.CN).toBe('a.test');
    expect((await peerCertificate('b.test')).cert.subject.CN).toBe('b.test');
    expect((await peerCertificate('x.wild.test')).cert.subject.CN).toBe('a.test');
    expect((await peerCertificate('unknown.test')).cert.subject.CN).toBe('a.test');
    expect((await peerCertificate(undefined)).cert.subject.CN).toBe('a.test');
    // openssl s_client as the other client, verifying b.test's chain.
    const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', 'b.test', '-CAfile', ca.cert, '-verify_hostname', 'b.test'], '');
    expect(s.stdout).toMatch(/subject=CN ?= ?b\.test/);
    expect(s.stdout).toContain('Verify return code: 0 (ok)');
  });

  it('TLS 1.1 is refused (openssl s_client -tls1_1, node maxVersion TLSv1.1) and others keep being served', async () => {
    const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-tls1_1', '-servername', 'a.test'], '');
    expect(s.stdout + s.stderr).toMatch(/alert protocol version|no protocols available|unsupported protocol/i);
    await expect(peerCertificate('a.test', { maxVersion: 'TLSv1.1' })).rejects.toThrow();
    const ok = await peerCertificate('a.test');
    expect(ok.protocol).toMatch(/^TLSv1\.[23]$/);
  });

  it('sessions resume (tickets), so a returning client skips the full handshake', async () => {
    const session = await new Promise<Buffer>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.test', ca: readFileSync(ca.cert) });
      s.once('session', (sess: Buffer) => {
        resolve(sess);
        s.end();
      });
      s.once('error', reject);
    });
    const reused = await new Promise<boolean>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.test', ca: readFileSync(ca.cert), session }, () => {
        resolve(s.isSessionReused());
        s.end();
      });
      s.once('error', reject);
    });
    expect(reused).toBe(true);
  });

  it('sticky cookies get Secure on the TLS listener only', async () => {
    const tls = await httpsGet('/sticky/id', false);
    expect(String(tls.headers['set-cookie'])).toMatch(/mg_s=.*; Secure/);
    const plain = await fetch(`http://127.0.0.1:${dataPort}/sticky/id`);
    expect(plain.headers.get('set-cookie')).toMatch(/mg_s=/);
    expect(plain.headers.get('set-cookie')).not.toMatch(/Secure/);
  });

  it('wss: a WebSocket through the TLS listener is echoed, with X-Forwarded-Proto: https upstream', async () => {
    const agent = new Agent({ ca: readFileSync(ca.cert), servername: 'a.test' });
    const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}/wsrec/chat`, { agent, headers: { host: 'a.test' } });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hello'));
      ws.once('message', (m) => resolve(m.toString()));
      ws.once('error', reject);
    });
    ws.close();
    agent.destroy();
    expect(reply).toBe('echo:hello');
    expect(wsSeen.at(-1)?.['x-forwarded-proto']).toBe('https');
    expect(wsSeen.at(-1)?.host).toBe('a.test');
  });

  it('the plain port refuses an h2 preface cleanly (400) and does not honour an h2c upgrade', async () => {
    const answer = await rawExchange(dataPort, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const h2c = await curl(['--http2', '-i', `http://127.0.0.1:${dataPort}/echo`]);
    expect(h2c.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(h2c.stdout).not.toMatch(/101 Switching/);
    const seen = JSON.parse(h2c.stdout.slice(h2c.stdout.indexOf('{'))) as { headers: Record<string, string> };
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
  });

  it('a truncated handshake costs only its own socket', async () => {
    // Half a ClientHello (a TLS record header announcing 512 bytes, then 10 of them), left open.
    const stuck = netConnect(tlsPort, '127.0.0.1');
    stuck.on('error', () => undefined);
    stuck.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0]));
    try {
      for (let i = 0; i < 5; i++) expect((await httpsGet('/id', false)).status).toBe(200);
    } finally {
      stuck.destroy();
    }
  });
});

describe('certificate reload', () => {
  it('a pair that does not load is refused naming the file, and the old pair keeps serving', async () => {
    const before = (await peerCertificate('a.test')).cert.serialNumber;
    const saved = { cert: readFileSync(live.cert), key: readFileSync(live.key) };
    try {
      // A key that is not the certificate's (b's key), then garbage, then an empty file.
      for (const [file, content, expected] of [
        [live.key, readFileSync(join(dir, 'b.key')), /is not the private key of/],
        [live.cert, Buffer.from('not a certificate\n'), /does not hold a PEM certificate/],
        [live.cert, Buffer.alloc(0), /is empty/],
      ] as const) {
        writeFileSync(file, content);
        const r = await reload();
        expect(r.ok).toBe(false);
        expect(r.errors?.join('\n')).toMatch(expected);
        expect(r.errors?.join('\n')).toContain(file);
        expect(r.errors?.[0]).toMatch(/config\.yaml:\d+:\d+: node\.tls\.certificates\.0\.(cert|key)/);
        expect((await peerCertificate('a.test')).cert.serialNumber).toBe(before);
        expect((await httpsGet('/id', false)).status).toBe(200);
        writeFileSync(live.cert, saved.cert);
        writeFileSync(live.key, saved.key);
      }
      // meshgate check loads the files too.
      writeFileSync(live.key, readFileSync(join(dir, 'b.key')));
      const check = await run(process.execPath, [new URL('../../dist/src/main.js', import.meta.url).pathname, 'check', peer.configFile], '');
      expect(check.code).toBe(1);
      expect(check.stderr).toMatch(/node\.tls\.certificates\.0\.key: .*is not the private key of/);
    } finally {
      writeFileSync(live.cert, saved.cert);
      writeFileSync(live.key, saved.key);
    }
    expect((await reload()).ok).toBe(true);
  });

  it('a certificate rotated under load (files replaced): zero failed requests, an open keep-alive connection keeps working, new handshakes get the new pair', async () => {
    const oldSerial = (await peerCertificate('a.test')).cert.serialNumber;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await httpsGet('/id', keepAlive)).status).toBe(200);
    const next = ca.issue('a-next', ['a.test', '*.wild.test']);
    let failures = 0;
    let done = 0;
    let stop = false;
    const load = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop) {
        // New connections each time: every request is a handshake across the rotation.
        const r = await httpsGet('/id', false).catch(() => undefined);
        if (r?.status === 200) done++;
        else failures++;
      }
    }));
    try {
      await waitFor(() => done >= 20, 20_000, () => `load did not start (${done} done, ${failures} failed)`);
      // A renewal writes the certificate, then the key: in between the pair does not match (refused).
      replaceFile(live.cert, next.cert);
      replaceFile(live.key, next.key);
      await waitFor(async () => (await peerCertificate('a.test')).cert.serialNumber !== oldSerial, 20_000, () => 'the new certificate was not picked up');
      const seen = done;
      await waitFor(() => done >= seen + 20, 20_000, () => 'load stopped after the rotation');
    } finally {
      stop = true;
      await load;
    }
    expect(failures).toBe(0);
    expect((await peerCertificate('a.test')).cert.serialNumber.toLowerCase()).toBe(serialOf(next).toLowerCase());
    // The keep-alive connection made before the rotation is still the one in use, and still serves.
    const sockets = Object.values(keepAlive.freeSockets).flat();
    expect(sockets.length).toBe(1);
    const oldConn = sockets[0] as unknown as { getPeerCertificate(): PeerCertificate };
    expect(oldConn.getPeerCertificate().serialNumber).toBe(oldSerial);
    expect((await httpsGet('/id', keepAlive)).status).toBe(200);
    expect(Object.values(keepAlive.freeSockets).flat()[0]).toBe(sockets[0]);
    keepAlive.destroy();
  }, 90_000);
});

describe('redirectHttp', () => {
  it('true: the plain listener answers 308 to the https URL (Host without its port, the TLS port), Upgrade requests too', async () => {
    writeFileSync(peer.configFile, configYaml(Number(new URL(peer.adminUrl).port), { redirect: true }));
    expect((await reload()).ok).toBe(true);
    try {
      const r = await rawExchange(dataPort, 'GET /some/path?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nConnection: close\r\n\r\n');
      expect(r).toMatch(/^HTTP\/1\.1 308 /);
      expect(r).toContain(`location: https://a.test:${tlsPort}/some/path?q=1\r\n`);
      const v6 = await rawExchange(dataPort, 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n');
      expect(v6).toContain(`location: https://[::1]:${tlsPort}/\r\n`);
      // curl follows it to the TLS listener, verified.
      const followed = await curl([...CURL_TLS(), '-L', '-o', '/dev/null', '-w', '%{http_code} %{url_effective}', '-H', 'host: a.test', `http://127.0.0.1:${dataPort}/id`]);
      expect(followed.stdout).toBe(`200 https://a.test:${tlsPort}/id`);
      const up = await rawExchange(dataPort, 'GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      expect(up).toMatch(/^HTTP\/1\.1 308 /);
      expect(up).toContain(`location: https://a.test:${tlsPort}/ws`);
      // The TLS listener itself does not redirect.
      expect((await httpsGet('/id', false)).status).toBe(200);
    } finally {
      writeFileSync(peer.configFile, configYaml(Number(new URL(peer.adminUrl).port)));
      expect((await reload()).ok).toBe(true);
    }
    expect((await fetch(`http://127.0.0.1:${dataPort}/id`, { redirect: 'manual' })).status).toBe(200);
  });
});

function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => resolve(out));
    s.on('close', () => resolve(out));
    setTimeout(() => s.destroy(), 5_000);
  });
}

function run(cmd: string, args: readonly string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(stdin);
  });
}

describe('drain (SIGTERM)', () => {
  it('closes the TLS listener too: in-flight HTTPS and HTTP/2 requests finish, new handshakes are refused, exit 0', async () => {
    const h2 = h2Connect(`https://127.0.0.1:${tlsPort}`, { ca: readFileSync(ca.cert), servername: 'a.test' });
    h2.on('error', () => undefined);
    const h2Answer = new Promise<number>((resolve) => {
      const req = h2.request({ ':path': '/slow?ms=1500', ':authority': 'a.test' });
      let status = 0;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('error', () => resolve(-1));
      req.resume();
      req.on('close', () => resolve(status));
    });
    const h1Answer = httpsGet('/slow?ms=1500', false).then((r) => r.status, () => -1);
    await waitFor(() => backend.received.filter((r) => r.url?.startsWith('/slow')).length >= 2, 10_000, () => 'requests did not reach the backend');
    const goaway = new Promise<boolean>((resolve) => {
      h2.once('goaway', () => resolve(true));
      setTimeout(() => resolve(false), 5_000);
    });
    peer.proc.kill('SIGTERM');
    expect(await goaway).toBe(true);
    await waitFor(async () => (await peerCertificate('a.test').then(() => false, () => true)), 5_000, () => 'TLS listener still accepting');
    expect(await h2Answer).toBe(200);
    expect(await h1Answer).toBe(200);
    expect((await peer.exited).code).toBe(0);
    h2.close();
  }, 30_000);
});
