/**
 * One client connection, many requests (issue 12): pipelining, and answers without a body (HEAD, 204,
 * 304) on a kept-alive connection, where one stray or missing body byte would garble every answer
 * after it. Clients: raw sockets (our own response parser), Python's http.client, curl's connection
 * reuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startRecordingBackend, type RecordingBackend } from './lib/http-backend.js';
import { chunked, head, send } from './lib/http-raw.js';
import { startConformancePeer, type ConformancePeer } from './lib/http-peer.js';
import { curl, python } from './lib/http-clients.js';

let backend: RecordingBackend;
let mg: ConformancePeer;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  backend = await startRecordingBackend();
  mg = await startConformancePeer(backend.url);
});
afterAll(async () => {
  await mg?.stop();
  await backend?.close();
});

describe('pipelining and body-less answers on one connection', () => {
  it('raw: six pipelined requests in one write (GET, chunked POST, HEAD, 204, 304, sized PUT) answer in order', async () => {
    const body = Buffer.from('pipelined body');
    const bytes = Buffer.concat([
      head('GET', '/a', [['Host', 'p']]),
      head('POST', '/b', [['Host', 'p'], ['Transfer-Encoding', 'chunked']]), ...chunked(body, [4, 9]),
      head('HEAD', '/c', [['Host', 'p']]),
      head('GET', '/status/204', [['Host', 'p']]),
      head('GET', '/status/304', [['Host', 'p']]),
      head('PUT', '/d', [['Host', 'p'], ['Content-Length', String(body.length)]]), body,
    ]);
    const methods = ['GET', 'POST', 'HEAD', 'GET', 'GET', 'PUT'];
    const ex = await send(mg.target, [{ bytes }], { methods });
    expect(ex.responses.map((r) => r.status)).toEqual([200, 200, 200, 204, 304, 200]);
    expect(JSON.parse(ex.responses[1]!.body.toString()) as unknown).toMatchObject({ method: 'POST', bytes: body.length, sha256: sha(body) });
    expect(ex.responses[2]!.body.length).toBe(0);
    expect(ex.responses[2]!.headers['content-length']).toBeDefined();
    expect(JSON.parse(ex.responses[5]!.body.toString()) as unknown).toMatchObject({ method: 'PUT', bytes: body.length, sha256: sha(body) });
    expect(ex.rest.length).toBe(0);
    expect(ex.closed).toBe(false);
  });

  it('raw: HEAD, 204, 304, GET one after another on a kept-alive connection', async () => {
    const seq: Array<[string, string]> = [['HEAD', '/x'], ['GET', '/status/204'], ['GET', '/status/304'], ['HEAD', '/status/204'], ['GET', '/y']];
    const ex = await send(mg.target, seq.map(([m, p], i) => ({ bytes: head(m, p, [['Host', 'k']]), pauseMs: i === 0 ? 0 : 30 })), { methods: seq.map(([m]) => m) });
    expect(ex.responses.map((r) => [r.status, r.body.length])).toEqual([[200, 0], [204, 0], [304, 0], [204, 0], [200, ex.responses[4]!.body.length]]);
    expect(JSON.parse(ex.responses[4]!.body.toString()) as unknown).toMatchObject({ method: 'GET' });
    expect(ex.rest.length).toBe(0);
  });

  it("Python's http.client: HEAD, 204, 304, POST, GET on one connection", async () => {
    const script = `
import http.client, sys, json
conn = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
out = []
for method, path, body in [('HEAD', '/h', None), ('GET', '/status/204', None), ('GET', '/status/304', None), ('POST', '/p', b'xyz'), ('GET', '/g', None)]:
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    out.append([r.status, len(data), conn.sock is not None])
print(json.dumps(out))
`;
    const r = await python(script, [String(mg.port)]);
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as Array<[number, number, boolean]>;
    expect(got.map(([s, n]) => [s, n > 0])).toEqual([[200, false], [204, false], [304, false], [200, true], [200, true]]);
    expect(got.every(([, , open]) => open)).toBe(true);
  });

  it('curl reuses one connection across HEAD-less GETs, 204 and 304', async () => {
    const u = (p: string): string => `http://127.0.0.1:${mg.port}${p}`;
    const r = await curl(['-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n', u('/status/204'), u('/status/304'), u('/z')]);
    expect(r.stdout.trim().split('\n')).toEqual(['204 1', '304 0', '200 0']);
  });
});
