/**
 * `node.workers: 2` (DESIGN.md §10, issue 16) on real processes: a primary and two node:cluster
 * workers, real backends, curl and undici clients. Shown here: both workers serve; /metrics sums them
 * exactly; a worker SIGKILLed or SIGSTOPped under load is replaced and only its own in-flight requests
 * fail; 20 reloads under load fail nothing; a DELETE through the admin API, once answered, is routed by
 * every worker; outlier detection counts across the workers; sticky pins without Redis agree across
 * workers; SIGTERM drains every worker and every pid exits; a primary SIGKILLed takes its workers with
 * it and frees the port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor, type PeerProcess } from '../helpers/meshgate.js';
import { runPromtool } from '../helpers/promtool.js';

const run = promisify(execFile);
const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;

interface WorkerRow { index: number; pid: number; state: string; restarts: number; requests: number; inFlight: number }
interface Status { workers: WorkerRow[]; generation: number; services: Record<string, { upstreams: Array<{ id: string; ejected: boolean; requests: number }> }> }

let backends: Backend[];
const peers: PeerProcess[] = [];

beforeAll(async () => {
  backends = await Promise.all(['w1', 'w2', 'w3'].map((n) => startBackend(n)));
});

afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop('SIGKILL')));
  await Promise.all(backends.map((b) => b.close()));
});

function yaml(dp: number, ap: number, extra: { service?: string; cluster?: string; ups?: Backend[] } = {}): string {
  const ups = extra.ups ?? backends.slice(0, 2);
  return `
node:
  id: gw-w
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
  workers: 2
  drainTimeout: 5s
${extra.cluster ?? ''}routes:
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    balancer: round-robin
${extra.service ?? ''}    upstreams:
${ups.map((b) => `      - { id: ${b.name}, url: ${b.url} }`).join('\n')}
`;
}

async function workersPeer(extra: Parameters<typeof yaml>[2] = {}): Promise<PeerProcess & { status(): Promise<Status>; dp: number; ap: number }> {
  const [dp, ap] = [await freePort(), await freePort()];
  const peer = await startPeer(yaml(dp, ap, extra), { dataPort: dp, adminPort: ap, dir: tempDir() });
  peers.push(peer);
  const status = async () => (await fetch(`${peer.adminUrl}/api/v1/status`)).json() as Promise<Status>;
  await waitFor(async () => (await status()).workers.every((w) => w.state === 'ready'), 15_000, () => peer.output());
  return Object.assign(peer, { status, dp, ap });
}

async function metric(adminUrl: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) if (line.test(l)) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  return sum;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Keep-alive load from `connections` parallel loops (node:cluster hands connections to the workers in
 * turn, so both get some); resolves with the answers counted by outcome once `stop()` is called.
 */
function load(url: string, connections = 8) {
  const agent = new Agent({ connections, pipelining: 1 });
  let running = true;
  const counts = { ok: 0, failed: 0, statuses: new Map<number, number>() };
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      try {
        const r = await request(`${url}/id`, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
        await r.body.text();
        if (r.statusCode === 200) counts.ok++;
        else {
          counts.failed++;
          counts.statuses.set(r.statusCode, (counts.statuses.get(r.statusCode) ?? 0) + 1);
        }
      } catch {
        counts.failed++;
      }
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
      return counts;
    },
  };
}

describe('node.workers: 2', () => {
  it('both workers serve, status lists them, and /metrics sums them exactly', async () => {
    const peer = await workersPeer();
    const before = await peer.status();
    expect(before.workers).toHaveLength(2);
    const pids = before.workers.map((w) => w.pid);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(peer.proc.pid);
    // Each curl is a new connection: the primary hands them to the workers in turn.
    const n = 40;
    for (let i = 0; i < n; i++) {
      const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${peer.url}/id`]);
      expect(stdout).toBe('200');
    }
    await waitFor(async () => (await peer.status()).workers.reduce((a, w) => a + w.requests, 0) === n, 5_000, () => 'heartbeat totals never reached n');
    const after = await peer.status();
    for (const w of after.workers) expect(w.requests).toBeGreaterThan(0);
    expect(await metric(peer.adminUrl, /^meshgate_requests_total\{service="web",class="2xx"\}/)).toBe(n);
    expect(await metric(peer.adminUrl, /^meshgate_upstream_requests_total\{service="web",/)).toBe(n);
    expect(await metric(peer.adminUrl, /^meshgate_request_duration_seconds_count\{service="web"\}/)).toBe(n);
    // One build_info for the peer, not one per process.
    expect(await metric(peer.adminUrl, /^meshgate_build_info\{/)).toBe(1);
    // The merged scrape is still valid exposition text.
    const lint = runPromtool(['check', 'metrics'], await (await fetch(`${peer.adminUrl}/metrics`)).text());
    expect(lint.out).not.toMatch(/error|duplicate/i);
  });

  it('a worker SIGKILLed under load is replaced; only its in-flight requests fail', async () => {
    const peer = await workersPeer();
    const victim = (await peer.status()).workers[0]!;
    const l = load(peer.url, 8);
    await waitFor(() => l.counts.ok > 500, 20_000, () => 'load did not start');
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(async () => {
      const w = (await peer.status()).workers[0]!;
      return w.pid !== victim.pid && w.state === 'ready' && w.restarts === 1;
    }, 15_000, () => `worker 0 not replaced:\n${peer.output().slice(-2000)}`);
    const okAtReplace = l.counts.ok;
    await waitFor(() => l.counts.ok > okAtReplace + 500, 20_000, () => 'load stalled after the replacement');
    const c = await l.stop();
    // At most one request per connection that worker held (8 connections, 4 each) was cut.
    expect(c.failed).toBeLessThanOrEqual(8);
    expect(alive(victim.pid)).toBe(false);
    expect(await metric(peer.adminUrl, /^meshgate_worker_restarts_total\{worker="0"\}/)).toBe(1);
    expect(await metric(peer.adminUrl, /^meshgate_worker_up\{/)).toBe(2);
  });

  it('a worker that hangs (SIGSTOP) is detected, killed and replaced', async () => {
    const peer = await workersPeer();
    const victim = (await peer.status()).workers[1]!;
    process.kill(victim.pid, 'SIGSTOP');
    try {
      await waitFor(async () => {
        const w = (await peer.status()).workers[1]!;
        return w.pid !== victim.pid && w.state === 'ready';
      }, 20_000, () => `stopped worker not replaced:\n${peer.output().slice(-2000)}`);
    } finally {
      if (alive(victim.pid)) process.kill(victim.pid, 'SIGKILL');
    }
    expect(peer.output()).toMatch(/worker stopped answering; killing it/);
    // Served again by both.
    for (let i = 0; i < 6; i++) expect((await fetch(`${peer.url}/id`)).status).toBe(200);
  });

  it('20 reloads under load fail no request, and every worker takes each one', async () => {
    const peer = await workersPeer();
    const l = load(peer.url, 8);
    await waitFor(() => l.counts.ok > 200, 20_000, () => 'load did not start');
    for (let i = 0; i < 20; i++) {
      // Alternate the upstream set: two backends, then three.
      writeFileSync(peer.configFile, yaml(peer.dp, peer.ap, { ups: i % 2 === 0 ? backends : backends.slice(0, 2) }));
      const r = await (await fetch(`${peer.adminUrl}/api/v1/config/reload`, { method: 'POST' })).json() as { ok: boolean; generation: number };
      expect(r.ok).toBe(true);
    }
    const c = await l.stop();
    expect(c.failed).toBe(0);
    expect(c.ok).toBeGreaterThan(200);
    // The last config (two backends) is what both workers route by: the third gets nothing more.
    const third = backends[2]!.hits;
    for (let i = 0; i < 20; i++) await run('curl', ['-s', '-o', '/dev/null', `${peer.url}/id`]);
    expect(backends[2]!.hits).toBe(third);
  });

  it('outlier detection counts 5xx across the workers, not per worker', async () => {
    const [bad, good] = await Promise.all([startBackend('od-bad'), startBackend('od-good')]);
    try {
      bad.setFailAll(500);
      const peer = await workersPeer({ ups: [bad, good], service: '    outlierDetection: { consecutive5xx: 6, baseEjectionTime: 60s, maxEjectionPercent: 50 }\n' });
      // New connections alternate between the workers; per-worker counting would need 12 failures.
      for (let i = 0; i < 60; i++) await run('curl', ['-s', '-o', '/dev/null', `${peer.url}/id`]);
      const ejected = (await peer.status()).services.web!.upstreams.find((u) => u.id === 'od-bad')!;
      expect(ejected.ejected).toBe(true);
      // The last few may already have been in flight, or routed before the ejection reached both workers.
      expect(bad.hits).toBeGreaterThanOrEqual(6);
      expect(bad.hits).toBeLessThanOrEqual(10); // per-worker counting: at least 12
    } finally {
      await Promise.all([bad.close(), good.close()]);
    }
  });

  it('sticky pins without Redis are the same on every worker (the primary holds them)', async () => {
    const peer = await workersPeer({ ups: backends, service: '    sticky: { cookie: mg_s }\n' });
    const first = await run('curl', ['-s', '-i', `${peer.url}/id`]);
    const cookie = /set-cookie: (mg_s=[^;]+)/i.exec(first.stdout)![1]!;
    const pinned = /\r\n\r\n(.*)$/s.exec(first.stdout)![1]!.trim();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { stdout } = await run('curl', ['-s', '-H', `Cookie: ${cookie}`, `${peer.url}/id`]);
      seen.add(stdout.trim());
    }
    expect([...seen]).toEqual([pinned]);
    // The status page sums the workers' resolver counts (their heartbeats are at most a second old).
    const resolves = async () => ((await (await fetch(`${peer.adminUrl}/api/v1/status`)).json()) as { sticky: { services: { web?: { resolves: number; created: number } } } }).sticky.services.web;
    await waitFor(async () => (await resolves())?.resolves === 21, 5_000, () => 'sticky resolves never summed to 21');
    expect((await resolves())!.created).toBe(1);
  });

  it('a DELETE through the admin API: once it returns, no worker routes to that upstream', async () => {
    const [dp, ap, rp] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir();
    const cluster = `cluster:\n  listen: 127.0.0.1:${rp}\n  dataDir: ${dir}/raft\n  secret: workers-test-secret-0123\n  bootstrap: [{ id: gw-w, address: 127.0.0.1:${rp} }]\n`;
    const extra = await startBackend('w-extra');
    try {
      const peer = await startPeer(yaml(dp, ap, { cluster, ups: [backends[0]!] }), { dataPort: dp, adminPort: ap, dir });
      peers.push(peer);
      const put = await fetch(`${peer.adminUrl}/api/v1/services/web/upstreams/extra`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: extra.url }) });
      expect(put.status).toBe(200);
      const l = load(peer.url, 8);
      await waitFor(() => extra.hits > 50, 20_000, () => 'the new upstream got no traffic');
      const del = await fetch(`${peer.adminUrl}/api/v1/services/web/upstreams/extra`, { method: 'DELETE' });
      expect(del.status).toBe(200);
      const hitsAtReturn = extra.hits;
      const okAtReturn = l.counts.ok;
      await waitFor(() => l.counts.ok > okAtReturn + 400, 20_000, () => 'load stalled');
      await l.stop();
      // Requests already in flight when the DELETE returned may still land (at most one per connection).
      expect(extra.hits - hitsAtReturn).toBeLessThanOrEqual(8);
      const hitsAfter = extra.hits;
      for (let i = 0; i < 20; i++) await run('curl', ['-s', '-o', '/dev/null', `${peer.url}/id`]);
      expect(extra.hits).toBe(hitsAfter);
    } finally {
      await extra.close();
    }
  });

  it('SIGTERM drains every worker and every pid exits', async () => {
    const peer = await workersPeer();
    const pids = (await peer.status()).workers.map((w) => w.pid);
    const slow = fetch(`${peer.url}/slow?ms=600`).then((r) => r.status);
    await new Promise((r) => setTimeout(r, 100));
    const exit = await peer.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(await slow).toBe(200); // the in-flight request finished during the drain
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('a primary SIGKILLed takes its workers with it and leaves no listener bound', async () => {
    const peer = await workersPeer();
    const pids = (await peer.status()).workers.map((w) => w.pid);
    await peer.stop('SIGKILL');
    await waitFor(() => pids.every((p) => !alive(p)), 5_000, () => `workers outlived the primary: ${pids.filter(alive)}`);
    const srv = createServer();
    await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(peer.dp, '127.0.0.1', () => resolve()));
    await new Promise((r) => srv.close(r));
  });
});

describe('node.workers: a worker that cannot start', () => {
  it('a taken data port fails the start with the reason, exit 1, and no worker left behind', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const dp = (taken.address() as { port: number }).port;
    const ap = await freePort();
    const dir = tempDir();
    const file = `${dir}/config.yaml`;
    writeFileSync(file, yaml(dp, ap));
    try {
      const r = await run(process.execPath, [MAIN, '--config', file], { timeout: 30_000 }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/failed to start: worker \d: listen: .*EADDRINUSE/);
      // Every process that ran this config is gone.
      const left = await run('pgrep', ['-f', file]).then((o) => o.stdout.trim(), () => '');
      expect(left).toBe('');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('node.workers: bad values', () => {
  for (const [value, message] of [['0', /node\.workers must be at least 1/], ['-1', /node\.workers must be at least 1/], ['1000', /node\.workers is at most 64/], ['many', /node\.workers/]] as const) {
    it(`workers: ${value} is a config error`, async () => {
      const dir = tempDir();
      const file = `${dir}/c.yaml`;
      writeFileSync(file, yaml(8080, 9901).replace('workers: 2', `workers: ${value}`));
      const r = await run(process.execPath, [MAIN, 'check', file]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    });
  }
  it('workers: auto passes the check (one per CPU core)', async () => {
    const dir = tempDir();
    const file = `${dir}/c.yaml`;
    writeFileSync(file, yaml(8080, 9901).replace('workers: 2', 'workers: auto'));
    const { stdout } = await run(process.execPath, [MAIN, 'check', file]);
    expect(stdout).toMatch(/ok/);
  });
});
