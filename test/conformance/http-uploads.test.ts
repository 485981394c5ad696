/**
 * Uploads through a real meshgate process with real clients (issue 12): curl with its defaults,
 * Python's http.client, raw sockets. Sized and chunked bodies of random sizes from 1 B to 8 MiB,
 * random chunk boundaries and pauses, the first body bytes in the same write as the head; slow
 * uploads. The recording backend's byte count and sha256 must equal what the client sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/meshgate.js';
import { MiB, bytesOf, sha } from './lib/bodies.js';
import { startRecordingBackend, type RecordingBackend } from './lib/http-backend.js';
import { chunked, head, send, type Piece } from './lib/http-raw.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { curl, python } from './lib/http-clients.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
const dir = tempDir('meshgate-uploads-');

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url);
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

/** Park–Miller: the same sizes and cuts every run (the seed is in the test name). */
function prng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

/** 1 B … 8 MiB: the edges, the 1 MiB curl Expect threshold either side, a few odd sizes. */
const SIZES = [1, 2, 1000, 65_535, 65_537, MiB - 1, MiB + 1, 3 * MiB + 17, 8 * MiB];

function fileOf(n: number): { path: string; body: Buffer } {
  const body = bytesOf(n, n + 11);
  const path = join(dir, `body-${n}`);
  writeFileSync(path, body);
  return { path, body };
}

function summary(stdout: string): { bytes: number; sha256: string } {
  const j = JSON.parse(stdout.trim().split('\n').pop()!) as { bytes: number; sha256: string };
  return { bytes: j.bytes, sha256: j.sha256 };
}

describe('curl with its defaults', () => {
  it.each(SIZES)('POST --data-binary of %i bytes, sized (Expect: 100-continue over 1 MiB)', async (n) => {
    const { path, body } = fileOf(n);
    const r = await curl(['-X', 'POST', '--data-binary', `@${path}`, '-H', 'content-type: application/octet-stream', `http://127.0.0.1:${mg.port}/up`]);
    expect(r.stderr).toBe('');
    expect(summary(r.stdout)).toEqual({ bytes: n, sha256: sha(body) });
  });

  it.each([1, 65_537, 5 * MiB, 8 * MiB])('POST chunked of %i bytes (Transfer-Encoding: chunked, Expect left to curl)', async (n) => {
    const { path, body } = fileOf(n);
    const r = await curl(['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${path}`, `http://127.0.0.1:${mg.port}/up`]);
    expect(summary(r.stdout)).toEqual({ bytes: n, sha256: sha(body) });
  });

  it('POST chunked of 5 MiB with Expect disabled (the first chunk rides with the head)', async () => {
    const { path, body } = fileOf(5 * MiB);
    const r = await curl(['-H', 'Expect:', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${path}`, `http://127.0.0.1:${mg.port}/up`]);
    expect(summary(r.stdout)).toEqual({ bytes: 5 * MiB, sha256: sha(body) });
  });

  it('PUT -T of 2 MiB (curl sends Expect: 100-continue)', async () => {
    const { path, body } = fileOf(2 * MiB);
    const r = await curl(['-T', path, '-w', '\\n%{http_code}', `http://127.0.0.1:${mg.port}/up`]);
    const [json, code] = r.stdout.trim().split('\n');
    expect(code).toBe('200');
    expect(summary(json!)).toEqual({ bytes: 2 * MiB, sha256: sha(body) });
    const rec = backend.received.at(-1)!;
    expect(rec.headers.expect).toBeUndefined();
  });
});

const PY_UPLOAD = `
import http.client, sys, json
port, path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection('127.0.0.1', port, timeout=20)
out = []
for i in range(2):  # twice on one kept-alive connection
    with open(path, 'rb') as f:
        if mode == 'chunked':
            conn.request('POST', '/up', body=f, encode_chunked=True, headers={'Transfer-Encoding': 'chunked'})
        else:
            conn.request('PUT', '/up', body=f.read())
    r = conn.getresponse()
    out.append({'status': r.status, **json.loads(r.read())})
print(json.dumps(out))
`;

describe("Python's http.client", () => {
  it.each([[1, 'chunked'], [70_000, 'chunked'], [3 * MiB + 5, 'chunked'], [1, 'sized'], [2 * MiB, 'sized']] as const)('%i bytes %s, twice on one connection', async (n, mode) => {
    const { path, body } = fileOf(n);
    const r = await python(PY_UPLOAD, [String(mg.port), path, mode]);
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as Array<{ status: number; bytes: number; sha256: string }>;
    expect(got.map((g) => [g.status, g.bytes, g.sha256])).toEqual([[200, n, sha(body)], [200, n, sha(body)]]);
  });
});

describe('raw sockets: random chunking and pauses, first chunk with the head', () => {
  const cases = Array.from({ length: 12 }, (_, i) => i + 1);
  it.each(cases)('seed %i', async (seed) => {
    const r = prng(seed * 7919);
    const n = Math.max(1, Math.floor(r() ** 3 * 8 * MiB));
    const body = bytesOf(n, seed);
    const framing = r() < 0.5 ? 'chunked' : 'sized';
    const cuts = Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * n));
    const hs: Array<[string, string]> = [['Host', 'up.test']];
    hs.push(framing === 'chunked' ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(n)]);
    let parts: Buffer[];
    if (framing === 'chunked') parts = chunked(body, cuts);
    else {
      const sorted = [...new Set(cuts)].filter((c) => c > 0).sort((a, b) => a - b);
      parts = [];
      let prev = 0;
      for (const c of [...sorted, n]) {
        if (c > prev) parts.push(body.subarray(prev, c));
        prev = c;
      }
    }
    const first = Buffer.concat([head('POST', '/up', hs), parts.shift()!]);
    const pieces: Piece[] = [{ bytes: first }, ...parts.map((p) => ({ bytes: p, pauseMs: Math.floor(r() * 20) }))];
    const ex = await send(mg.target, pieces, { methods: ['POST'] });
    expect(ex.responses[0]?.status).toBe(200);
    expect(JSON.parse(ex.responses[0]!.body.toString()) as unknown).toMatchObject({ bytes: n, sha256: sha(body) });
  });

  it('the issue-12 reproduction: a whole chunked request in one write', async () => {
    const bytes = Buffer.from('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    const ex = await send(mg.target, [{ bytes }], { methods: ['POST'] });
    expect(JSON.parse(ex.responses[0]!.body.toString()) as unknown).toMatchObject({ bytes: 5, sha256: sha(Buffer.from('hello')) });
  });

  it('a slow upload (64 pieces, 20–40 ms apart) arrives whole', async () => {
    const body = bytesOf(64 * 1024, 5);
    const parts = chunked(body, Array.from({ length: 63 }, (_, i) => (i + 1) * 1024));
    const pieces: Piece[] = [{ bytes: Buffer.concat([head('POST', '/up', [['Host', 'a'], ['Transfer-Encoding', 'chunked']]), parts.shift()!]) }, ...parts.map((p, i) => ({ bytes: p, pauseMs: 20 + (i % 3) * 10 }))];
    const ex = await send(mg.target, pieces, { methods: ['POST'] });
    expect(JSON.parse(ex.responses[0]!.body.toString()) as unknown).toMatchObject({ bytes: body.length, sha256: sha(body) });
  });
});
