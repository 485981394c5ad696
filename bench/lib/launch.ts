// Starting the harness's own child processes (backend, simple targets, load generator) and
// meshgate. Every child goes through ctx.procs (see procs.ts) so it is killed on exit.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, LoadResult } from './types.js';
import type { ChildHandle } from './procs.js';
import { freePort, httpGet, waitForHttp200 } from './procs.js';
import type { LoadArgs } from './load.js';
import { pin } from './pin.js';

/** Our scripts print their port within milliseconds; this bound only catches a broken build. */
const READY_TIMEOUT_MS = 10_000;
/** meshgate starts prom-client, the admin server and its config loader before /healthz says 200. */
const MESHGATE_READY_TIMEOUT_MS = 20_000;

const script = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** A running HTTP server under test: where to send load, and how to stop it. */
export interface Target {
  name: string;
  origin: string;
  /** Process whose CPU time is charged to this target (the proxy; the backend for `direct`). */
  pid?: number;
  /** meshgate: its admin API origin. */
  admin?: string;
  stop(): Promise<void>;
  /** Output tail (stderr or log file), for error rows. */
  tail(): string;
}

async function startScript(ctx: BenchContext, name: string, file: string, args: unknown, scheme = 'http'): Promise<Target> {
  const h = ctx.procs.spawnNode(name, script(file), args);
  const { port } = await h.firstJsonLine<{ port: number }>(READY_TIMEOUT_MS);
  return { name, origin: `${scheme}://127.0.0.1:${port}`, pid: h.child.pid, stop: () => h.stop(), tail: () => h.tail() };
}

/** The TLS Node floor (tls-floor-target.ts): node:https (`https`) or node:http2 (`h2`) + one undici Pool. */
export function startTlsFloor(ctx: BenchContext, name: string, o: { upstream: string; cert: string; key: string; mode: 'https' | 'h2' }): Promise<Target> {
  return startScript(ctx, name, 'tls-floor-target', o, 'https');
}

export function startBackend(ctx: BenchContext, id = 'b1'): Promise<Target> {
  return startScript(ctx, `backend ${id}`, 'backend', { id });
}

/** http-proxy with a keep-alive agent over one upstream, or several taken in turn. */
export function startHttpProxy(ctx: BenchContext, upstream: string | string[]): Promise<Target> {
  return startScript(ctx, 'http-proxy', 'http-proxy-target', { upstreams: ([] as string[]).concat(upstream) });
}

/** The minimal node:http + undici proxy over one upstream, or several taken in turn. */
export function startUndiciMin(ctx: BenchContext, upstream: string | string[]): Promise<Target> {
  return startScript(ctx, 'undici-min', 'undici-min-target', { upstreams: ([] as string[]).concat(upstream) });
}

/**
 * Runs the load generator in its own process against origin+path and returns its figures.
 * With `cpuPid`, also the CPU time (user+system) that process spent per request over the whole
 * run, warm-up included: a cost figure that, unlike req/s, barely moves when other work shares the
 * machine (Linux only; undefined elsewhere).
 */
export async function runLoad(
  ctx: BenchContext,
  args: Omit<LoadArgs, 'connections' | 'durationSec' | 'warmupSec'> & Partial<LoadArgs>,
  cpuPid?: number,
  loadCpu?: number,
): Promise<LoadResult & { cpuUsPerReq?: number }> {
  const full: LoadArgs = { connections: ctx.connections, durationSec: ctx.durationSec, warmupSec: ctx.warmupSec, ...args };
  const before = cpuPid === undefined ? undefined : cpuTicks(cpuPid);
  const h = ctx.procs.spawnNode(`load ${args.origin}${args.path}`, script('load'), full);
  // Pinned before its warm-up ends, so the measured seconds all run on the harness core.
  if (loadCpu !== undefined) pin(h.child.pid, loadCpu);
  const r = await h.result<LoadResult>();
  const after = cpuPid === undefined ? undefined : cpuTicks(cpuPid);
  if (before === undefined || after === undefined || r.totalRequests === 0) return r;
  return { ...r, cpuUsPerReq: ((after - before) * (1e6 / USER_HZ)) / r.totalRequests };
}

/** Linux reports /proc/<pid>/stat times in USER_HZ ticks, 100 per second on every mainstream arch. */
export const USER_HZ = 100;

/** Fields of /proc/<pid>/stat after the command name (so index 0 is field 3, `state`), or undefined. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after the closing paren are plain.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in ticks (proc(5), fields 14 and 15), or undefined off Linux. */
export function cpuTicks(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? Number(fields[11]) + Number(fields[12]) : undefined;
}

/**
 * CPU ticks of the process tree under `pid` (itself and every descendant alive now, found by one
 * scan of /proc/<n>/stat parent pids — /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN,
 * which this VM's kernel lacks): utime + stime of each, plus cutime + cstime (its children already
 * reaped), so a worker that exits and is waited for moves its time into its parent's count instead
 * of out of the sum. For a target that is several processes (meshgate's primary and workers,
 * NGINX's master and workers). Undefined off Linux or once `pid` is gone.
 */
export function treeCpuTicks(pid: number): { ticks: number; processes: number } | undefined {
  if (!statFields(pid)) return undefined;
  const stats = new Map<number, string[]>();
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (!f) continue; // exited between the listing and the read
    stats.set(Number(d), f);
    const ppid = Number(f[1]); // field 4
    children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
  }
  let ticks = 0;
  let processes = 0;
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const f = stats.get(p);
    if (f) {
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      processes++;
    }
    queue.push(...(children.get(p) ?? []));
  }
  return { ticks, processes };
}

/**
 * Resets the peak RSS (VmHWM) of `pid` to its current RSS (proc(5) clear_refs "5", Linux ≥ 4.0), so
 * the next readPeakRssMiB covers only what follows. False where the kernel or permissions refuse:
 * the peak then covers the process's whole life.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident set size (VmHWM of /proc/<pid>/status) in MiB, or undefined off Linux. */
export function readPeakRssMiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Fails fast, before a 6-second load run, when a target does not serve `path` correctly. */
export async function checkServes(target: Target, path: string, expectBytes: number): Promise<void> {
  let r: Awaited<ReturnType<typeof httpGet>>;
  try {
    r = await httpGet(`${target.origin}${path}`, 5_000);
  } catch (err) {
    throw new Error(`${target.name} GET ${path}: ${(err as Error).message}; ${target.tail()}`);
  }
  if (r.status !== 200 || r.bytes !== expectBytes) {
    throw new Error(`${target.name} GET ${path}: status ${r.status}, ${r.bytes} bytes (want 200, ${expectBytes}); ${target.tail()}`);
  }
}

/** node.tls for the TLS bench: one certificate pair, HTTP/2 offered by ALPN. */
export interface MeshgateTls {
  cert: string;
  key: string;
}

export interface MeshgateService {
  balancer: string;
  hashOn?: string;
  upstreams: Array<{ id: string; url: string }>;
}

/**
 * The config shape of DESIGN.md §2 for one service `bench` routed from `/`; accessLog is the
 * node-level switch the lead added for the logging-cost run.
 */
export function meshgateConfig(o: { id: string; port: number; adminPort: number; accessLog: boolean; service: MeshgateService; tls?: MeshgateTls & { port: number }; workers?: number }): string {
  const lines = [
    'node:',
    `  id: ${o.id}`,
    `  listen: 127.0.0.1:${o.port}`,
    `  admin: { listen: 127.0.0.1:${o.adminPort} }`,
    `  accessLog: ${o.accessLog}`,
    ...(o.workers !== undefined ? [`  workers: ${o.workers}`] : []),
    ...(o.tls ? [`  tls: { listen: 127.0.0.1:${o.tls.port}, certificates: [{ cert: ${o.tls.cert}, key: ${o.tls.key} }], http2: true }`] : []),
    'routes:',
    '  - match: { pathPrefix: / }',
    '    service: bench',
    'services:',
    '  bench:',
    `    balancer: ${o.service.balancer}`,
    ...(o.service.hashOn ? [`    hashOn: ${o.service.hashOn}`] : []),
    '    upstreams:',
    ...o.service.upstreams.map((u) => `      - { id: ${u.id}, url: ${u.url} }`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Starts `node dist/src/main.js --config <tmp yaml>` and waits for admin /healthz = 200 and, with
 * `workers` > 1, for every worker to be ready (the admin server answers before the workers listen).
 * Its stdout/stderr (the access log, when on) go to a file in ctx.tmpDir, as a log shipper would
 * read them — a pipe we did not drain would stall it, /dev/null would flatter it.
 * `env`: the child's whole environment (default this process's).
 */
export async function startMeshgate(
  ctx: BenchContext,
  name: string,
  o: { accessLog: boolean; service: MeshgateService; tls?: MeshgateTls; workers?: number; env?: NodeJS.ProcessEnv },
): Promise<Target> {
  if (!existsSync(ctx.meshgateMain)) throw new Error(`${ctx.meshgateMain} missing (build meshgate first)`);
  const port = await freePort();
  let adminPort = await freePort();
  // The kernel may hand the same just-closed port out twice in a row.
  while (adminPort === port) adminPort = await freePort();
  const slug = name.replace(/[^a-z0-9]+/gi, '-');
  const configFile = join(ctx.tmpDir, `${slug}.yaml`);
  const tls = o.tls ? { ...o.tls, port: await freePort() } : undefined;
  writeFileSync(configFile, meshgateConfig({ id: 'bench-1', port, adminPort, accessLog: o.accessLog, service: o.service, tls, workers: o.workers }));
  const h: ChildHandle = ctx.procs.spawnToFile(name, [process.execPath, ctx.meshgateMain, '--config', configFile], join(ctx.tmpDir, `${slug}.log`), o.env);
  try {
    await waitForHttp200(`http://127.0.0.1:${adminPort}/healthz`, MESHGATE_READY_TIMEOUT_MS, h);
    if ((o.workers ?? 1) > 1) await waitForWorkers(`http://127.0.0.1:${adminPort}`, o.workers!, h);
  } catch (err) {
    await h.stop();
    throw err;
  }
  // With TLS the target is its TLS listener (the plain one still serves, unused by the bench).
  const admin = `http://127.0.0.1:${adminPort}`;
  return { name, origin: tls ? `https://127.0.0.1:${tls.port}` : `http://127.0.0.1:${port}`, pid: h.child.pid, admin, stop: () => h.stop(), tail: () => h.tail() };
}

/** A worker as /api/v1/status lists it (`node.workers` > 1); `requests` is its last heartbeat's count. */
export interface WorkerStatus {
  index: number;
  state: string;
  requests: number;
}

/** The workers meshgate's admin API at `admin` lists (empty for a single process). */
export async function meshgateWorkers(admin: string): Promise<WorkerStatus[]> {
  const res = await fetch(`${admin}/api/v1/status`);
  if (res.status !== 200) throw new Error(`GET ${admin}/api/v1/status: ${res.status}`);
  return ((await res.json()) as { workers?: WorkerStatus[] }).workers ?? [];
}

/** Polls /api/v1/status until it lists `count` workers, all `ready` (bounded like the readiness wait). */
async function waitForWorkers(admin: string, count: number, h: ChildHandle): Promise<void> {
  const deadline = Date.now() + MESHGATE_READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (h.child.exitCode !== null || h.child.signalCode !== null) throw new Error(`${h.name} exited before its workers were ready: ${h.tail()}`);
    const r = await meshgateWorkers(admin).catch((err: unknown) => ({ error: (err as Error).message }));
    if ('error' in r) last = r.error;
    else {
      const ready = r.filter((w) => w.state === 'ready').length;
      if (ready >= count) return;
      last = `${ready}/${count} workers ready`;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${h.name}: workers not ready within ${MESHGATE_READY_TIMEOUT_MS} ms (last: ${last}); ${h.tail()}`);
}
