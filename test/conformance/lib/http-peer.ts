/**
 * The meshgate peer the conformance suite drives: a real built process (dist/) in front of one
 * recording backend, plus a route whose only upstream is a dead port (`/down`).
 */
import { deadPort } from '../../helpers/backend.js';
import { readFileSync } from 'node:fs';
import { freePort, startPeer, tempDir, type PeerProcess } from '../../helpers/meshgate.js';
import { createTestCa } from '../../helpers/tls-certs.js';
import { TRANSPORT, type Target } from './transport.js';

export interface ConformancePeer {
  readonly peer: PeerProcess;
  readonly port: number;
  /** Where the raw clients reach it over the suite's transport (lib/transport.ts). */
  readonly target: Target;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

export interface PeerShape {
  /** More `node:` lines (two-space indented), e.g. timeouts under test. */
  readonly nodeExtra?: readonly string[];
  /** More lines of the `rec` service (four-space indented), e.g. outlier detection. */
  readonly serviceExtra?: readonly string[];
  /** More routes: path prefix → a one-upstream service of that name. */
  readonly extraRoutes?: ReadonlyArray<{ readonly prefix: string; readonly name: string; readonly url: string }>;
  /** The TLS listener (HTTP/2 offered by ALPN) whatever MESHGATE_CONFORMANCE_TRANSPORT says: the h2-* cases. */
  readonly tls?: boolean;
}

export async function startConformancePeer(backendUrl: string, shape: PeerShape = {}): Promise<ConformancePeer> {
  const { nodeExtra = [], serviceExtra = [], extraRoutes = [] } = shape;
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const dead = await deadPort();
  const dir = tempDir('meshgate-conformance-');
  let tls: { port: number; ca: string; lines: string[] } | undefined;
  if (TRANSPORT === 'https' || shape.tls === true) {
    const ca = createTestCa(dir);
    const pair = ca.issue('peer', ['conformance.test']);
    const tlsPort = await freePort();
    tls = { port: tlsPort, ca: readFileSync(ca.cert, 'utf8'), lines: ['  tls:', `    listen: 127.0.0.1:${tlsPort}`, `    certificates: [{ cert: ${pair.cert}, key: ${pair.key} }]`, '    http2: true'] };
  }
  const yaml = [
    'node:',
    '  id: conformance',
    `  listen: 127.0.0.1:${port}`,
    `  admin: { listen: 127.0.0.1:${adminPort} }`,
    '  accessLog: false',
    ...(nodeExtra.some((l) => l.includes('maxBodySize')) ? [] : ['  maxBodySize: 16MiB']),
    ...nodeExtra,
    ...(tls?.lines ?? []),
    'routes:',
    '  - { match: { pathPrefix: /down }, service: down }',
    ...extraRoutes.map((r) => `  - { match: { pathPrefix: ${r.prefix} }, service: ${r.name} }`),
    '  - { match: { pathPrefix: / }, service: rec }',
    'services:',
    '  rec:',
    '    balancer: round-robin',
    ...serviceExtra,
    `    upstreams: [{ id: rec-1, url: ${backendUrl} }]`,
    '  down:',
    '    retries: { attempts: 0 }',
    `    upstreams: [{ id: dead-1, url: http://127.0.0.1:${dead} }]`,
    ...extraRoutes.flatMap((r) => [`  ${r.name}:`, '    retries: { attempts: 0 }', `    upstreams: [{ id: ${r.name}-1, url: ${r.url} }]`]),
    '',
  ].join('\n');
  const peer = await startPeer(yaml, { adminPort, dataPort: port, dir });
  return {
    peer,
    port,
    target: tls ? { port: tls.port, tls: { ca: tls.ca, servername: 'conformance.test' } } : { port },
    adminUrl: peer.adminUrl,
    stop: async () => {
      await peer.stop('SIGKILL');
    },
  };
}

/** The peer's Prometheus text (to check what was charged to an upstream). */
export async function metricsText(adminUrl: string): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}
