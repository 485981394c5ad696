/**
 * Several writers on one stdout pipe: with `workers: 2` both workers write their access-log batches
 * and their operational warnings to the stdout they inherit, as a container's log driver reads it.
 * Under wrk's load against an upstream that refuses connections (a 502 and a warning per request),
 * every line read from the pipe must be whole JSON. Before writes to a pipe were cut at line ends
 * within PIPE_BUF, 155 of 55,603 lines came out cut in two (another writer's bytes inside them).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, startPeer, waitFor, type PeerProcess } from '../helpers/meshgate.js';

let peer: PeerProcess | undefined;
afterAll(async () => {
  await peer?.stop('SIGKILL');
});

describe('access log to a stdout pipe shared by two workers', () => {
  it('under wrk load with a warning per request, every line on the pipe is whole JSON', async () => {
    const [dp, ap, dead] = [await freePort(), await freePort(), await freePort()];
    peer = await startPeer(`
node:
  id: gw-pipe
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  workers: 2
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: gone, url: http://127.0.0.1:${dead} }]
`, { dataPort: dp, adminPort: ap });
    // A reader that lags, as a log shipper does: the pipe fills, and a long write waits half done.
    let stdout = '';
    const out = peer.proc.stdout!;
    out.on('data', (c: Buffer) => {
      stdout += c.toString();
      out.pause();
      setTimeout(() => out.resume(), 4);
    });
    await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${ap}/api/v1/status`)).json()) as { workers?: Array<{ state: string }> }).workers?.filter((w) => w.state === 'ready').length === 2, 15_000);
    const { stdout: report } = await promisify(execFile)('wrk', ['-t2', '-c40', '-d3s', `http://127.0.0.1:${dp}/x`], { timeout: 20_000 });
    const answered = Number(/(\d+) requests in/.exec(report)?.[1]);
    expect(answered).toBeGreaterThan(1000);
    expect((await peer.stop('SIGTERM')).code).toBe(0);
    // The first chunk may start inside a line written before we listened; the rest must be whole.
    const lines = stdout.slice(stdout.indexOf('\n') + 1).split('\n');
    expect(lines.pop()).toBe('');
    const cut = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(cut.slice(0, 3)).toEqual([]);
    const access = lines.filter((l) => l.includes('"kind":"access"'));
    expect(access.length).toBeGreaterThanOrEqual(answered);
    // Both workers wrote warnings (their lines carry the worker index).
    expect(new Set(lines.flatMap((l) => /"worker":(\d+)/.exec(l)?.[1] ?? []))).toEqual(new Set(['0', '1']));
  });
});
