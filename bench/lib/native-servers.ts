// NGINX and HAProxy (Debian packages) for the wrk bench (issue 16): NGINX as the backends — a
// backend that costs far less than the proxy in front of it, as users measure — and NGINX and
// HAProxy as reference proxies. Each is started with a generated config in its own folder under
// ctx.tmpDir, on a free port, as ONE process (NGINX `master_process off`, HAProxy one thread in the
// foreground), so its pid is the process whose CPU time and peak RSS the bench reads, and taskset
// pins all of it — except where a bench asks for several (the workers bench: NGINX's master and N
// worker processes, whose CPU it sums over the process tree; HAProxy's N threads are one process).
// scripts/install-bench-deps.sh installs the packages.
// Invariant: every process goes through ctx.procs (killed at the end of the bench and on exit).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './types.js';
import type { Target } from './launch.js';
import { freePort, waitForHttp200 } from './procs.js';

/** NGINX parses and binds in milliseconds; this bound only catches a broken config. */
const READY_TIMEOUT_MS = 10_000;
/** The same bodies as the Node backend (backend.ts): /64 and /1m. */
export const SMALL_BODY = `${'a'.repeat(63)}\n`;
export const LARGE_BYTES = 1024 * 1024;

const NGINX_PATHS = ['/usr/sbin/nginx', '/usr/bin/nginx'];
const HAPROXY_PATHS = ['/usr/sbin/haproxy', '/usr/bin/haproxy'];

function findBinary(paths: string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}

export const nginxBinary = (): string | undefined => findBinary(NGINX_PATHS);
export const haproxyBinary = (): string | undefined => findBinary(HAPROXY_PATHS);

/** `taskset -c <cpu>` in front of argv when a core is given (taskset execs, so the pid stays). */
function pinned(argv: string[], cpu: number | undefined): string[] {
  return cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv];
}

/**
 * The parts of an NGINX config every instance shares: logs and temp files in `dir`; one process, or
 * with `workers` a master (in the foreground) and that many worker processes.
 */
function nginxMain(dir: string, http: string[], workers: number | undefined): string {
  const temp = (name: string): string => join(dir, `${name}_temp`);
  return [
    'daemon off;',
    ...(workers === undefined ? ['master_process off;', 'worker_processes 1;'] : ['master_process on;', `worker_processes ${workers};`]),
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${temp('body')};`,
    `  proxy_temp_path ${temp('proxy')};`,
    `  fastcgi_temp_path ${temp('fastcgi')};`,
    `  uwsgi_temp_path ${temp('uwsgi')};`,
    `  scgi_temp_path ${temp('scgi')};`,
    // wrk's connections stay open for the whole run; NGINX's default closes one every 1,000 requests.
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 65s;',
    ...http.map((l) => `  ${l}`),
    '}',
    '',
  ].join('\n');
}

async function startNginx(
  ctx: BenchContext,
  name: string,
  port: number,
  http: string[],
  cpu: number | undefined,
  readyPath: string,
  o: { scheme?: string; workers?: number } = {},
): Promise<Target> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx not installed (scripts/install-bench-deps.sh)');
  const dir = join(ctx.tmpDir, name.replace(/[^a-z0-9]+/gi, '-'));
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxMain(dir, http, o.workers));
  // -e: the compiled-in error log (stderr here) is used before the config's error_log is read.
  const h = ctx.procs.spawnProgram(name, pinned([bin, '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], cpu));
  const origin = `${o.scheme ?? 'http'}://127.0.0.1:${port}`;
  try {
    await waitForHttp200(`${origin}${readyPath}`, READY_TIMEOUT_MS, h);
  } catch (err) {
    await h.stop();
    throw err;
  }
  return { name, origin, pid: h.child.pid, stop: () => h.stop(), tail: () => h.tail() };
}

/** NGINX's reverse-proxy config: round-robin over `upstreams` with upstream keep-alive as a tuned site runs it. */
function nginxProxyBlock(upstreams: string[], listen: string, serverExtra: string[]): string[] {
  return [
    'upstream backends {',
    ...upstreams.map((u) => `  server ${new URL(u).host};`),
    '  keepalive 128;',
    '  keepalive_requests 1000000;',
    '}',
    'server {',
    listen,
    ...serverExtra,
    '  location / {',
    '    proxy_pass http://backends;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '  }',
    '}',
  ];
}

/** An NGINX backend: GET /64 returns 64 bytes (`return 200`), GET /1m a 1 MiB static file. */
export async function startNginxBackend(ctx: BenchContext, id: string, cpu: number | undefined): Promise<Target> {
  const port = await freePort();
  const www = join(ctx.tmpDir, `www-${id}`);
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, '1m'), Buffer.alloc(LARGE_BYTES, 'b'));
  return startNginx(
    ctx,
    `nginx backend ${id}`,
    port,
    [
      'sendfile on;',
      'server {',
      `  listen 127.0.0.1:${port} backlog=4096;`,
      `  location = /64 { default_type application/octet-stream; return 200 "${SMALL_BODY.replace('\n', '\\n')}"; }`,
      `  location = /1m { default_type application/octet-stream; root ${www}; }`,
      '}',
    ],
    cpu,
    '/64',
  );
}

/**
 * NGINX as a reverse proxy over `upstreams`, round-robin, upstream keep-alive as a tuned site runs it.
 * `workers`: a master process and that many workers (`worker_processes`); default one process.
 */
export async function startNginxProxy(ctx: BenchContext, upstreams: string[], cpu: number | undefined, workers?: number): Promise<Target> {
  const port = await freePort();
  return startNginx(
    ctx,
    workers === undefined ? 'nginx' : `nginx-${workers}w`,
    port,
    nginxProxyBlock(upstreams, `  listen 127.0.0.1:${port} backlog=4096;`, []),
    cpu,
    '/64',
    { workers },
  );
}

/**
 * NGINX terminating TLS (HTTP/1.1 and HTTP/2 by ALPN, session cache on) in front of `upstream`, with
 * upstream keep-alive: the reference row of the TLS bench.
 */
export async function startNginxTlsProxy(ctx: BenchContext, upstream: string, tls: { cert: string; key: string }, cpu: number | undefined): Promise<Target> {
  const port = await freePort();
  return startNginx(
    ctx,
    'nginx-tls',
    port,
    nginxProxyBlock([upstream], `  listen 127.0.0.1:${port} ssl http2 backlog=4096;`, [
      `  ssl_certificate ${tls.cert};`,
      `  ssl_certificate_key ${tls.key};`,
      '  ssl_protocols TLSv1.2 TLSv1.3;',
      '  ssl_session_cache shared:SSL:1m;',
      '  http2_max_concurrent_streams 128;',
    ]),
    cpu,
    '/64',
    { scheme: 'https' },
  );
}

/** HAProxy, `threads` threads (default one) in one process, round-robin over `upstreams`, idle upstream connections reused. */
export async function startHaproxy(ctx: BenchContext, upstreams: string[], cpu: number | undefined, threads = 1): Promise<Target> {
  const bin = haproxyBinary();
  if (!bin) throw new Error('haproxy not installed (scripts/install-bench-deps.sh)');
  const port = await freePort();
  const dir = join(ctx.tmpDir, threads === 1 ? 'haproxy' : `haproxy-${threads}t`);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    [
      'global',
      `  nbthread ${threads}`,
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 65s',
      '  timeout server 65s',
      '  http-reuse always',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      '  balance roundrobin',
      ...upstreams.map((u, i) => `  server b${i + 1} ${new URL(u).host}`),
      '',
    ].join('\n'),
  );
  // -db: foreground, no master/worker split, so the pid is the process that serves.
  const h = ctx.procs.spawnProgram('haproxy', pinned([bin, '-db', '-f', conf], cpu));
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp200(`${origin}/64`, READY_TIMEOUT_MS, h);
  } catch (err) {
    await h.stop();
    throw err;
  }
  return { name: 'haproxy', origin, pid: h.child.pid, stop: () => h.stop(), tail: () => h.tail() };
}
