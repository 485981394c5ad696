/**
 * Large responses through a real meshgate process: byte-exact to curl with its defaults and to
 * Python's http.client reading in small pieces, and held back for a client that stops reading — the
 * upstream is not read further than socket buffers and meshgate's 128 KiB bound allow, so a slow
 * client costs bounded memory (forward.ts CLIENT_BUFFER_BYTES), and nothing is lost when it reads on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { curl, python } from './lib/http-clients.js';
import { MiB } from './lib/bodies.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/meshgate.js';

const dir = tempDir('meshgate-downloads-');

const BLOCK = 64 * 1024;
const base = Buffer.alloc(BLOCK);
for (let i = 0; i < BLOCK; i++) base[i] = (i * 7 + 3) & 0xff;

/** Block `i` of every body: the base pattern with its index in the first 8 bytes (so a lost, doubled
 *  or reordered block changes the hash). */
function block(i: number): Buffer {
  const b = Buffer.from(base);
  b.writeBigUInt64BE(BigInt(i), 0);
  return b;
}

function expectedSha(bytes: number): string {
  const h = createHash('sha256');
  for (let i = 0; i * BLOCK < bytes; i++) h.update(block(i).subarray(0, Math.min(BLOCK, bytes - i * BLOCK)));
  return h.digest('hex');
}

/** /big/N: N bytes in 64 KiB writes that wait for 'drain', as a streaming backend does; `sent` counts
 *  what it handed to its socket so far. */
let backend: Server;
let sent = 0;
let mg: ConformancePeer;
/** The same routes behind the TLS listener (HTTPS answers get the same bound). */
let mgTls: ConformancePeer;

beforeAll(async () => {
  backend = createServer((req, res) => {
    const bytes = Number(/\/big\/(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
    sent = 0;
    let i = 0;
    const more = (): void => {
      while (i * BLOCK < bytes) {
        const piece = block(i).subarray(0, Math.min(BLOCK, bytes - i * BLOCK));
        i++;
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  mg = await startConformancePeer(url, { extraRoutes: [{ prefix: '/big', name: 'big', url }] });
  mgTls = await startConformancePeer(url, { extraRoutes: [{ prefix: '/big', name: 'big', url }], tls: true });
});
afterAll(async () => {
  await mg?.stop();
  await mgTls?.stop();
  await new Promise((r) => backend?.close(r));
});

describe('large responses', () => {
  it.each([MiB + 1, 64 * MiB])('curl with its defaults gets %i bytes byte-exact', async (n) => {
    const file = join(dir, `big-${n}`);
    const r = await curl(['-o', file, '-w', '%{http_code} %{size_download}', `http://127.0.0.1:${mg.port}/big/${n}`], 60_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`200 ${n}`);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(expectedSha(n));
  });

  it('curl over HTTPS (the TLS listener) gets 64 MiB byte-exact', async () => {
    const n = 64 * MiB;
    const t = mgTls.target;
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, t.tls!.ca);
    const file = join(dir, 'big-tls');
    const host = t.tls!.servername;
    const r = await curl(['--http1.1', '--cacert', ca, '--resolve', `${host}:${t.port}:127.0.0.1`, '-o', file, '-w', '%{http_code} %{size_download}', `https://${host}:${t.port}/big/${n}`], 60_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`200 ${n}`);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(expectedSha(n));
  });

  it('Python http.client reading 1,000 bytes at a time gets 16 MiB + 5 byte-exact', async () => {
    const n = 16 * MiB + 5;
    const script = [
      'import http.client, hashlib, sys',
      'c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)',
      'c.request("GET", sys.argv[2])',
      'r = c.getresponse()',
      'h = hashlib.sha256(); total = 0',
      'while True:',
      '    b = r.read(1000)',
      '    if not b: break',
      '    h.update(b); total += len(b)',
      'print(r.status, total, h.hexdigest())',
    ].join('\n');
    const r = await python(script, [String(mg.port), `/big/${n}`], 60_000);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`200 ${n} ${expectedSha(n)}`);
  });

  it('a client that stops reading holds the upstream back, then gets every byte when it reads on', async () => {
    const n = 256 * MiB;
    const sock = connect(mg.port, '127.0.0.1');
    const h = createHash('sha256');
    let got = 0;
    let head = Buffer.alloc(0);
    let bodyStarted = false;
    const done = new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        if (!bodyStarted) {
          head = Buffer.concat([head, d]);
          const end = head.indexOf('\r\n\r\n');
          if (end === -1) return;
          expect(head.subarray(0, 12).toString()).toBe('HTTP/1.1 200');
          bodyStarted = true;
          d = head.subarray(end + 4);
        }
        got += d.length;
        h.update(d);
        if (got >= MiB && !paused) pauseOnce();
        if (got === n) resolve();
      });
    });
    let paused = false;
    let resumeNow: () => void = () => undefined;
    const stalled = new Promise<number>((resolve) => {
      resumeNow = () => resolve(sent);
    });
    const pauseOnce = (): void => {
      paused = true;
      sock.pause();
      // Wait until the backend stops being read (its count holds still for 500 ms), then read on.
      let last = -1;
      const t = setInterval(() => {
        if (sent === last) {
          clearInterval(t);
          resumeNow();
          sock.resume();
        }
        last = sent;
      }, 500);
    };
    sock.write(`GET /big/${n} HTTP/1.1\r\nHost: a\r\n\r\n`);
    const heldAt = await stalled;
    // Kernel socket buffers (loopback autotuning: a few MiB each way, on two connections) and
    // meshgate's 128 KiB bound; reading on without backpressure would have taken it all.
    expect(heldAt).toBeLessThan(48 * MiB);
    await done;
    sock.destroy();
    expect(h.digest('hex')).toBe(expectedSha(n));
  }, 60_000);
});
