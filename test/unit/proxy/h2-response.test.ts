/**
 * H2Response (proxy/h2-response.ts), the data path's response over a core node:http2 stream, against a
 * real node:http2 server and client (cleartext h2, in-process): what the exchange relies on when it
 * passes an upstream's head through — repeated fields kept as repeats, a repeated single-value field
 * refused by throwing (the exchange answers that 502), `connection` dropped — and a HEAD answer whose
 * body is dropped rather than written after the stream ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, constants, createServer, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Deadlines } from '../../../src/proxy/deadlines.js';
import { H2Response } from '../../../src/proxy/h2-response.js';

let server: Http2Server;
let client: ClientHttp2Session;
/** What the test's server side does with each stream's H2Response; its throw, if any, is kept. */
let handle: (res: H2Response) => void = () => undefined;
let thrown: unknown;

beforeAll(async () => {
  server = createServer();
  server.on('stream', (stream: ServerHttp2Stream) => {
    stream.on('error', () => undefined);
    const res = new H2Response(stream);
    try {
      handle(res);
    } catch (err) {
      thrown = err;
      res.writeHead(502, {}).end('bad\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
});

afterAll(async () => {
  client?.close();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
});

function fetchH2(method = 'GET'): Promise<{ headers: IncomingHttpHeaders; body: string; rstCode: number | undefined }> {
  return new Promise((resolve, reject) => {
    thrown = undefined;
    const s = client.request({ ':method': method, ':path': '/' }, { endStream: true });
    let headers: IncomingHttpHeaders = {};
    let body = '';
    s.on('response', (h) => (headers = h));
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.on('close', () => resolve({ headers, body, rstCode: s.rstCode }));
    s.on('error', reject);
  });
}

describe('H2Response', () => {
  it('passes a flat header list through: names lower-cased, repeats kept, connection dropped', async () => {
    handle = (res) => {
      res.writeHead(200, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Vary', 'accept', 'vary', 'origin', 'Connection', 'close']);
      expect(res.write('hello ')).toBe(true);
      res.end('world');
    };
    const r = await fetchH2();
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers.vary).toBe('accept, origin');
    expect(r.headers.connection).toBeUndefined();
    expect(r.body).toBe('hello world');
    expect(r.rstCode).toBe(0);
  });

  it('refuses a repeated single-value field by throwing, before anything is sent', async () => {
    handle = (res) => {
      res.writeHead(200, ['content-type', 'text/plain', 'content-type', 'text/html']);
    };
    const r = await fetchH2();
    expect((thrown as NodeJS.ErrnoException | undefined)?.code).toBe('ERR_HTTP2_HEADER_SINGLE_VALUE');
    expect([r.headers[':status'], r.body]).toEqual([502, 'bad\n']);
  });

  it('a HEAD answer ends with its head: a body passed to end() is dropped, the stream closes cleanly', async () => {
    handle = (res) => {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 4 });
      res.end('gone');
    };
    const r = await fetchH2('HEAD');
    expect([r.headers[':status'], r.body, r.rstCode]).toEqual([404, '', 0]);
    expect(thrown).toBeUndefined();
  });

  it('writeContinue sends a 100 before the final head, and only before it', async () => {
    const seen: number[] = [];
    handle = (res) => {
      res.writeContinue();
      res.writeHead(204, {});
      res.writeContinue();
      res.end();
    };
    const done = new Promise<void>((resolve, reject) => {
      const s = client.request({ ':method': 'GET', ':path': '/' }, { endStream: true });
      s.on('continue', () => seen.push(100));
      s.on('response', (h) => seen.push(Number(h[':status'])));
      s.on('close', () => resolve());
      s.on('error', reject);
      s.resume();
    });
    await done;
    expect(seen).toEqual([100, 204]);
  });
});

describe('H2Response stall watch (node.bodyIdleTimeout)', () => {
  it('resets an answer that ended behind a window the client never opens, and leaves a served one alone', async () => {
    const stalled: number[] = [];
    const deadlines = new Deadlines();
    const srv = createServer();
    srv.on('stream', (stream: ServerHttp2Stream) => {
      stream.on('error', () => undefined);
      const res = new H2Response(stream, { deadlines, ms: 200, onStall: (s) => { stalled.push(s.id ?? 0); s.close(constants.NGHTTP2_CANCEL); } });
      stream.once('close', () => res.closed());
      // A short answer, ended at once: only end() can start the watch.
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const get = (c: ClientHttp2Session) => new Promise<{ body: string; rstCode: number | undefined }>((resolve) => {
      const s = c.request({ ':path': '/' }, { endStream: true });
      let body = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (body += d));
      s.on('error', () => undefined);
      s.on('close', () => resolve({ body, rstCode: s.rstCode }));
    });
    const starved = connect(url, { settings: { initialWindowSize: 0 } });
    const normal = connect(url);
    for (const c of [starved, normal]) c.on('error', () => undefined);
    try {
      const [a, b] = await Promise.all([get(starved), get(normal)]);
      expect(a).toEqual({ body: '', rstCode: constants.NGHTTP2_CANCEL });
      expect(b).toEqual({ body: 'hello', rstCode: constants.NGHTTP2_NO_ERROR });
      expect(stalled).toHaveLength(1);
      // Closed streams leave the list: nothing is held for them.
      expect(deadlines.size).toBe(0);
    } finally {
      starved.destroy();
      normal.destroy();
      deadlines.close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
