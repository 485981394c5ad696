/**
 * Bad input (issue 12): each gets its exact status and `x-meshgate-reason`, nothing reaches a backend
 * where nothing should, nothing is charged to an upstream that did nothing wrong, and the peer goes on
 * serving. Also the upstream's bad answers: classified as `bad-upstream-response`, not as resets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { startRecordingBackend, startScriptedBackend, type RecordingBackend } from './lib/http-backend.js';
import { chunked, head, send, type RawResponse } from './lib/http-raw.js';
import { metricsText, startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { waitFor } from '../helpers/meshgate.js';

let backend: RecordingBackend;
let bigHeader: Awaited<ReturnType<typeof startScriptedBackend>>;
let early100: Awaited<ReturnType<typeof startScriptedBackend>>;
let mg: ConformancePeer;
const MAX_CONNECTIONS = 40;

beforeAll(async () => {
  backend = await startRecordingBackend();
  bigHeader = await startScriptedBackend(Buffer.from(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\nok`));
  early100 = await startScriptedBackend(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  mg = await startConformancePeer(backend.url, {
    nodeExtra: ['  maxBodySize: 1MiB', '  bodyIdleTimeout: 400ms', '  headersTimeout: 1s', '  requestTimeout: 1500ms', `  maxConnections: ${MAX_CONNECTIONS}`],
    serviceExtra: ['    outlierDetection: { consecutive5xx: 2, consecutiveLocalOriginFailures: 2 }'],
    extraRoutes: [
      { prefix: '/big-header', name: 'bigheader', url: bigHeader.url },
      { prefix: '/early-100', name: 'early100', url: early100.url },
    ],
  });
});
afterAll(async () => {
  await mg?.stop();
  await Promise.all([backend?.close(), bigHeader?.close(), early100?.close()]);
});

async function one(bytes: Buffer | string, method = 'GET'): Promise<RawResponse> {
  const ex = await send(mg.target, [{ bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1') }], { methods: [method] });
  expect(ex.responses.length, `no answer; got ${ex.rest.toString('latin1').slice(0, 200)}`).toBe(1);
  return ex.responses[0]!;
}

/** The peer still serves a plain GET, and the recording backend got it. */
let afterNo = 0;
async function stillServing(): Promise<void> {
  const url = `/after?n=${++afterNo}`;
  const r = await one(`GET ${url} HTTP/1.1\r\nHost: ok\r\nConnection: close\r\n\r\n`);
  expect(r.status).toBe(200);
  expect(backend.received.filter((x) => x.url === url).length).toBe(1);
}

/** Nothing was charged to the recording backend's upstream (no connect error/reset, no ejection). */
async function nothingCharged(): Promise<void> {
  const m = await metricsText(mg.adminUrl);
  expect(m).not.toMatch(/meshgate_upstream_connect_errors_total\{[^}]*upstream="rec-1"/);
  expect(m).not.toMatch(/meshgate_outlier_ejections_enforced_total\{[^}]*upstream="rec-1"[^}]*\} [1-9]/);
  expect(m).toMatch(/meshgate_upstream_healthy\{service="rec",upstream="rec-1"\} 1/);
}

describe('Host (RFC 9112 §3.2)', () => {
  it.each([
    ['a duplicated Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'duplicate-host'],
    ['the same Host twice', 'GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 'duplicate-host'],
    ['Host: a/b@c', 'GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n', 'invalid-host'],
    ['no Host (HTTP/1.1)', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 'missing-host'],
  ])('%s → 400, never forwarded', async (_what, req, reason) => {
    const before = backend.count;
    const r = await one(req);
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([400, reason]);
    expect(backend.count).toBe(before);
    await stillServing();
  });

  it('Connection: host does not strip Host', async () => {
    const r = await one('GET /c HTTP/1.1\r\nHost: routed.example\r\nConnection: host, close\r\n\r\n');
    expect(r.status).toBe(200);
    expect(backend.received.at(-1)!.headers.host).toBe('routed.example');
  });
});

describe('forged forwarding headers', () => {
  it('X-Real-IP and X-Forwarded-For are this peer’s; Forwarded and x-meshgate-fence are dropped', async () => {
    const r = await one('GET /f HTTP/1.1\r\nHost: f\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\nX-Meshgate-Fence: 999999\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
    const h = backend.received.at(-1)!.headers;
    expect(h['x-real-ip']).toBe('127.0.0.1');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h.forwarded).toBeUndefined();
    expect(h['x-meshgate-fence']).toBeUndefined();
  });
});

describe('header limits', () => {
  it('more header lines than node.maxHeadersCount (100) → 431 too-many-headers', async () => {
    const before = backend.count;
    const r = await one(`GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 150 }, (_, i) => `x-h${i}: v\r\n`).join('')}\r\n`);
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([431, 'too-many-headers']);
    expect(backend.count).toBe(before);
  });

  it("2,500 header lines (past Node's own 2,000) → 431, not silently cut", async () => {
    const r = await one(`GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 2500 }, () => 'a: b\r\n').join('')}\r\n`);
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([431, 'too-many-headers']);
    await stillServing();
  });

  it('a header block over node.maxHeaderSize → 431 header-too-large', async () => {
    const r = await one(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([431, 'header-too-large']);
  });

  it('Content-Length with Transfer-Encoding (smuggling) → 400 malformed-request', async () => {
    const before = backend.count;
    const r = await one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'POST');
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([400, 'malformed-request']);
    expect(backend.count).toBe(before);
    await stillServing();
  });
});

describe('body limits (node.maxBodySize 1 MiB)', () => {
  it('a Content-Length over the limit → 413 before any upstream', async () => {
    const before = backend.count;
    const r = await one('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n', 'POST');
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([413, 'body-too-large']);
    expect(backend.count).toBe(before);
  });

  it('a chunked body growing past the limit → 413, three times, and the upstream is not charged', async () => {
    const urls = [0, 1, 2].map((i) => `/up?growing=${i}`);
    // The upstream saw at most an aborted request, never a complete one. (It may have seen none: the
    // limit can be passed before the attempt reaches it, so "the backend's last request" may be an
    // older test's.)
    const completeAtBackend = () => backend.received.filter((r) => urls.includes(r.url) && r.complete);
    for (const url of urls) {
      const body = Buffer.alloc(1536 * 1024, 7);
      const parts = chunked(body, Array.from({ length: 23 }, (_, k) => (k + 1) * 65536));
      const ex = await send(mg.target, [{ bytes: head('POST', url, [['Host', 'a'], ['Transfer-Encoding', 'chunked']]) }, ...parts.map((p) => ({ bytes: p }))], { methods: ['POST'] });
      expect([ex.responses[0]?.status, ex.responses[0]?.headers['x-meshgate-reason']]).toEqual([413, 'body-too-large']);
      expect(completeAtBackend()).toEqual([]);
    }
    await nothingCharged();
    await stillServing();
    expect(completeAtBackend()).toEqual([]);
  });
});

describe('a client that goes away mid-upload', () => {
  it('is not charged to the upstream, three times (reset and plain close)', async () => {
    for (const how of ['reset', 'close', 'reset'] as const) {
      const sock: Socket = connect(mg.port, '127.0.0.1');
      sock.on('error', () => undefined);
      await new Promise((r) => sock.once('connect', r));
      const before = backend.count;
      sock.write(Buffer.concat([head('POST', '/up', [['Host', 'a'], ['Content-Length', '100000']]), Buffer.alloc(1000, 1)]));
      // Wait until the upload is under way at the backend, then vanish.
      await waitFor(() => backend.count > before, 5_000);
      if (how === 'reset') sock.resetAndDestroy();
      else sock.destroy();
      await waitFor(async () => /meshgate_upstream_requests_in_flight\{service="rec",upstream="rec-1"\} 0/.test(await metricsText(mg.adminUrl)), 5_000, () => 'the aborted attempt was not released');
    }
    await nothingCharged();
    await stillServing();
  });
});

describe('timeouts', () => {
  it('a body stalled mid-way → 408 body-timeout after node.bodyIdleTimeout; not charged, three times', async () => {
    for (let i = 0; i < 3; i++) {
      const ex = await send(mg.target, [{ bytes: Buffer.concat([head('POST', '/up', [['Host', 'a'], ['Content-Length', '1000']]), Buffer.alloc(100, 1)]) }], { methods: ['POST'], timeoutMs: 5_000 });
      expect([ex.responses[0]?.status, ex.responses[0]?.headers['x-meshgate-reason']]).toEqual([408, 'body-timeout']);
      expect(ex.responses[0]!.headers.connection).toBe('close');
    }
    await nothingCharged();
    await stillServing();
  });

  it('twenty stalled uploads do not hold back a GET, and each gets its 408', async () => {
    const stalled = Array.from({ length: 20 }, () =>
      send(mg.target, [{ bytes: Buffer.concat([head('PUT', '/up', [['Host', 'a'], ['Transfer-Encoding', 'chunked']]), Buffer.from('5\r\nab')]) }], { methods: ['PUT'], timeoutMs: 5_000 }),
    );
    await stillServing();
    const all = await Promise.all(stalled);
    expect(all.map((e) => e.responses[0]?.status)).toEqual(Array(20).fill(408));
    await nothingCharged();
  });

  it('an upload trickling past node.requestTimeout → 408 request-timeout; not charged', async () => {
    const pieces = [{ bytes: head('POST', '/up', [['Host', 'a'], ['Transfer-Encoding', 'chunked']]) }, ...Array.from({ length: 40 }, () => ({ bytes: Buffer.from('1\r\nx\r\n'), pauseMs: 100 }))];
    const ex = await send(mg.target, pieces, { methods: ['POST'], timeoutMs: 8_000 });
    expect([ex.responses[0]?.status, ex.responses[0]?.headers['x-meshgate-reason']]).toEqual([408, 'request-timeout']);
    await nothingCharged();
    await stillServing();
  });

  it('a request head that never completes → 408 request-timeout after node.headersTimeout', async () => {
    const ex = await send(mg.target, [{ bytes: Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ') }], { methods: ['GET'], timeoutMs: 5_000 });
    expect([ex.responses[0]?.status, ex.responses[0]?.headers['x-meshgate-reason']]).toEqual([408, 'request-timeout']);
  });
});

describe('node.maxConnections', () => {
  it('a connection past the limit is closed at once; the peer serves again once others close', async () => {
    const open: Socket[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const s = connect(mg.port, '127.0.0.1');
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        open.push(s);
      }
      // Node counts a connection once it has accepted it; wait until all are in before the extra one.
      await waitFor(async () => {
        const m = await metricsText(mg.adminUrl);
        // The plain listener's limit, probed on the plain listener (each listener has its own).
        const probe = await send(mg.port, [{ bytes: Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n') }], { methods: ['GET'], timeoutMs: 2_000 });
        return probe.closed && probe.responses.length === 0 && m.length > 0;
      }, 10_000, () => 'the connection past the limit was not closed');
    } finally {
      for (const s of open) s.destroy();
    }
    await waitFor(async () => (await send(mg.port, [{ bytes: Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n') }], { methods: ['GET'], timeoutMs: 2_000 })).responses[0]?.status === 200, 10_000);
  });
});

describe('an upstream that answers before reading the body', () => {
  it('the client gets that answer; the attempt is released exactly once', async () => {
    for (let i = 0; i < 3; i++) {
      const body = Buffer.alloc(600_000, 3);
      const ex = await send(mg.target, [{ bytes: head('POST', '/early/401', [['Host', 'a'], ['Content-Length', String(body.length)]]) }, { bytes: body, pauseMs: 20 }], { methods: ['POST'] });
      expect(ex.responses[0]?.status).toBe(401);
    }
    await waitFor(async () => /meshgate_upstream_requests_in_flight\{service="rec",upstream="rec-1"\} 0\n/.test(await metricsText(mg.adminUrl)), 5_000, () => 'in-flight did not return to 0');
    await stillServing();
  });
});

describe('bad upstream answers', () => {
  async function resetsOf(upstream: string): Promise<number> {
    const m = await metricsText(mg.adminUrl);
    const hit = new RegExp(`meshgate_upstream_connect_errors_total\\{[^}]*upstream="${upstream}"[^}]*cause="reset"[^}]*\\} (\\d+)`).exec(m);
    return hit ? Number(hit[1]) : 0;
  }

  it('a 70 KiB response header → 502 bad-upstream-response, not a reset', async () => {
    const r = await one('GET /big-header HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([502, 'bad-upstream-response']);
    expect(await resetsOf('bigheader-1')).toBe(0);
  });

  it('an unsolicited 100 Continue → 502 bad-upstream-response, not a reset', async () => {
    const r = await one('GET /early-100 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect([r.status, r.headers['x-meshgate-reason']]).toEqual([502, 'bad-upstream-response']);
    expect(await resetsOf('early100-1')).toBe(0);
    await stillServing();
  });
});
