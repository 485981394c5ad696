/**
 * Differential fuzz (issue 12): random request shapes — method, end-to-end headers, body framing
 * (none / Content-Length / chunked), chunk boundaries, the first body bytes in the same write as the
 * head or not, pauses between writes — are sent over raw sockets once straight to the recording
 * backend and once through a real meshgate process. The backend must see the same body (bytes and
 * sha256) and the same end-to-end header list; the client the same status and body.
 *
 * Before the fix (one body consumer), seed 1 failed at its 7th run: a chunked PUT of 375,707 bytes, the
 * first chunk in the head's write, reached the backend as 85,054 bytes (fast-check path "6"). FC_SEED /
 * FC_RUNS override the defaults.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hashedBytes } from './lib/bodies.js';
import { startRecordingBackend, endToEnd, type RecordingBackend, type Received } from './lib/http-backend.js';
import { chunked, head, send, type Piece } from './lib/http-raw.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import type { Target } from './lib/transport.js';

let backend: RecordingBackend;
let mg: ConformancePeer;

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url);
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

const HEADER_NAMES = ['accept', 'user-agent', 'x-a', 'X-Mixed-Case', 'x-dup', 'cache-control', 'traceparent'];
const headerArb = fc.tuple(fc.constantFrom(...HEADER_NAMES), fc.stringMatching(/^[!-~]([ !-~]{0,30}[!-~])?$/));

const shapeArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
  target: fc.constantFrom('/rec', '/status/200', '/status/201', '/status/204', '/status/404', '/status/500', '/rec?q=1&r=%20x'),
  headers: fc.array(headerArb, { maxLength: 6 }),
  framing: fc.constantFrom('none', 'length', 'chunked'),
  size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 65, max: 70_000 }), fc.integer({ min: 70_001, max: 400_000 })),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
  firstWithHead: fc.boolean(),
  pauses: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 10, maxLength: 10 }),
  bodySeed: fc.integer({ min: 0, max: 1 << 30 }),
  /** `Expect: 100-continue`: the head alone, the body only after the 100 (as curl and .NET do). */
  expect100: fc.boolean(),
});
type Shape = typeof shapeArb extends fc.Arbitrary<infer T> ? T : never;

let caseNo = 0;

/** Deterministic bytes for a shape (the same body goes direct and through meshgate). */
function bodyOf(s: Shape): Buffer {
  if (s.framing === 'none') return Buffer.alloc(0);
  return hashedBytes(s.size, s.bodySeed);
}

function pieces(s: Shape, caseId: string): Piece[] {
  const body = bodyOf(s);
  const hs: Array<[string, string]> = [['Host', 'conformance.test'], ...s.headers, ['x-case', caseId], ['Connection', 'close']];
  if (s.framing === 'length') hs.push(['Content-Length', String(body.length)]);
  if (s.framing === 'chunked') hs.push(['Transfer-Encoding', 'chunked']);
  if (expects(s)) hs.push(['Expect', '100-continue']);
  const cuts = s.cuts.map((c) => Math.floor(c * body.length));
  let parts: Buffer[];
  if (s.framing === 'chunked') parts = chunked(body, cuts);
  else if (s.framing === 'length') {
    const sorted = [...new Set(cuts)].filter((c) => c > 0 && c < body.length).sort((a, b) => a - b);
    parts = [];
    let prev = 0;
    for (const c of [...sorted, body.length]) {
      if (c > prev) parts.push(body.subarray(prev, c));
      prev = c;
    }
  } else parts = [];
  const h = head(s.method, s.target, hs);
  const out: Piece[] = [];
  if (s.firstWithHead && parts.length > 0 && !expects(s)) out.push({ bytes: Buffer.concat([h, parts.shift()!]) });
  else out.push({ bytes: h });
  parts.forEach((p, i) => out.push({ bytes: p, pauseMs: s.pauses[i % s.pauses.length] }));
  return out;
}

function expects(s: Shape): boolean {
  return s.expect100 && s.framing !== 'none' && s.size > 0;
}

/** Writes the head, and (with Expect) the body once the 100 came. */
function exchange(port: number | Target, s: Shape, caseId: string): ReturnType<typeof send> {
  const all = pieces(s, caseId);
  if (!expects(s)) return send(port, all, { methods: [s.method] });
  return send(port, all.slice(0, 1), { methods: [s.method], onInterim: (st) => (st === 100 ? all.slice(1) : undefined) });
}

function recordOf(caseId: string): Received | undefined {
  return backend.received.find((r) => r.headers['x-case'] === caseId);
}

describe('differential: direct vs through meshgate', () => {
  it('the backend sees the same body and end-to-end headers; the client the same status and body', async () => {
    const seed = Number(process.env.FC_SEED ?? 1);
    const numRuns = Number(process.env.FC_RUNS ?? 40);
    await fc.assert(
      fc.asyncProperty(shapeArb, async (s) => {
        const n = ++caseNo;
        const direct = await exchange(backend.port, s, `d${n}`);
        const via = await exchange(mg.target, s, `m${n}`);
        const rd = recordOf(`d${n}`);
        const rm = recordOf(`m${n}`);
        expect(rd, 'direct request reached the backend').toBeDefined();
        expect(rm, 'proxied request reached the backend').toBeDefined();
        expect({ bytes: rm!.bytes, sha256: rm!.sha256, complete: rm!.complete }).toEqual({ bytes: rd!.bytes, sha256: rd!.sha256, complete: rd!.complete });
        expect(rm!.method).toBe(rd!.method);
        expect(rm!.url).toBe(rd!.url);
        expect(endToEnd(rm!.rawHeaders).map((h) => h.replace(/^x-case: m/, 'x-case: '))).toEqual(endToEnd(rd!.rawHeaders).map((h) => h.replace(/^x-case: d/, 'x-case: ')));
        expect(via.responses.length).toBe(1);
        expect(via.responses[0]!.status).toBe(direct.responses[0]!.status);
        expect(via.responses[0]!.interim).toEqual(direct.responses[0]!.interim);
        expect(via.responses[0]!.body.toString('latin1')).toBe(direct.responses[0]!.body.toString('latin1'));
      }),
      { seed, numRuns, endOnFailure: true },
    );
  });
});
