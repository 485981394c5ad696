/**
 * The TLS listener's sockets (proxy/tls-listener.ts): every connection it accepts has Nagle's algorithm
 * off (node:http and node:https do this by default, plain tls.createServer does not — with Nagle on, a
 * small record written while an earlier one is unacknowledged waits for its ACK), and HTTP/1.1 and
 * HTTP/2 requests are both served on the sockets it accepted (node:http2 also turns Nagle off on its
 * own). In-process, with a real node:http server behind it, the real HTTP/2 front, and a certificate
 * made by the `openssl` CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createLogger } from '../../../src/observability/log.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { Deadlines } from '../../../src/proxy/deadlines.js';
import { H2Front } from '../../../src/proxy/h2-front.js';
import { TlsListener } from '../../../src/proxy/tls-listener.js';
import { loadCertificates } from '../../../src/tls/certificates.js';
import { createTestCa, type CertFiles, type TestCa } from '../../helpers/tls-certs.js';
import { tempDir } from '../../helpers/meshgate.js';

let ca: TestCa;
let leaf: CertFiles;
let http1: Server;
let listener: TlsListener;
let port: number;
/** Sockets the TLS server accepted, and the socket each request was served on. */
const accepted: TLSSocket[] = [];
const servedOn: Socket[] = [];

function answer(req: IncomingMessage, res: ServerResponse): void {
  servedOn.push(req.socket);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
  res.end('ok\n');
}

beforeAll(async () => {
  ca = createTestCa(tempDir('meshgate-tls-listener-'));
  leaf = ca.issue('site', ['site.test']);
  const loaded = loadCertificates([leaf], { minVersion: 'TLSv1.2' });
  if (!loaded.ok) throw new Error('test certificate did not load');
  const log = createLogger({ level: 'silent', nodeId: 'test' });
  const metrics = new Metrics({ defaultMetrics: false });
  http1 = createServer(answer);
  const h2 = new H2Front(
    { maxHeaderBytes: 16_384, maxHeadersCount: 100, idleTimeoutMs: 5_000, stallTimeoutMs: 0, requestTimeoutMs: 0 },
    { request: (req, res) => answer(req, res), expectation: (_req, res) => res.writeHead(417).end() },
    metrics,
    log,
    new Deadlines(),
  );
  listener = new TlsListener(loaded.set, http1, h2, metrics, log, { handshakeTimeoutMs: 5_000, maxConnections: 100 });
  listener.server.on('secureConnection', (s: TLSSocket) => accepted.push(s));
  port = await listener.listen('127.0.0.1', 0);
});

afterAll(async () => {
  listener?.destroyAll();
  await listener?.close();
  http1?.close();
});

describe('the TLS listener', () => {
  it('accepts with noDelay: node applies TCP_NODELAY to every connection it accepts', () => {
    // net.Server keeps the option as `noDelay` and calls setNoDelay(true) on each accepted handle.
    expect((listener.server as unknown as { noDelay: boolean }).noDelay).toBe(true);
  });

  it('serves HTTP/1.1 and HTTP/2 on the sockets it accepted', async () => {
    const h1 = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, servername: 'site.test', ca: readCa(), path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    const session = h2Connect(`https://127.0.0.1:${port}`, { servername: 'site.test', ca: readCa() });
    session.on('error', () => undefined);
    const h2 = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': '/', ':authority': 'site.test' }, { endStream: true });
      s.on('response', (h) => {
        s.resume();
        s.on('end', () => resolve(Number(h[':status'])));
      });
      s.on('error', reject);
    });
    session.close();
    expect([h1, h2]).toEqual([200, 200]);
    expect(servedOn).toHaveLength(2);
    for (const s of servedOn) expect(accepted).toContain(s);
  });
});

function readCa(): string {
  return readFileSync(ca.cert, 'utf8');
}
