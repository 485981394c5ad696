/**
 * `Expect: 100-continue` (issue 12): the peer answers `100 Continue` once an upstream connection is
 * there, never forwards `Expect`, and to a route whose upstreams are all down the client gets its
 * final 5xx without sending the body. Clients: curl with its defaults (it sends Expect for bodies over
 * 1 MiB and for -T), raw sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/meshgate.js';
import { startRecordingBackend, type RecordingBackend } from './lib/http-backend.js';
import { head, send } from './lib/http-raw.js';
import { metricsText, startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { curl } from './lib/http-clients.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
const dir = tempDir('meshgate-expect-');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url, { serviceExtra: ['    outlierDetection: { consecutive5xx: 2, consecutiveLocalOriginFailures: 2 }'] });
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

describe('Expect: 100-continue', () => {
  it('raw: 100 Continue comes before the body is sent, then the whole body reaches the backend', async () => {
    const body = randomBytes(300_000);
    const ex = await send(mg.target, [{ bytes: head('POST', '/up', [['Host', 'e'], ['Content-Length', String(body.length)], ['Expect', '100-continue']]) }], {
      methods: ['POST'],
      onInterim: (status) => (status === 100 ? [{ bytes: body }] : undefined),
    });
    expect(ex.responses[0]!.interim).toEqual([100]);
    expect(ex.responses[0]!.status).toBe(200);
    expect(JSON.parse(ex.responses[0]!.body.toString()) as unknown).toMatchObject({ bytes: body.length, sha256: sha(body) });
    expect(backend.received.at(-1)!.headers.expect).toBeUndefined();
  });

  it('raw, chunked: the same', async () => {
    const ex = await send(mg.target, [{ bytes: head('PUT', '/up', [['Host', 'e'], ['Transfer-Encoding', 'chunked'], ['Expect', '100-Continue']]) }], {
      methods: ['PUT'],
      onInterim: () => [{ bytes: Buffer.from('3\r\nabc\r\n0\r\n\r\n') }],
    });
    expect(ex.responses[0]!.interim).toEqual([100]);
    expect(JSON.parse(ex.responses[0]!.body.toString()) as unknown).toMatchObject({ bytes: 3, sha256: sha(Buffer.from('abc')) });
  });

  it('raw: to a route whose upstreams are down, a final 502 without a 100 and without sending the body', async () => {
    const before = backend.count;
    const ex = await send(mg.target, [{ bytes: head('POST', '/down/x', [['Host', 'e'], ['Content-Length', '1000000'], ['Expect', '100-continue']]) }], { methods: ['POST'], onInterim: () => undefined });
    expect(ex.responses[0]!.status).toBe(502);
    expect(ex.responses[0]!.interim).toEqual([]);
    expect(ex.responses[0]!.headers['x-meshgate-reason']).toBe('upstream-connect-failure');
    // The body was never sent, so the connection cannot be reused (RFC 9110 §10.1.1).
    expect(ex.responses[0]!.headers.connection).toBe('close');
    expect(backend.count).toBe(before);
  });

  it('curl -T (Expect by default) to a route whose upstreams are down: 502, zero bytes uploaded', async () => {
    const path = join(dir, 'two-mib');
    writeFileSync(path, randomBytes(2 * 1024 * 1024));
    const r = await curl(['-T', path, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', `http://127.0.0.1:${mg.port}/down/up`]);
    expect(r.stdout).toBe('502 0');
  });

  it('curl -T (Expect by default), 2 MiB: 200 and the same bytes; nothing charged to the upstream', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 3);
    const path = join(dir, 'up');
    writeFileSync(path, body);
    for (let i = 0; i < 3; i++) {
      const r = await curl(['-T', path, `http://127.0.0.1:${mg.port}/up`]);
      expect(JSON.parse(r.stdout) as unknown).toMatchObject({ bytes: body.length, sha256: sha(body) });
    }
    const m = await metricsText(mg.adminUrl);
    expect(m).not.toMatch(/meshgate_upstream_connect_errors_total\{[^}]*upstream="rec-1"/);
    expect(m).not.toMatch(/meshgate_outlier_ejections_enforced_total\{[^}]*upstream="rec-1"[^}]*\} [1-9]/);
  });

  it('another expectation → 417 expectation-failed, never forwarded', async () => {
    const before = backend.count;
    const ex = await send(mg.target, [{ bytes: head('POST', '/up', [['Host', 'e'], ['Content-Length', '0'], ['Expect', 'teapot']]) }], { methods: ['POST'] });
    expect(ex.responses[0]!.status).toBe(417);
    expect(ex.responses[0]!.headers['x-meshgate-reason']).toBe('expectation-failed');
    expect(backend.count).toBe(before);
  });
});
