/**
 * The meshgate peer (a real built process) and the backends the Upgrade-path conformance tests run
 * against: two recording WebSocket backends, a port nothing listens on, a listener whose accept
 * queue is full (a TCP connect to it hangs, as to a host that drops SYNs), and one config routing to
 * each of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { deadPort } from '../../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../../helpers/meshgate.js';
import { startWsBackend, type WsBackend } from './ws-backend.js';

/** The upgrade timeouts the config sets on the blackhole and silent routes. */
export const CONNECT_TIMEOUT_MS = 400;
export const HANDSHAKE_TIMEOUT_MS = 400;

export interface WsRig {
  readonly a: WsBackend;
  readonly b: WsBackend;
  readonly peer: PeerProcess;
  readonly dataPort: number;
  /** Rewrites the config file (a reload) with `extra` appended to the ws service's upstreams. */
  config(extraUpstreams?: string): string;
  close(): Promise<void>;
}

/**
 * A listener with a backlog of 0 and its accept queue already full, never accepting: the kernel
 * drops further SYNs, so a connect to it hangs until the client's own timeout. (python3, because a
 * node server always accepts.)
 */
async function startBlackhole(): Promise<{ port: number; proc: ChildProcess }> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]; fill = []',
    'for _ in range(2):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'time.sleep(0.1); print(port, flush=True); sys.stdin.read()',
  ].join('\n');
  const proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
  return { port: Number(chunk.toString().trim()), proc };
}

export async function startWsRig(opts: { accessLog?: boolean } = {}): Promise<WsRig> {
  const [a, b, dead, blackhole, dataPort, adminPort] = await Promise.all([startWsBackend('a'), startWsBackend('b'), deadPort(), startBlackhole(), freePort(), freePort()]);
  const config = (extraUpstreams = ''): string => `
node:
  id: gw-ws
  listen: 127.0.0.1:${dataPort}
  admin: { listen: 127.0.0.1:${adminPort} }
  accessLog: ${opts.accessLog ?? true}
  drainTimeout: 1s
routes:
  - { match: { pathPrefix: /dead }, service: dead }
  - { match: { pathPrefix: /failover }, service: failover }
  - { match: { pathPrefix: /blackhole }, service: blackhole }
  - { match: { pathPrefix: /silent }, service: silent }
  - { match: { pathPrefix: /sticky }, service: sticky }
  - { match: { pathPrefix: /none }, service: none }
  - { match: { pathPrefix: / }, service: ws }
services:
  ws:
    upstreams:
      - { id: a, url: ${a.url} }${extraUpstreams}
  dead:
    retries: { attempts: 0 }
    upstreams: [{ id: dead-1, url: http://127.0.0.1:${dead} }]
  failover:
    balancer: round-robin
    retries: { attempts: 1, on: [connect-failure], budgetPercent: 100 }
    upstreams:
      - { id: dead-1, url: http://127.0.0.1:${dead} }
      - { id: a, url: ${a.url} }
  blackhole:
    retries: { attempts: 0 }
    timeouts: { upgrade: { connect: ${CONNECT_TIMEOUT_MS}ms } }
    upstreams: [{ id: hole, url: http://127.0.0.1:${blackhole.port} }]
  silent:
    timeouts: { upgrade: { handshake: ${HANDSHAKE_TIMEOUT_MS}ms } }
    upstreams: [{ id: a, url: ${a.url} }]
  sticky:
    sticky: { cookie: mg_session }
    upstreams:
      - { id: a, url: ${a.url} }
      - { id: b, url: ${b.url} }
  none:
    upstreams: [{ id: off, url: ${a.url}, state: disabled }]
`;
  const peer = await startPeer(config(), { adminPort, dataPort });
  return {
    a,
    b,
    peer,
    dataPort,
    config,
    async close() {
      await peer.stop('SIGKILL');
      blackhole.proc.kill('SIGKILL');
      await Promise.all([a.close(), b.close()]);
    },
  };
}
