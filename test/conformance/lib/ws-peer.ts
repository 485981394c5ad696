/**
 * The meshgate peer (a real built process) and the backends the Upgrade-path conformance tests run
 * against: two recording WebSocket backends, a port nothing listens on, a listener whose accept
 * queue is full (a TCP connect to it hangs, as to a host that drops SYNs), and one config routing to
 * each of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { deadPort } from '../../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../../helpers/meshgate.js';
import { startWsBackend, type WsBackend } from './ws-backend.js';

/** The upgrade timeouts the config sets on the blackhole and silent routes. */
export const CONNECT_TIMEOUT_MS = 400;
export const HANDSHAKE_TIMEOUT_MS = 400;
export const IDLE_TIMEOUT_MS = 300;

export interface WsRig {
  readonly a: WsBackend;
  readonly b: WsBackend;
  readonly peer: PeerProcess;
  readonly dataPort: number;
  /** A one-peer Raft group when started with `cluster: true` (membership writes go through it). */
  readonly clustered: boolean;
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

export async function startWsRig(opts: { accessLog?: boolean; cluster?: boolean; drainTimeout?: string } = {}): Promise<WsRig> {
  const [a, b, dead, blackhole, dataPort, adminPort, raftPort] = await Promise.all([startWsBackend('a'), startWsBackend('b'), deadPort(), startBlackhole(), freePort(), freePort(), freePort()]);
  const dir = tempDir('meshgate-ws-');
  const cluster = opts.cluster
    ? `cluster:
  listen: 127.0.0.1:${raftPort}
  dataDir: ${join(dir, 'data')}
  secret: ws-conformance-secret-0123456789
  bootstrap: [{ id: gw-ws, address: 127.0.0.1:${raftPort} }]`
    : '';
  const config = (extraUpstreams = ''): string => `
node:
  id: gw-ws
  listen: 127.0.0.1:${dataPort}
  admin: { listen: 127.0.0.1:${adminPort} }
  accessLog: ${opts.accessLog ?? true}
  drainTimeout: ${opts.drainTimeout ?? '1s'}
${cluster}
routes:
  - { match: { pathPrefix: /dead }, service: dead }
  - { match: { pathPrefix: /failover }, service: failover }
  - { match: { pathPrefix: /blackhole }, service: blackhole }
  - { match: { pathPrefix: /silent }, service: silent }
  - { match: { pathPrefix: /sticky }, service: sticky }
  - { match: { pathPrefix: /none }, service: none }
  - { match: { pathPrefix: /idle }, service: idle }
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
  idle:
    timeouts: { upgrade: { idle: ${IDLE_TIMEOUT_MS}ms } }
    upstreams: [{ id: a, url: ${a.url} }]
`;
  const peer = await startPeer(config(), { adminPort, dataPort, dir });
  if (opts.cluster) await waitFor(async () => (await status(peer)).raft?.role === 'leader', 10_000, () => 'no Raft leader');
  return {
    a,
    b,
    peer,
    dataPort,
    clustered: opts.cluster ?? false,
    config,
    async close() {
      await peer.stop('SIGKILL');
      blackhole.proc.kill('SIGKILL');
      await Promise.all([a.close(), b.close()]);
    },
  };
}

export interface UpstreamStatus {
  id: string;
  inFlight: number;
  requests: number;
  failures: number;
  health: string;
  ejected: boolean;
}

interface PeerStatus {
  websockets: number;
  generation: number;
  raft?: { role?: string };
  services: Record<string, { upstreams: UpstreamStatus[] }>;
}

export async function status(peer: PeerProcess): Promise<PeerStatus> {
  const r = await fetch(`${peer.adminUrl}/api/v1/status`, { signal: AbortSignal.timeout(3000) });
  return (await r.json()) as PeerStatus;
}

export async function upstreamStatus(peer: PeerProcess, service: string, id: string): Promise<UpstreamStatus> {
  const s = await status(peer);
  const u = s.services[service]?.upstreams.find((x) => x.id === id);
  if (!u) throw new Error(`no upstream ${service}/${id} in status`);
  return u;
}

/** Every upstream of every service has nothing in flight (accounting released). */
export async function nothingInFlight(peer: PeerProcess): Promise<boolean> {
  const s = await status(peer);
  return Object.values(s.services).every((svc) => svc.upstreams.every((u) => u.inFlight === 0));
}
