/**
 * `timeouts.response` and `timeouts.idle` against an upstream that stalls, through a real meshgate
 * process, with curl and raw sockets as clients. Requests whose body is read whole (none, or one within
 * `node.requestBufferSize`) are timed by the forwarder's own deadline list (src/proxy/deadlines.ts),
 * streamed uploads by undici: both must give the same answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';
import { python } from '../conformance/lib/http-clients.js';

const RESPONSE_MS = 400;
const IDLE_MS = 400;
const BIG = 8 * 1024 * 1024;
const big = Buffer.alloc(BIG, 7);

/** A raw HTTP/1.1 upstream: each path is one way to stall (or not). Reads the whole request first. */
function startStaller(): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let head = '';
    let bodyLeft = -1;
    sock.on('data', (chunk: Buffer) => {
      if (bodyLeft < 0) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const cl = /content-length: *(\d+)/i.exec(head.slice(0, end));
        const chunked = /transfer-encoding: *chunked/i.test(head.slice(0, end));
        bodyLeft = cl ? Number(cl[1]) - (head.length - end - 4) : 0;
        if (chunked) bodyLeft = Infinity; // read until the terminating chunk
        if (chunked && head.endsWith('0\r\n\r\n')) bodyLeft = 0;
      } else if (bodyLeft === Infinity) {
        if (chunk.toString('latin1').endsWith('0\r\n\r\n')) bodyLeft = 0;
      } else {
        bodyLeft -= chunk.length;
      }
      if (bodyLeft !== 0) return;
      const path = head.split(' ')[1] ?? '/';
      // Keep-alive: the next request on this connection starts afresh (the peer does not pipeline).
      head = '';
      bodyLeft = -1;
      answer(sock, path);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, server, sockets })));
}

function answer(sock: Socket, path: string): void {
  if (path.startsWith('/no-head')) return; // never answers
  if (path.startsWith('/stall-body')) {
    // 1,000 of 100,000 declared bytes, then silence.
    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
    return;
  }
  if (path.startsWith('/drip')) {
    // 8 bytes, one every IDLE_MS / 4: silent for less than the idle timeout each time, longer in all.
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n');
    let n = 0;
    const t = setInterval(() => {
      sock.write('d');
      if (++n === 8) clearInterval(t);
    }, IDLE_MS / 4);
    sock.on('close', () => clearInterval(t));
    return;
  }
  if (path.startsWith('/big')) {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
    sock.write(big);
    return;
  }
  sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
}

let staller: Awaited<ReturnType<typeof startStaller>>;
let peer: PeerProcess;

beforeAll(async () => {
  staller = await startStaller();
  const [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(`
node:
  id: gw-timeouts
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
  requestBufferSize: 16KiB
routes:
  - { match: { pathPrefix: / }, service: s }
services:
  s:
    retries: { attempts: 0 }
    outlierDetection: { consecutive5xx: 1000, consecutiveLocalOriginFailures: 1000 }
    timeouts: { response: ${RESPONSE_MS}ms, idle: ${IDLE_MS}ms }
    upstreams: [{ id: st, url: http://127.0.0.1:${staller.port} }]
`, { dataPort: dp, adminPort: ap });
});

afterAll(async () => {
  await peer?.stop('SIGKILL');
  for (const s of staller?.sockets ?? []) s.destroy();
  await new Promise((r) => staller?.server.close(r));
});

/** curl with its defaults (run asynchronously: the upstream above lives in this process); status, body
 *  length, exit code, wall time and `x-meshgate-reason`. */
async function curl(path: string, extra: string[] = [], input?: Buffer): Promise<{ status: string; bytes: number; exit: number | null; ms: number; reason: string }> {
  const t0 = performance.now();
  const child = spawn('curl', ['-s', '-o', '/dev/null', '-D', '-', '-w', '\\n%{http_code} %{size_download}', '-m', '20', ...extra, `${peer.url}${path}`], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stdin.end(input);
  const exit = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const ms = performance.now() - t0;
  const [status, bytes] = (out.trim().split('\n').at(-1) ?? '').split(' ');
  const reason = /x-meshgate-reason: *(\S+)/i.exec(out)?.[1] ?? '';
  return { status: status ?? '', bytes: Number(bytes), exit, ms, reason };
}

describe('upstream response timeout (timeouts.response)', () => {
  it('answers 504 upstream-timeout to a GET whose upstream never answers, not before the timeout', async () => {
    const r = await curl('/no-head');
    expect(r).toMatchObject({ status: '504', reason: 'upstream-timeout', exit: 0 });
    expect(r.ms).toBeGreaterThanOrEqual(RESPONSE_MS);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('answers 504 to a small POST (read whole before routing) the same way', async () => {
    const r = await curl('/no-head', ['--data-binary', 'hello']);
    expect(r).toMatchObject({ status: '504', reason: 'upstream-timeout' });
    expect(r.ms).toBeGreaterThanOrEqual(RESPONSE_MS);
  });

  it('answers 504 to a streamed upload (over requestBufferSize) the same way', async () => {
    // 64 KiB from curl's stdin: over the 16 KiB buffer, so the body streams and undici times it.
    const r = await curl('/no-head', ['-H', 'Expect:', '--data-binary', '@-'], Buffer.alloc(64 * 1024, 1));
    expect(r).toMatchObject({ status: '504', reason: 'upstream-timeout' });
    expect(r.ms).toBeGreaterThanOrEqual(RESPONSE_MS);
  });

  it('serves an upstream that answers in time', async () => {
    expect(await curl('/fine')).toMatchObject({ status: '200', bytes: 2, exit: 0 });
  });
});

describe('upstream body idle timeout (timeouts.idle)', () => {
  it('cuts a response whose upstream goes silent mid-body, not before the idle timeout', async () => {
    const r = await curl('/stall-body');
    // The status line went out; the only signal left is the cut connection (curl 18: partial file).
    expect(r.status).toBe('200');
    expect(r.exit).toBe(18);
    expect(r.bytes).toBe(1000);
    expect(r.ms).toBeGreaterThanOrEqual(IDLE_MS);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('Python http.client sees the same: a 504 head for no answer, an IncompleteRead for the mid-body cut', async () => {
    const script = [
      'import http.client, sys',
      'c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=15)',
      'c.request("GET", "/no-head"); r = c.getresponse(); print(r.status, r.getheader("x-meshgate-reason")); r.read(); c.close()',
      'c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=15)',
      'c.request("GET", "/stall-body"); r = c.getresponse()',
      'try:',
      '    b = r.read(); print("whole", len(b))',
      'except http.client.IncompleteRead as e:',
      '    print("incomplete", len(e.partial))',
    ].join('\n');
    const r = await python(script, [new URL(peer.url).port]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['504 upstream-timeout', 'incomplete 1000']);
  });

  it('keeps a body whose every silence is shorter than the idle timeout, however long it takes in all', async () => {
    const r = await curl('/drip');
    expect(r).toMatchObject({ status: '200', bytes: 8, exit: 0 });
    expect(r.ms).toBeGreaterThan(IDLE_MS);
  });

  it('does not count a client that stops reading as upstream silence', async () => {
    // A raw client reads the head, then nothing for 4 × the idle timeout (the proxy's socket fills and
    // it pauses the upstream), then everything: the 8 MiB must arrive whole.
    const sock = connect(Number(new URL(peer.url).port), '127.0.0.1');
    sock.write('GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => sock.once('readable', () => resolve()));
    sock.pause();
    await new Promise((r) => setTimeout(r, 4 * IDLE_MS));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.resume();
    await new Promise<void>((resolve, reject) => {
      sock.on('end', () => resolve());
      sock.on('error', reject);
    });
    const all = Buffer.concat(chunks);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    expect(all.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK');
    expect(body.length).toBe(BIG);
    expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });
});
