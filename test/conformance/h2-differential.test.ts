/**
 * Differential fuzz over HTTP/2 (issue 15: the data-path suite over HTTP/2 too): random request shapes
 * — method, target, end-to-end headers (repeats included), body size 0…400 KB cut into random DATA
 * frames with pauses, with or without content-length, `Expect: 100-continue`, an empty body as
 * END_STREAM on HEADERS or as an empty DATA frame — are sent through a real meshgate process over h2
 * (node:http2, one multiplexed session), and the same request is sent straight to the recording
 * backend over HTTP/1.1 (raw socket: Content-Length when the h2 request had one, chunked when it had a
 * body of unknown length). The backend must see the same body (bytes, sha256) and end-to-end header
 * list; the client the same status, interim `100`s and body. FC_SEED / FC_RUNS override the defaults.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ClientHttp2Session } from 'node:http2';
import { hashedBytes } from './lib/bodies.js';
import { startRecordingBackend, endToEnd, type RecordingBackend, type Received } from './lib/http-backend.js';
import { chunked, head, send, type Piece } from './lib/http-raw.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { h2Request, h2Session, wireOrder, type H2Piece } from './lib/h2-client.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
let session: ClientHttp2Session;

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url, { tls: true });
  session = await h2Session(mg.target);
});
afterAll(async () => {
  session?.close();
  await mg?.stop();
  await backend?.close();
});

const HEADER_NAMES = ['accept', 'user-agent', 'x-a', 'X-Mixed-Case', 'x-dup', 'cache-control', 'traceparent', 'te'];
const headerArb = fc.tuple(fc.constantFrom(...HEADER_NAMES), fc.stringMatching(/^[!-~]([ !-~]{0,30}[!-~])?$/)).map(([k, v]): [string, string] => [k, k === 'te' ? 'trailers' : v]);

const ONCE = new Set(['user-agent', 'te']);

const shapeArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
  target: fc.constantFrom('/rec', '/status/200', '/status/201', '/status/204', '/status/404', '/status/500', '/rec?q=1&r=%20x'),
  // node:http2 refuses a repeated user-agent (a single-value field) or te; the other names may repeat.
  headers: fc.array(headerArb, { maxLength: 6 }).map((hs) => hs.filter(([k], i) => !ONCE.has(k) || hs.findIndex(([n]) => n === k) === i)),
  size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 65, max: 70_000 }), fc.integer({ min: 70_001, max: 400_000 })),
  /** The body goes out at all (size 0 with a body: an empty DATA frame with END_STREAM). */
  hasBody: fc.boolean(),
  withLength: fc.boolean(),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
  pauses: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 10, maxLength: 10 }),
  bodySeed: fc.integer({ min: 0, max: 1 << 30 }),
  expect100: fc.boolean(),
});
type Shape = typeof shapeArb extends fc.Arbitrary<infer T> ? T : never;

function bodyOf(s: Shape): Buffer {
  if (!s.hasBody) return Buffer.alloc(0);
  return hashedBytes(s.size, s.bodySeed);
}

/** The body cut at the shape's offsets (each part one or more DATA frames, or one chunk). */
function parts(s: Shape, body: Buffer): Buffer[] {
  const sorted = [...new Set(s.cuts.map((c) => Math.floor(c * body.length)))].filter((c) => c > 0 && c < body.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...sorted, body.length]) {
    if (c > prev) out.push(body.subarray(prev, c));
    prev = c;
  }
  return out;
}

const expects = (s: Shape): boolean => s.expect100 && s.hasBody && s.size > 0;

function viaH2(s: Shape, caseId: string): ReturnType<typeof h2Request> {
  const body = bodyOf(s);
  const headers: Array<[string, string]> = [...s.headers, ['x-case', caseId]];
  if (s.withLength && s.hasBody) headers.push(['content-length', String(body.length)]);
  const pieces: H2Piece[] = parts(s, body).map((bytes, i) => ({ bytes, pauseMs: s.pauses[i % s.pauses.length] }));
  return h2Request(session, { method: s.method, path: s.target, headers, pieces, expect100: expects(s), emptyData: s.hasBody && body.length === 0 });
}

/** The HTTP/1.1 request the h2 one stands for, straight to the backend. */
function direct(s: Shape, caseId: string): ReturnType<typeof send> {
  const body = bodyOf(s);
  // The order HTTP/2 carries the fields in (repeats grouped), Host first as :authority becomes Host.
  const hs: Array<[string, string]> = [['host', 'conformance.test'], ...wireOrder([...s.headers, ['x-case', caseId]]), ['connection', 'close']];
  const framing = !s.hasBody ? 'none' : s.withLength ? 'length' : 'chunked';
  if (framing === 'length') hs.push(['content-length', String(body.length)]);
  if (framing === 'chunked') hs.push(['transfer-encoding', 'chunked']);
  if (expects(s)) hs.push(['expect', '100-continue']);
  const bodyParts = framing === 'chunked' ? chunked(body, parts(s, body).slice(0, -1).reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + p.length], [])) : parts(s, body);
  const h: Piece = { bytes: head(s.method, s.target, hs) };
  const rest: Piece[] = bodyParts.map((bytes) => ({ bytes }));
  if (!expects(s)) return send(backend.port, [h, ...rest], { methods: [s.method] });
  return send(backend.port, [h], { methods: [s.method], onInterim: (st) => (st === 100 ? rest : undefined) });
}

const recordOf = (caseId: string): Received | undefined => backend.received.find((r) => r.headers['x-case'] === caseId);

let caseNo = 0;

describe('differential over HTTP/2: h2 through meshgate vs HTTP/1.1 straight to the backend', () => {
  it('the backend sees the same body and end-to-end headers; the client the same status, 100s and body', async () => {
    const seed = Number(process.env.FC_SEED ?? 1);
    const numRuns = Number(process.env.FC_RUNS ?? 40);
    await fc.assert(
      fc.asyncProperty(shapeArb, async (s) => {
        const n = ++caseNo;
        const d = await direct(s, `d${n}`);
        const via = await viaH2(s, `m${n}`);
        const rd = recordOf(`d${n}`);
        const rm = recordOf(`m${n}`);
        expect(rd, 'direct request reached the backend').toBeDefined();
        expect(rm, 'proxied request reached the backend').toBeDefined();
        expect({ bytes: rm!.bytes, sha256: rm!.sha256, complete: rm!.complete }).toEqual({ bytes: rd!.bytes, sha256: rd!.sha256, complete: rd!.complete });
        expect(rm!.method).toBe(rd!.method);
        expect(rm!.url).toBe(rd!.url);
        expect(endToEnd(rm!.rawHeaders).map((h) => h.replace(/^x-case: m/, 'x-case: '))).toEqual(endToEnd(rd!.rawHeaders).map((h) => h.replace(/^x-case: d/, 'x-case: ')));
        expect(via.closed).toBe(true);
        expect(via.status).toBe(d.responses[0]!.status);
        expect(via.interim).toEqual(d.responses[0]!.interim);
        expect(via.body.toString('latin1')).toBe(d.responses[0]!.body.toString('latin1'));
      }),
      { seed, numRuns, endOnFailure: true },
    );
  }, 120_000);
});
