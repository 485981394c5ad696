/**
 * Client timeouts over HTTP/2 (issue 15: the data-path suite over HTTP/2; docs/config.md "Client
 * connections"): node.bodyIdleTimeout and node.requestTimeout apply to each h2 stream as they apply to
 * an HTTP/1.1 request. A stream whose body stalls, or trickles past the whole-request bound, gets its
 * 408 and is then ended (RST_STREAM NO_ERROR: the client is asked to stop sending); its upstream attempt
 * is aborted (the backend never sees the request complete) and not charged; the connection's other
 * streams are served meanwhile. A request received whole is not timed out while its upstream is slow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClientHttp2Session } from 'node:http2';
import { startRecordingBackend, type RecordingBackend, type Received } from './lib/http-backend.js';
import { metricsText, startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { h2Request, h2Session, type H2Answer, type H2Piece } from './lib/h2-client.js';
import { waitFor } from '../helpers/meshgate.js';

let backend: RecordingBackend;
let slow: Server;
let mg: ConformancePeer;
let session: ClientHttp2Session;
const REQUEST_TIMEOUT_MS = 1500;

beforeAll(async () => {
  backend = await startRecordingBackend();
  // Reads the whole body, then answers after twice the request timeout.
  slow = createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end('slow answer\n'), 2 * REQUEST_TIMEOUT_MS));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  mg = await startConformancePeer(backend.url, {
    tls: true,
    nodeExtra: ['  bodyIdleTimeout: 400ms', '  headersTimeout: 1s', `  requestTimeout: ${REQUEST_TIMEOUT_MS}ms`],
    serviceExtra: ['    outlierDetection: { consecutive5xx: 2, consecutiveLocalOriginFailures: 2 }'],
    extraRoutes: [{ prefix: '/slow', name: 'slow', url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}` }],
  });
  session = await h2Session(mg.target);
});
afterAll(async () => {
  session?.close();
  await mg?.stop();
  await backend?.close();
  slow?.closeAllConnections();
  await new Promise((r) => slow?.close(r));
});

let caseNo = 0;
const nextCase = (): string => `t${++caseNo}`;
const recordsOf = (id: string): Received[] => backend.received.filter((r) => r.headers['x-case'] === id);
const body = (n: number): Buffer => Buffer.alloc(n, 0x62);

async function served(): Promise<void> {
  const id = nextCase();
  const r = await h2Request(session, { method: 'GET', path: '/meanwhile', headers: [['x-case', id]] });
  expect(r.status).toBe(200);
  expect(recordsOf(id).length).toBe(1);
}

/** Released, not charged; whatever of `id` reached the backend was cut short. */
async function abortedNotCharged(id: string): Promise<void> {
  await waitFor(async () => /meshgate_upstream_requests_in_flight\{service="rec",upstream="rec-1"\} 0/.test(await metricsText(mg.adminUrl)), 5_000, () => 'the attempt was not released');
  expect(recordsOf(id).filter((r) => r.complete)).toEqual([]);
  const m = await metricsText(mg.adminUrl);
  expect(m).not.toMatch(/meshgate_upstream_connect_errors_total\{[^}]*upstream="rec-1"/);
  expect(m).toMatch(/meshgate_upstream_healthy\{service="rec",upstream="rec-1"\} 1/);
}

/** The 408 with its reason, and the stream ended by the server without error (RST_STREAM NO_ERROR). */
function expect408(r: H2Answer, reason: string): void {
  expect([r.status, r.headers['x-meshgate-reason']]).toEqual([408, reason]);
  expect(r.closed, 'the server ended the stream').toBe(true);
  expect(r.rstCode).toBe(0);
}

describe('node.bodyIdleTimeout (400 ms) over HTTP/2', () => {
  it.each([
    ['content-length, small (read whole before routing: never reaches the backend)', 1000, 100],
    ['content-length, large (streaming: the upstream request is aborted)', 100_000, 30_000],
    ['no length, large (streaming)', undefined, 30_000],
  ] as const)('a body stalled mid-way: %s → 408 body-timeout; other streams served meanwhile', async (_what, length, sent) => {
    const id = nextCase();
    const headers: Array<[string, string]> = [['x-case', id]];
    if (length !== undefined) headers.push(['content-length', String(length)]);
    const stalled = h2Request(session, { method: 'POST', path: '/up', headers, pieces: [{ bytes: body(sent) }], ending: 'none', timeoutMs: 5_000 });
    await served();
    expect408(await stalled, 'body-timeout');
    await abortedNotCharged(id);
  });

  it('twenty stalled streams on one connection do not hold back a GET on it, and each gets its 408', async () => {
    const ids = Array.from({ length: 20 }, () => nextCase());
    const stalled = ids.map((id) => h2Request(session, { method: 'PUT', path: '/up', headers: [['x-case', id]], pieces: [{ bytes: body(20_000) }], ending: 'none', timeoutMs: 5_000 }));
    await served();
    for (const r of await Promise.all(stalled)) expect408(r, 'body-timeout');
    for (const id of ids) await abortedNotCharged(id);
    await served();
  });
});

describe(`node.requestTimeout (${REQUEST_TIMEOUT_MS} ms) over HTTP/2`, () => {
  // A byte every 100 ms: never idle for the body timeout, but the request never completes in time.
  const trickle = (n: number): H2Piece[] => Array.from({ length: n }, () => ({ bytes: body(1), pauseMs: 100 }));

  it.each([
    ['content-length, streaming (the upstream request is aborted)', 100_000, [{ bytes: body(30_000) }, ...trickle(40)]],
    ['no length, small (read whole before routing: never reaches the backend)', undefined, trickle(40)],
  ] as const)('an upload trickling past it: %s → 408 request-timeout; other streams served meanwhile', async (_what, length, pieces) => {
    const id = nextCase();
    const before = (await metricsText(mg.adminUrl)).match(/reason="request-timeout"\} (\d+)/)?.[1] ?? '0';
    const headers: Array<[string, string]> = [['x-case', id]];
    if (length !== undefined) headers.push(['content-length', String(length)]);
    const trickling = h2Request(session, { method: 'POST', path: '/up', headers, pieces, ending: 'none', timeoutMs: 8_000 });
    await served();
    expect408(await trickling, 'request-timeout');
    await abortedNotCharged(id);
    expect((await metricsText(mg.adminUrl)).match(/meshgate_local_responses_total\{service="",status="408",reason="request-timeout"\} (\d+)/)?.[1]).toBe(String(Number(before) + 1));
  });

  it('a request received whole is not timed out while its upstream takes longer than requestTimeout', async () => {
    const r = await h2Request(session, { method: 'POST', path: '/slow', pieces: [{ bytes: body(50_000) }], timeoutMs: 8_000 });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('slow answer\n');
    const get = await h2Request(session, { method: 'GET', path: '/slow', timeoutMs: 8_000 });
    expect(get.status).toBe(200);
  });
});
