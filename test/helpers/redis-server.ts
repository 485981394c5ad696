/**
 * Starts a real `redis-server` for integration tests: loopback, a free port, no persistence
 * (`--save "" --appendonly no`), its own temp dir. Returns {port, url, stop, kill, restart}.
 *
 * Invariants: every server this helper started is SIGKILLed when the test process exits (even after a
 * crash or a SIGSTOP, since SIGKILL works on stopped processes); `stop()` is idempotent; `restart()`
 * reuses the same port so clients reconnect to the "same" Redis, now empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Send a signal to the current process (SIGKILL, SIGSTOP, SIGCONT, …). */
  kill(signal: NodeJS.Signals): void;
  /** Start again on the same port (after a SIGKILL, or kills the running one first). Empty data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Extra server args, e.g. ['--appendonly', 'yes']; applied on the next restart. */
  args: string[];
}

const REDIS_BIN = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli';

/**
 * Ports for servers the tests start, below Linux's ephemeral range (32768–60999 by default). A port the
 * kernel hands out for `listen(0)` lies inside that range, and between our check and the child's own
 * bind an outgoing connection of any test could take it as its local port (seen in CI as a peer's
 * EADDRINUSE). Ports below it are never chosen by connect() (net.ipv4.ip_local_port_range as Debian ships it). Each vitest worker (VITEST_POOL_ID) has
 * its own slice, so two test files running at once never pick the same port; within a worker the
 * cursor moves on, so a port handed out is not handed out again soon.
 */
const PORT_BASE = 10_000;
const PORT_SLICE = 2_500;
const PORT_SLICES = 8;
const slice = (Number(process.env.VITEST_POOL_ID ?? 0) % PORT_SLICES) * PORT_SLICE;
let portCursor = Math.floor(Math.random() * PORT_SLICE);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_SLICE; tries++) {
    const port = PORT_BASE + slice + (portCursor++ % PORT_SLICE);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE + slice}–${PORT_BASE + slice + PORT_SLICE - 1}`);
}

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    let buf = '';
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH')); // alive (a password-protected server answers NOAUTH)
    });
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}

export interface StartRedisOptions {
  /** Extra command-line options (after ours). */
  args?: string[];
  /** Config file text, written to the server's temp dir and passed first (Sentinel needs a writable one). */
  conf?: (port: number) => string;
  /** Run as a Sentinel (`redis-server <conf> --sentinel`). */
  sentinel?: boolean;
  /** A fixed port (restart of a cluster node on its old port); default a free one. */
  port?: number;
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-redis-'));
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (port: number): Promise<void> => {
    const head: string[] = [];
    if (opts.conf) {
      const file = join(dir, opts.sentinel ? 'sentinel.conf' : 'redis.conf');
      if (!existsSync(file)) writeFileSync(file, opts.conf(port));
      head.push(file);
    }
    if (opts.sentinel) head.push('--sentinel');
    const persistence = opts.sentinel ? [] : ['--save', '', '--appendonly', 'no'];
    const c = spawn(REDIS_BIN, [...head, '--port', String(port), '--bind', '127.0.0.1', ...persistence, '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning', ...server.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    live.add(c);
    c.once('exit', () => live.delete(c));
    child = c;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    c.kill('SIGKILL');
    throw new Error('redis-server did not become ready in 10 s');
  };

  const killAndWait = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
  };

  const server: RedisServer = {
    port: 0,
    url: '',
    dir,
    args: opts.args ?? [],
    kill(signal) {
      child?.kill(signal);
    },
    async restart() {
      await killAndWait();
      await launch(server.port);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await killAndWait();
      rmSync(dir, { recursive: true, force: true });
    },
  };

  // A port can be taken between freePort() and bind; try a few.
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    (server as { port: number }).port = port;
    (server as { url: string }).url = `redis://127.0.0.1:${port}`;
    try {
      await launch(port);
      return server;
    } catch (err) {
      await killAndWait();
      if (attempt >= 4) throw err;
    }
  }
}
