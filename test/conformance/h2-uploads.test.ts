/**
 * Uploads over HTTP/2 through a real meshgate process with real external clients (issue 15: the
 * data-path suite over HTTP/2): `curl --http2` with its defaults (sized bodies from 1 B to 8 MiB, `-T`,
 * a body of unknown length, an explicit `Expect: 100-continue` — curl sends none by itself over h2) and
 * `nghttp` (sized uploads, several multiplexed on one connection, small flow-control windows). The
 * recording backend's byte count and sha256 must equal what the client sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/meshgate.js';
import { MiB, bytesOf, sha } from './lib/bodies.js';
import { startRecordingBackend, type RecordingBackend } from './lib/http-backend.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { curl, nghttp } from './lib/http-clients.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
const dir = tempDir('meshgate-h2-uploads-');
let caFile: string;
let base: string;

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url, { tls: true });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, mg.target.tls!.ca);
  base = `https://conformance.test:${mg.target.port}`;
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

const SIZES = [1, 2, 16_384, 16_385, 65_535, 65_537, MiB - 1, MiB + 1, 3 * MiB + 17, 8 * MiB];

function fileOf(n: number): { path: string; body: Buffer } {
  const body = bytesOf(n, n + 11);
  const path = join(dir, `body-${n}`);
  writeFileSync(path, body);
  return { path, body };
}

/** The backend's JSON summaries in `stdout` (one per response). */
function summaries(stdout: string): Array<{ bytes: number; sha256: string }> {
  return [...stdout.matchAll(/\{"method":"[A-Z]+","bytes":(\d+),"sha256":"([0-9a-f]+)"\}/g)].map((m) => ({ bytes: Number(m[1]), sha256: m[2]! }));
}

const CURL_H2 = (): string[] => ['--http2', '--cacert', caFile, '--resolve', `conformance.test:${mg.target.port}:127.0.0.1`, '-w', '\\n%{http_code} %{http_version}\\n'];

describe('curl --http2 with its defaults', () => {
  it.each(SIZES)('POST --data-binary of %i bytes (content-length)', async (n) => {
    const { path, body } = fileOf(n);
    const r = await curl([...CURL_H2(), '-X', 'POST', '--data-binary', `@${path}`, '-H', 'content-type: application/octet-stream', `${base}/up`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('\n200 2\n');
    expect(summaries(r.stdout)).toEqual([{ bytes: n, sha256: sha(body) }]);
  });

  it('PUT -T of 2 MiB', async () => {
    const { path, body } = fileOf(2 * MiB);
    const r = await curl([...CURL_H2(), '-T', path, `${base}/up`]);
    expect(r.stdout).toContain('\n200 2\n');
    expect(summaries(r.stdout)).toEqual([{ bytes: 2 * MiB, sha256: sha(body) }]);
    expect(backend.received.at(-1)!.headers['content-length']).toBe(String(2 * MiB));
  });

  it('PUT -T of 5 MiB with an explicit Expect: 100-continue: the 100 comes once the upstream is there, Expect is not forwarded', async () => {
    const { path, body } = fileOf(5 * MiB);
    const r = await curl([...CURL_H2(), '-v', '-H', 'Expect: 100-continue', '-T', path, `${base}/up`]);
    expect(r.stdout).toContain('\n200 2\n');
    expect(summaries(r.stdout)).toEqual([{ bytes: 5 * MiB, sha256: sha(body) }]);
    expect(r.stderr).toMatch(/< HTTP\/2 100/);
    expect(backend.received.at(-1)!.headers.expect).toBeUndefined();
  });

  // A body up to node.requestBufferSize (16 KiB) is read whole before routing and goes with its length.
  it.each([[1, '1', undefined], [70_000, undefined, 'chunked'], [3 * MiB + 5, undefined, 'chunked']] as const)('PUT -T of %i bytes without a length (Transfer-Encoding: chunked asked, h2 sends no length)', async (n, length, te) => {
    const { path, body } = fileOf(n);
    const r = await curl([...CURL_H2(), '-H', 'Transfer-Encoding: chunked', '-T', path, `${base}/up`]);
    expect(r.stdout).toContain('\n200 2\n');
    expect(summaries(r.stdout)).toEqual([{ bytes: n, sha256: sha(body) }]);
    const rec = backend.received.at(-1)!;
    expect([rec.headers['content-length'], rec.headers['transfer-encoding']]).toEqual([length, te]);
  });
});

describe('nghttp', () => {
  it.each([1, 65_537, MiB + 1, 8 * MiB])('POST -d of %i bytes', async (n) => {
    const { path, body } = fileOf(n);
    const r = await nghttp(['-d', path, `https://127.0.0.1:${mg.target.port}/up`]);
    expect(r.code, r.stderr).toBe(0);
    expect(summaries(r.stdout)).toEqual([{ bytes: n, sha256: sha(body) }]);
  });

  it('eight 1 MiB uploads multiplexed on one connection, each arrives whole', async () => {
    const { path, body } = fileOf(MiB + 3);
    const before = backend.count;
    const r = await nghttp(['-m', '8', '-d', path, `https://127.0.0.1:${mg.target.port}/up`]);
    expect(r.code, r.stderr).toBe(0);
    expect(summaries(r.stdout)).toEqual(Array(8).fill({ bytes: MiB + 3, sha256: sha(body) }));
    expect(backend.count - before).toBe(8);
  });

  it('small windows (64 KiB stream and connection windows on the client side): a 3 MiB upload arrives whole', async () => {
    const { path, body } = fileOf(3 * MiB);
    const r = await nghttp(['-w', '16', '-W', '16', '-d', path, `https://127.0.0.1:${mg.target.port}/up`]);
    expect(r.code, r.stderr).toBe(0);
    expect(summaries(r.stdout)).toEqual([{ bytes: 3 * MiB, sha256: sha(body) }]);
  });
});
