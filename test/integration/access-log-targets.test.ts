/**
 * The access log's fields, formats and targets through a real peer (issue 17): Python's http.client
 * (not our code) sends the requests; the JSON line carries client address, host, user agent, bytes
 * and the upstream address with µs-rounded timings; a text template goes to a file; a file that
 * cannot be opened stops the start with its name and error; a reload that changes the target keeps
 * the running one (restart-only) and says so; under wrk's load and then SIGTERM, the file holds one
 * whole line per request the peer counted (batches written in order, the last one flushed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, tempDir, waitFor } from '../helpers/meshgate.js';

let backend: Backend;
beforeAll(async () => {
  backend = await startBackend('alt');
});
afterAll(async () => {
  await backend?.close();
});

async function config(accessLog: string): Promise<{ yaml: string; dp: number; ap: number }> {
  const [dp, ap] = [await freePort(), await freePort()];
  return {
    dp,
    ap,
    yaml: `
node:
  id: gw-al
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: ${accessLog}
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: al-1, url: ${backend.url} }]
`,
  };
}

/** Python's http.client: a GET with a user agent, then a POST with a 5-byte body. */
async function pythonRequests(port: number): Promise<void> {
  const script = `
import http.client
c = http.client.HTTPConnection("127.0.0.1", ${port}, timeout=5)
c.request("GET", "/download?bytes=1234", headers={"User-Agent": "py-test/1.0", "Host": "shop.example", "X-Request-Id": "al-get"})
r = c.getresponse(); r.read(); assert r.status == 200, r.status
c.request("POST", "/upload", body=b"hello", headers={"X-Request-Id": "al-post"})
r = c.getresponse(); r.read(); assert r.status == 200, r.status
`;
  await promisify(execFile)('python3', ['-c', script], { timeout: 10_000 });
}

describe('access log fields, formats and targets', () => {
  it('JSON to stdout: client address, host, user agent, bytes, upstream address, µs-rounded timings', async () => {
    const c = await config('true');
    const peer = await startPeer(c.yaml, { dataPort: c.dp, adminPort: c.ap });
    await pythonRequests(c.dp);
    expect((await peer.stop()).code).toBe(0);
    const lines = peer.output().split('\n').filter((l) => l.includes('"kind":"access"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const get = lines.find((l) => l.requestId === 'al-get')!;
    expect(get).toMatchObject({ method: 'GET', status: 200, clientIp: '127.0.0.1', host: 'shop.example', userAgent: 'py-test/1.0', bytesSent: 1234, bytesReceived: 0, upstreamAddress: `127.0.0.1:${backend.port}` });
    for (const k of ['durationMs', 'upstreamMs']) expect(String(get[k])).toMatch(/^\d+(\.\d{1,3})?$/);
    expect(lines.find((l) => l.requestId === 'al-post')).toMatchObject({ method: 'POST', bytesReceived: 5, status: 200 });
  });

  it('a text template into a file; a reload that changes the target keeps the running one', async () => {
    const dir = tempDir();
    const file = join(dir, 'access.log');
    const c = await config(`{ format: text, template: '%clientIp% "%method% %path%" %status% %bytesSent% %upstreamAddress% %requestId%', file: ${file} }`);
    const peer = await startPeer(c.yaml, { dataPort: c.dp, adminPort: c.ap });
    writeFileSync(peer.configFile, c.yaml.replace(file, join(dir, 'other.log')));
    const reload = await fetch(`http://127.0.0.1:${c.ap}/api/v1/config/reload`, { method: 'POST' });
    expect(((await reload.json()) as { restartRequired?: string[] }).restartRequired).toContain('node.accessLog');
    await pythonRequests(c.dp);
    expect((await peer.stop()).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(`127.0.0.1 "GET /download?bytes=1234" 200 1234 127.0.0.1:${backend.port} al-get\n`);
    expect(text).toContain('127.0.0.1 "POST /upload" 200 ');
    expect(peer.output()).not.toContain('"kind":"access"');
  });

  it('under wrk load, then SIGTERM: the file holds one whole JSON line per request the peer counted', async () => {
    const dir = tempDir();
    const file = join(dir, 'access.log');
    const c = await config(`{ file: ${file} }`);
    const peer = await startPeer(c.yaml, { dataPort: c.dp, adminPort: c.ap });
    // Many 64 KiB batches (about 450 bytes a line), several written while others fill.
    const { stdout } = await promisify(execFile)('wrk', ['-t1', '-c20', '-d2s', `http://127.0.0.1:${c.dp}/download?bytes=64`], { timeout: 20_000 });
    const completed = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    expect(completed).toBeGreaterThan(1000);
    // wrk closes its connections with requests in flight: the peer answers (and logs) those too.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${c.ap}/api/v1/status`).then((r) => r.json()) as { inFlight?: number }).inFlight === 0, 5000);
    const metrics = await (await fetch(`http://127.0.0.1:${c.ap}/metrics`)).text();
    const counted = [...metrics.matchAll(/^meshgate_requests_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBeGreaterThanOrEqual(completed);
    expect((await peer.stop('SIGTERM')).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines.length).toBe(counted);
    for (const l of lines) expect((JSON.parse(l) as { kind: string }).kind).toBe('access');
    expect(text.length).toBeGreaterThan(8 * 65536);
  });

  it('a target that refuses writes (/dev/full: ENOSPC) is reported once on stderr and requests are still served', async () => {
    const c = await config('{ file: /dev/full }');
    const peer = await startPeer(c.yaml, { dataPort: c.dp, adminPort: c.ap });
    for (let round = 0; round < 3; round++) {
      await pythonRequests(c.dp);
      // Past the 1 s wait, so each round's lines are a batch of their own.
      await new Promise((r) => setTimeout(r, 1100));
    }
    await waitFor(() => peer.output().includes('MESHGATE_ACCESS_LOG'), 3000, () => peer.output());
    expect((await fetch(`${peer.url}/download?bytes=10`)).status).toBe(200);
    expect((await peer.stop('SIGTERM')).code).toBe(0);
    const warnings = peer.output().split('\n').filter((l) => l.includes('access log to /dev/full: writing failed (ENOSPC); the lines of that batch are lost'));
    expect(warnings).toHaveLength(1);
  });

  it('a node that refuses generated code (--disallow-code-generation-from-strings) fails the start naming node.accessLog; with the log off it serves', async () => {
    const env = { NODE_OPTIONS: '--disallow-code-generation-from-strings' };
    const on = await config('true');
    const peer = await startPeer(on.yaml, { dataPort: on.dp, adminPort: on.ap, waitReady: false, env });
    expect((await peer.exited).code).toBe(1);
    expect(peer.output()).toContain('meshgate: failed to start: node.accessLog: the line format is compiled at start, which this node refuses');
    const off = await config('false');
    const plain = await startPeer(off.yaml, { dataPort: off.dp, adminPort: off.ap, env });
    await pythonRequests(off.dp);
    expect((await plain.stop()).code).toBe(0);
  });

  it('a file that cannot be opened fails the start with a clear error', async () => {
    const c = await config('{ file: /nonexistent-dir/meshgate/access.log }');
    const peer = await startPeer(c.yaml, { dataPort: c.dp, adminPort: c.ap, waitReady: false });
    const exit = await peer.exited;
    expect(exit.code).toBe(1);
    await waitFor(() => peer.output().includes('node.accessLog.file'), 2000, () => peer.output());
    expect(peer.output()).toContain('meshgate: failed to start: node.accessLog.file: cannot open /nonexistent-dir/meshgate/access.log: ENOENT');
  });
});
