/**
 * The slow-trickle attack (issue 12): many POSTs whose small bodies arrive a byte at a time must not
 * hold the upstream's capacity. With request buffering (`node.requestBufferSize`, default 16KiB) a
 * small body is read whole before an upstream is picked, so while the tricklers trickle the backend
 * has seen none of them and a GET to the same upstream is answered. Capacity here is the service's
 * circuit breaker (`maxInFlight: 20`), which counts exactly what a trickler would hold: an attempt on an
 * upstream connection (the undici pool itself has 256 connections per origin, too many to exhaust in a
 * short test). Without buffering the first 20 tricklers take every slot and the GET gets 503.
 * Afterwards every trickler's exact bytes reach the backend (sha256). Real peer process, raw sockets.
 * `TRICKLE_BUFFER=0 npx vitest run test/conformance/http-trickle.test.ts` turns buffering off: the GET
 * then gets 503 circuit-open (the test fails, as it must).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { waitFor } from '../helpers/meshgate.js';
import { startRecordingBackend, type RecordingBackend } from './lib/http-backend.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';

const TRICKLERS = 50;
const CHUNKED_EVERY = 5; // every 5th trickler sends its body chunked, the rest with Content-Length
/** Body sizes vary (BODY_BYTES + i % 10) so the tricklers finish spread out, not as one burst past the breaker. */
const BODY_BYTES = 6;
const BYTE_EVERY_MS = 400;
const MAX_IN_FLIGHT = 20;

let backend: RecordingBackend;
let mg: ConformancePeer;
beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url, { nodeExtra: [`  requestBufferSize: ${process.env.TRICKLE_BUFFER ?? '16KiB'}`], serviceExtra: [`    circuitBreaker: { maxInFlight: ${MAX_IN_FLIGHT} }`] });
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

interface Trickler {
  readonly url: string;
  readonly body: Buffer;
  readonly sock: Socket;
  answer: string;
  /** Every body byte written. */
  sent: boolean;
  readonly closed: Promise<void>;
  timer?: NodeJS.Timeout;
}

function trickle(port: number, i: number): Trickler {
  const chunked = i % CHUNKED_EVERY === 0;
  const url = `/trickle/${i}`;
  const body = randomBytes(BODY_BYTES + (i % 10));
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  const t: Trickler = { url, body, sock, answer: '', sent: false, closed: new Promise((resolve) => sock.once('close', () => resolve())) };
  sock.on('data', (c: Buffer) => (t.answer += c.toString('latin1')));
  const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
  sock.write(`POST ${url} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n${framing}\r\n\r\n`);
  let off = 0;
  const next = (): void => {
    if (sock.destroyed) return;
    const byte = body.subarray(off, off + 1);
    sock.write(chunked ? Buffer.concat([Buffer.from('1\r\n'), byte, Buffer.from('\r\n')]) : byte);
    off++;
    if (off < body.length) {
      t.timer = setTimeout(next, BYTE_EVERY_MS);
      return;
    }
    if (chunked) sock.write('0\r\n\r\n');
    t.sent = true;
  };
  next();
  return t;
}

function get(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: 'a' }, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

describe('slow-trickle POSTs with small bodies (request buffering)', () => {
  it('hold no upstream capacity: a GET to the same upstream is answered while they trickle; then every body arrives exact', async () => {
    const tricklers = Array.from({ length: TRICKLERS }, (_, i) => trickle(mg.port, i));
    try {
      // At least the breaker's worth of tricklers is in the peer (heads parsed) before the GET is sent:
      // without buffering they would now hold every slot.
      await waitFor(async () => ((await (await fetch(`${mg.adminUrl}/api/v1/status`)).json()) as { inFlight: number }).inFlight >= MAX_IN_FLIGHT, 10_000, () => 'tricklers not in the peer');
      // A bounded deadline, not a timing goal: the GET must be answered, not queued behind tricklers.
      const status = await get(mg.port, '/plain', 5_000);
      expect(status).toBe(200);
      const stillTrickling = tricklers.filter((t) => !t.sent).length;
      expect(stillTrickling, 'the GET must be answered while the tricklers are still sending').toBeGreaterThan(0);
      // None of the unfinished tricklers has reached the backend: they hold no upstream connection.
      const unfinished = new Set(tricklers.filter((t) => !t.sent).map((t) => t.url));
      expect(backend.received.filter((r) => unfinished.has(r.url))).toEqual([]);

      await Promise.all(tricklers.map((t) => Promise.race([t.closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`${t.url}: no answer`)), 15_000))])));
      for (const t of tricklers) {
        expect(t.answer, t.url).toMatch(/^HTTP\/1\.1 200 /);
        const rec = backend.received.find((r) => r.url === t.url);
        expect(rec?.complete, t.url).toBe(true);
        expect(rec?.sha256, t.url).toBe(createHash('sha256').update(t.body).digest('hex'));
      }
      await waitFor(async () => (await get(mg.port, '/plain', 5_000)) === 200, 5_000, () => 'peer not serving after the tricklers');
    } finally {
      for (const t of tricklers) {
        clearTimeout(t.timer);
        t.sock.destroy();
      }
    }
  }, 30_000);
});
