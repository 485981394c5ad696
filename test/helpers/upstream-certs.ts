/**
 * Certificates for upstream-TLS tests, made at test time with the `openssl` CLI (nothing checked in,
 * nothing that expires between runs), and a real node:https backend that uses them.
 *
 * `makeUpstreamCerts(dir)` writes, under `dir`:
 *   ca.crt / ca.key             a private CA
 *   server.crt / server.key     signed by it, for DNS api.internal, DNS localhost and IP 127.0.0.1
 *   client.crt / client.key     signed by it, extendedKeyUsage clientAuth (mutual TLS)
 *   other-ca.crt                an unrelated CA (an "unknown CA" for the server certificate)
 *   garbage.pem                 text that is no PEM at all
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';

export interface UpstreamCerts {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly otherCa: string;
  readonly garbage: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a certificate signed by ca.crt with the given extensions. */
function issue(dir: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

function selfSignedCa(dir: string, name: string, cn: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

export function makeUpstreamCerts(dir: string): UpstreamCerts {
  selfSignedCa(dir, 'ca', 'meshgate test CA');
  selfSignedCa(dir, 'other-ca', 'unrelated test CA');
  issue(dir, 'server', 'api.internal', 'subjectAltName=DNS:api.internal,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue(dir, 'client', 'meshgate-client', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(join(dir, 'garbage.pem'), 'this is not a certificate\n');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    otherCa: join(dir, 'other-ca.crt'),
    garbage: join(dir, 'garbage.pem'),
  };
}

export interface HttpsBackend {
  readonly name: string;
  readonly port: number;
  /** https://127.0.0.1:port */
  readonly url: string;
  /** Requests that reached the application (a refused handshake never counts). */
  readonly hits: number;
  /** Subject CN of the client certificate of the last request, if any. */
  readonly lastClientCn: string | undefined;
  /** TLS connections completed, and the SNI each one carried ('' for none). */
  readonly handshakes: readonly string[];
  setHealth(status: number): void;
  close(): Promise<void>;
}

/**
 * A node:https backend with the server certificate. `/healthz` → 200 (or `setHealth`), any other path
 * → its name; WebSocket upgrades echo `name:message`. `requireClientCert`: the handshake needs a
 * client certificate signed by ca.crt (requestCert + rejectUnauthorized).
 */
export async function startHttpsBackend(name: string, certs: UpstreamCerts, opts: { requireClientCert?: boolean } = {}): Promise<HttpsBackend> {
  let health = 200;
  let hits = 0;
  let lastClientCn: string | undefined;
  const server: Server = createServer({
    cert: readFileSync(certs.serverCert),
    key: readFileSync(certs.serverKey),
    ...(opts.requireClientCert ? { ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true } : {}),
  }, (req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(health, { 'content-type': 'text/plain' }).end(health === 200 ? 'ok' : 'unhealthy');
      return;
    }
    hits++;
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    lastClientCn = peer && typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined;
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }).end(name);
  });
  server.keepAliveTimeout = 5_000;
  const handshakes: string[] = [];
  server.on('secureConnection', (sock: TLSSocket) => handshakes.push((sock as TLSSocket & { servername?: string | false }).servername || ''));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name}:${m.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    url: `https://127.0.0.1:${port}`,
    get hits() {
      return hits;
    },
    get lastClientCn() {
      return lastClientCn;
    },
    handshakes,
    setHealth: (s) => (health = s),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
