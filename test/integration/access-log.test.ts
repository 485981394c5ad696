/**
 * One JSON access-log line per request, with the fields operators grep for, valid JSON even for
 * hostile paths; switchable with node.accessLog.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, waitFor } from '../helpers/meshgate.js';

let backend: Backend;

beforeAll(async () => {
  backend = await startBackend('al');
});
afterAll(async () => {
  await backend?.close();
});

/** A peer in front of the test backend, access log on or off. */
async function startLoggingPeer(id: string, accessLog: boolean): ReturnType<typeof startPeer> {
  const [dp, ap] = [await freePort(), await freePort()];
  return startPeer(`
node:
  id: ${id}
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: ${accessLog}
routes:
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    upstreams: [{ id: al-1, url: ${backend.url} }]
`, { dataPort: dp, adminPort: ap });
}

async function run(accessLog: boolean): Promise<string> {
  const peer = await startLoggingPeer('gw-log', accessLog);
  expect((await fetch(`${peer.url}/id?q=%22quoted%22&u=%E2%9C%93`, { headers: { 'x-request-id': 'log-test-1' } })).status).toBe(200);
  expect((await fetch(`${peer.url}/status/503`, { headers: { 'x-request-id': 'log-test-2' } })).status).toBe(503);
  const exit = await peer.stop('SIGTERM'); // drains and flushes the batched log
  expect(exit.code).toBe(0);
  return peer.output();
}

describe('access log', () => {
  it('writes one parseable JSON line per request with method, path, status, upstream, duration and request id', async () => {
    const out = await run(true);
    const lines = out.split('\n').filter((l) => l.includes('"kind":"access"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const first = lines.find((l) => l.requestId === 'log-test-1');
    expect(first).toMatchObject({ level: 30, node: 'gw-log', kind: 'access', method: 'GET', path: '/id?q=%22quoted%22&u=%E2%9C%93', status: 200, service: 'web', upstream: 'al-1', attempts: 1 });
    expect(typeof first!.durationMs).toBe('number');
    expect(typeof first!.time).toBe('number');
    expect(lines.find((l) => l.requestId === 'log-test-2')).toMatchObject({ status: 503, upstream: 'al-1' });
    expect(lines).toHaveLength(2);
  });

  it('does not hold a line back while the peer runs at low traffic (lines wait at most about a second)', async () => {
    const peer = await startLoggingPeer('gw-log-idle', true);
    try {
      expect((await fetch(`${peer.url}/id`, { headers: { 'x-request-id': 'log-idle-1' } })).status).toBe(200);
      // One short line is far below the 64 KiB batch; it must still reach stdout without a shutdown.
      await waitFor(() => peer.output().includes('"requestId":"log-idle-1"'), 10_000, () => 'the access line never left the batch');
    } finally {
      await peer.stop('SIGTERM');
    }
  });

  it('writes no access lines when switched off', async () => {
    const out = await run(false);
    expect(out).not.toContain('"kind":"access"');
  });
});
