/**
 * Bad input over HTTP/2 (issue 15: the data-path suite over HTTP/2): connection-specific fields,
 * :authority / Host disagreements, a body longer or shorter than its content-length, a body over
 * node.maxBodySize, a stream the client resets mid-upload. Each gets a clear answer — a 400/413 with
 * its `x-meshgate-reason`, or the stream reset PROTOCOL_ERROR (RFC 9113 §8.1.1: a malformed request is
 * a stream error) — the backend never gets a request that looks complete, nothing is charged to the
 * upstream, and the same connection's other streams go on being served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, type ClientHttp2Session } from 'node:http2';
import { startRecordingBackend, type RecordingBackend, type Received } from './lib/http-backend.js';
import { metricsText, startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { h2Request, h2Session, type H2Piece } from './lib/h2-client.js';
import { rawH2 } from './lib/h2-raw.js';
import { waitFor } from '../helpers/meshgate.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
let session: ClientHttp2Session;

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url, {
    tls: true,
    nodeExtra: ['  maxBodySize: 1MiB'],
    serviceExtra: ['    outlierDetection: { consecutive5xx: 2, consecutiveLocalOriginFailures: 2 }'],
  });
  session = await h2Session(mg.target);
});
afterAll(async () => {
  session?.close();
  await mg?.stop();
  await backend?.close();
});

const { NGHTTP2_PROTOCOL_ERROR } = constants;
const REQ = [[':method', 'GET'], [':scheme', 'https'], [':path', '/rec']] as const;
let caseNo = 0;
const nextCase = (): string => `c${++caseNo}`;
const recordsOf = (id: string): Received[] => backend.received.filter((r) => r.headers['x-case'] === id);

/** The same h2 session still serves a GET, and the backend got it. */
async function stillServing(): Promise<void> {
  const id = nextCase();
  const r = await h2Request(session, { method: 'GET', path: '/after', headers: [['x-case', id]] });
  expect(r.status).toBe(200);
  expect(recordsOf(id).length).toBe(1);
}

/** Nothing charged to the recording backend's upstream, and no attempt left in flight. */
async function nothingCharged(): Promise<void> {
  await waitFor(async () => /meshgate_upstream_requests_in_flight\{service="rec",upstream="rec-1"\} 0/.test(await metricsText(mg.adminUrl)), 5_000, () => 'an attempt was not released');
  const m = await metricsText(mg.adminUrl);
  expect(m).not.toMatch(/meshgate_upstream_connect_errors_total\{[^}]*upstream="rec-1"/);
  expect(m).not.toMatch(/meshgate_outlier_ejections_enforced_total\{[^}]*upstream="rec-1"[^}]*\} [1-9]/);
  expect(m).toMatch(/meshgate_upstream_healthy\{service="rec",upstream="rec-1"\} 1/);
}

/** Whatever of case `id` reached the backend never looked complete to it. */
async function neverComplete(id: string): Promise<void> {
  await nothingCharged();
  expect(recordsOf(id).filter((r) => r.complete)).toEqual([]);
}

const body = (n: number): Buffer => Buffer.alloc(n, 0x61);

describe('connection-specific fields (RFC 9113 §8.2.2) → the stream reset PROTOCOL_ERROR, never forwarded', () => {
  it.each([
    ['connection', 'keep-alive'],
    ['connection', 'close'],
    ['transfer-encoding', 'chunked'],
    ['keep-alive', 'timeout=5'],
    ['upgrade', 'websocket'],
    ['proxy-connection', 'keep-alive'],
    ['te', 'gzip'],
  ])('%s: %s', async (name, value) => {
    const before = backend.count;
    const r = await rawH2(mg.target, { fields: [...REQ, [':authority', 'conformance.test'], [name, value]] });
    expect(r).toMatchObject({ status: undefined, rstCode: NGHTTP2_PROTOCOL_ERROR });
    expect(backend.count).toBe(before);
    await stillServing();
  });

  it('transfer-encoding: chunked on a POST with a body (a smuggling attempt) is refused the same way', async () => {
    const before = backend.count;
    const r = await rawH2(mg.target, { fields: [[':method', 'POST'], [':scheme', 'https'], [':path', '/rec'], [':authority', 'a'], ['transfer-encoding', 'chunked']], data: [Buffer.from('5\r\nhello\r\n0\r\n\r\n')] });
    expect(r.rstCode).toBe(NGHTTP2_PROTOCOL_ERROR);
    expect(backend.count).toBe(before);
    await nothingCharged();
  });
});

describe(':authority and Host (RFC 9113 §8.3.1)', () => {
  it('two :authority fields → the stream reset PROTOCOL_ERROR', async () => {
    const before = backend.count;
    const r = await rawH2(mg.target, { fields: [...REQ, [':authority', 'a.test'], [':authority', 'b.test']] });
    expect(r).toMatchObject({ status: undefined, rstCode: NGHTTP2_PROTOCOL_ERROR });
    expect(backend.count).toBe(before);
  });

  it(':authority and a Host that disagrees → 400 duplicate-host, never forwarded', async () => {
    const before = backend.count;
    const r = await h2Request(session, { method: 'GET', path: '/rec', authority: 'a.test', headers: [['host', 'b.test']] });
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([400, 'duplicate-host']);
    expect(backend.count).toBe(before);
    await stillServing();
  });

  it(':authority and the same Host → one Host', async () => {
    const id = nextCase();
    const r = await h2Request(session, { method: 'GET', path: '/rec', authority: 'a.test', headers: [['host', 'a.test'], ['x-case', id]] });
    expect(r.status).toBe(200);
    expect(recordsOf(id)[0]!.rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]!.toLowerCase() === 'host')).toEqual(['host']);
    expect(recordsOf(id)[0]!.headers.host).toBe('a.test');
  });

  it('no :authority, a Host → served with that Host (RFC 9113 §8.3.1 allows Host instead)', async () => {
    const r = await rawH2(mg.target, { fields: [...REQ, ['host', 'h.test'], ['x-case', 'no-authority']] });
    expect(r.status).toBe(200);
    expect(recordsOf('no-authority')[0]!.headers.host).toBe('h.test');
  });

  // nghttp2's own checks (RFC 9113 §8.3.1 asks for one of the two; one Host at most).
  it.each([
    ['no :authority and no Host', []],
    ['no :authority and two Host fields', [['host', 'a.test'], ['host', 'b.test']]],
  ] as const)('%s → the stream reset PROTOCOL_ERROR, never forwarded', async (_what, extra) => {
    const before = backend.count;
    const r = await rawH2(mg.target, { fields: [...REQ, ...extra] });
    expect(r).toMatchObject({ status: undefined, rstCode: NGHTTP2_PROTOCOL_ERROR });
    expect(backend.count).toBe(before);
  });
});

describe('a body that disagrees with its content-length → the stream reset PROTOCOL_ERROR; the backend never gets it whole', () => {
  it.each([
    ['longer, small (read whole before routing)', 10, [body(20)]],
    ['longer, the excess in its own DATA frame', 10, [body(10), body(1)]],
    ['longer, large (streaming)', 100_000, [body(60_000), body(40_000), body(1)]],
    ['shorter, small', 20, [body(10)]],
    ['shorter, large', 200_000, [body(60_000), body(60_000)]],
  ] as const)('%s', async (_what, length, data) => {
    const id = nextCase();
    const pieces: H2Piece[] = data.map((bytes) => ({ bytes }));
    const r = await h2Request(session, { method: 'POST', path: '/up', headers: [['content-length', String(length)], ['x-case', id]], pieces });
    expect(r.status === 0 || r.status >= 400, `status ${r.status}`).toBe(true);
    if (r.status === 0) expect(r.rstCode).toBe(NGHTTP2_PROTOCOL_ERROR);
    await neverComplete(id);
    await stillServing();
  });
});

describe('node.maxBodySize (1 MiB)', () => {
  it('a content-length over the limit → 413 body-too-large at once, never forwarded', async () => {
    const before = backend.count;
    const r = await h2Request(session, { method: 'POST', path: '/up', headers: [['content-length', String(2 * 1024 * 1024)]], pieces: [{ bytes: body(1000) }], ending: 'none' });
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([413, 'body-too-large']);
    expect(backend.count).toBe(before);
    await nothingCharged();
    await stillServing();
  });

  it('a body of unknown length growing past the limit → 413, three times; the backend never gets it whole', async () => {
    for (let i = 0; i < 3; i++) {
      const id = nextCase();
      const pieces = Array.from({ length: 24 }, () => ({ bytes: body(65_536) }));
      const r = await h2Request(session, { method: 'POST', path: '/up', headers: [['x-case', id]], pieces });
      expect([r.status, r.headers['x-meshgate-reason']]).toEqual([413, 'body-too-large']);
      await neverComplete(id);
    }
    await stillServing();
  });
});

describe('a stream the client resets mid-upload', () => {
  it.each([
    ['content-length, small', true, 5_000],
    ['content-length, large', true, 300_000],
    ['no length, small (read whole before routing)', false, 5_000],
    ['no length, large (streaming)', false, 300_000],
  ] as const)('%s: the backend never gets a request that looks complete; not charged', async (_what, withLength, sent) => {
    for (let i = 0; i < 3; i++) {
      const id = nextCase();
      const headers: Array<[string, string]> = [['x-case', id]];
      if (withLength) headers.push(['content-length', String(sent * 2)]);
      const r = await h2Request(session, { method: 'POST', path: '/up', headers, pieces: [{ bytes: body(sent) }], ending: 'reset' });
      expect(r.rstCode).toBe(constants.NGHTTP2_CANCEL);
      await neverComplete(id);
    }
    await stillServing();
  });
});

describe('an upstream that answers before reading the body', () => {
  it('the client gets that answer, then the stream is ended (RST_STREAM NO_ERROR: stop sending); the attempt is released', async () => {
    const id = nextCase();
    const pieces = Array.from({ length: 8 }, () => ({ bytes: body(32_768), pauseMs: 20 }));
    const r = await h2Request(session, { method: 'POST', path: '/early/403', headers: [['x-case', id], ['content-length', String(1024 * 1024)]], pieces, ending: 'none', timeoutMs: 5_000 });
    expect(r.status).toBe(403);
    expect(r.body.toString()).toBe('refused early\n');
    expect(r.closed, 'the server ended the stream').toBe(true);
    expect(r.rstCode).toBe(0);
    await neverComplete(id);
    await stillServing();
  });
});

describe('what the HTTP/2 front answers before the data path (as node:http2 did for it)', () => {
  it('CONNECT → 405, never forwarded; the connection goes on', async () => {
    const before = backend.count;
    const stream = session.request({ ':method': 'CONNECT', ':authority': 'conformance.test:443' }, { endStream: true });
    stream.on('error', () => undefined);
    const status = await new Promise<number>((resolve) => {
      stream.once('response', (h) => resolve(Number(h[':status'])));
      stream.once('close', () => resolve(0));
    });
    expect(status).toBe(405);
    expect(backend.count).toBe(before);
    await stillServing();
  });

  it('an Expect other than 100-continue → 417 expectation-failed, never forwarded', async () => {
    const before = backend.count;
    const r = await h2Request(session, { method: 'GET', path: '/rec', headers: [['expect', 'x-something']] });
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([417, 'expectation-failed']);
    expect(backend.count).toBe(before);
    await stillServing();
  });

  it('a HEAD answered by meshgate itself (400) carries no body, and its stream ends cleanly', async () => {
    const r = await h2Request(session, { method: 'HEAD', path: '/rec', authority: 'a.test', headers: [['host', 'b.test']] });
    expect([r.status, r.headers['x-meshgate-reason'], r.body.length, r.rstCode]).toEqual([400, 'duplicate-host', 0, 0]);
    await stillServing();
  });
});
