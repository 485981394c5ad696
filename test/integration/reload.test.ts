/**
 * Hot reload (issue 5): the file rewritten under load, slow requests to a removed upstream, a
 * WebSocket across reloads, and invalid files rejected with their line while the old config serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, waitFor, type PeerProcess } from '../helpers/meshgate.js';

let backends: Backend[];
let peer: PeerProcess;
let dp: number, ap: number;

function config(set: 'x' | 'y', extra = ''): string {
  const ups = (set === 'x' ? backends.slice(0, 2) : backends.slice(1, 3)).map((b) => `      - { id: ${b.name}, url: ${b.url} }`).join('\n');
  return `
node:
  id: gw-reload
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
  - { match: { pathPrefix: /ws }, service: stable }
  - { match: { pathPrefix: / }, service: web }
services:
  stable:
    upstreams:
      - { id: s1, url: ${backends[3]!.url} }
  web:
    balancer: round-robin
    upstreams:
${ups}
${extra}`;
}

async function status(): Promise<{ generation: number; lastReload: { ok: boolean; errors?: string[] } }> {
  return (await fetch(`${peer.adminUrl}/api/v1/status`)).json() as never;
}

beforeAll(async () => {
  backends = await Promise.all(['r1', 'r2', 'r3', 'stable'].map((n) => startBackend(n)));
  [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(config('x'), { dataPort: dp, adminPort: ap });
});

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await Promise.all(backends.map((b) => b.close()));
});

describe('hot reload', () => {
  it('rewrites under load: zero failed requests, every generation seen', async () => {
    const agent = new Agent({ connections: 32 });
    let ok = 0;
    let failed = 0;
    const errors: string[] = [];
    let stop = false;
    const clients = Array.from({ length: 32 }, async () => {
      while (!stop) {
        try {
          const r = await request(`${peer.url}/id`, { dispatcher: agent });
          await r.body.text();
          if (r.statusCode === 200) ok++;
          else {
            failed++;
            errors.push(`status ${r.statusCode}`);
          }
        } catch (e) {
          failed++;
          errors.push((e as Error).message);
        }
      }
    });
    const seen = new Set<number>();
    const startGen = (await status()).generation;
    const t0 = Date.now();
    let writes = 0;
    // At least 20 rewrites over at least 10 s, alternating upstream sets and write styles.
    while (writes < 20 || Date.now() - t0 < 10_000) {
      const text = config(writes % 2 === 0 ? 'y' : 'x', `# write ${writes}\n`);
      if (writes % 2 === 0) {
        const tmp = join(peer.dir, `.config.yaml.tmp${writes}`);
        writeFileSync(tmp, text);
        renameSync(tmp, peer.configFile);
      } else {
        writeFileSync(peer.configFile, text);
      }
      writes++;
      const want = startGen + writes;
      await waitFor(async () => {
        const s = await status();
        seen.add(s.generation);
        return s.generation >= want;
      }, 10_000, () => `generation ${want} never appeared`);
      await new Promise((r) => setTimeout(r, 300));
    }
    stop = true;
    await Promise.all(clients);
    await agent.close();
    expect(errors.slice(0, 5)).toEqual([]);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(1000);
    for (let g = startGen + 1; g <= startGen + writes; g++) expect(seen.has(g)).toBe(true);
  }, 60_000);

  it('lets slow requests to a removed upstream finish, and sends it nothing new', async () => {
    writeFileSync(peer.configFile, config('x', '# slow-1\n'));
    await waitFor(async () => (await status()).lastReload.ok && (await fetch(`${peer.adminUrl}/api/v1/status`).then((r) => r.text())).includes('"r1"'), 10_000);
    const r1 = backends[0]!;
    // Round-robin over r1, r2: of four slow requests, two land on r1.
    const slow = Array.from({ length: 4 }, () => fetch(`${peer.url}/slow?ms=1500`).then(async (r) => ({ status: r.status, body: await r.text() })));
    await waitFor(() => r1.received.filter((q) => q.url === '/slow?ms=1500').length >= 2, 5000);
    const gen = (await status()).generation;
    writeFileSync(peer.configFile, config('y', '# slow-2\n'));
    await waitFor(async () => (await status()).generation > gen, 10_000);
    const hitsAfterSwap = r1.hits;
    for (let i = 0; i < 20; i++) expect(await (await fetch(`${peer.url}/id`)).text()).not.toBe('r1');
    const results = await Promise.all(slow);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body === 'r1')).toHaveLength(2);
    expect(r1.hits).toBe(hitsAfterSwap);
  });

  it('keeps a WebSocket to an unchanged upstream open across 10 reloads', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${dp}/ws`);
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    let closed = false;
    ws.once('close', () => (closed = true));
    for (let i = 0; i < 10; i++) {
      const gen = (await status()).generation;
      writeFileSync(peer.configFile, config(i % 2 ? 'x' : 'y', `# ws ${i}\n`));
      await waitFor(async () => (await status()).generation > gen, 10_000);
      const echo = await new Promise<string>((resolve) => {
        ws.once('message', (m) => resolve(m.toString()));
        ws.send(`ping${i}`);
      });
      expect(echo).toBe(`stable:ping${i}`);
    }
    expect(closed).toBe(false);
    ws.close();
  });

  it.each([
    ['invalid YAML', (good: string) => good.replace('routes:', 'routes: [\n'), /:\d+:\d+: YAML/],
    ['an unknown key', (good: string) => good.replace('  accessLog: false', '  accessLog: false\n  colour: blue'), /:7:3: unknown key "colour" in node/],
    ['a bad duration', (good: string) => good.replace('  stable:\n', '  stable:\n    timeouts: { connect: 5 parsecs }\n'), /:12:26: services\.stable\.timeouts\.connect: invalid duration/],
    ['a route naming an unknown service', (good: string) => good.replace('service: stable', 'service: ghost'), /:8:44: routes\.0\.service: route names unknown service "ghost"/],
  ])('rejects %s with its line and keeps serving the old config', async (_name, mutate, pattern) => {
    const good = config('x', '# good\n');
    writeFileSync(peer.configFile, good);
    await waitFor(async () => {
      const s = await status();
      return s.lastReload.ok;
    }, 10_000);
    const res = await fetch(`${peer.adminUrl}/api/v1/config/reload`, { method: 'POST' });
    expect(res.status).toBe(200);
    const gen = (await status()).generation;
    writeFileSync(peer.configFile, mutate(good));
    const r = await fetch(`${peer.adminUrl}/api/v1/config/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { ok: boolean; errors: string[] };
    expect(body.ok).toBe(false);
    expect(body.errors.join('\n')).toMatch(pattern);
    expect(body.errors[0]!.startsWith(peer.configFile)).toBe(true);
    const s = await status();
    expect(s.generation).toBe(gen);
    expect(s.lastReload.ok).toBe(false);
    expect((await fetch(`${peer.url}/id`)).status).toBe(200);
    const metrics = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/meshgate_config_reloads_total\{result="rejected"\} [1-9]/);
  });
});
