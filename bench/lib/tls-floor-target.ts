// Comparison target for the TLS bench: the Node floor of a TLS-terminating proxy — node:https (mode
// "https", HTTP/1.1) or node:http2's secure server (mode "h2", HTTP/2 only) in front of one undici
// Pool, nothing else (the TLS twin of undici-min-target.ts). HTTP/2 pseudo-headers are dropped and
// `:authority` becomes Host, which any HTTP/2-to-HTTP/1.1 proxy must do. The HTTP/2 floor takes the
// session's 'stream' event (node:http2's core API), as meshgate's own front does (h2-front.ts), so
// the two are compared on the same API (meshgate's front got 10–14% cheaper per stream from that switch;
// for this floor, four rounds on a noisy VM could not tell the two APIs apart).
// Run: `node tls-floor-target.js '{"upstream":"http://127.0.0.1:P","cert":"c.pem","key":"k.pem","mode":"h2"}'`;
// prints `{"port":N}` once listening.
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer, type IncomingHttpHeaders as H2Headers, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Writable } from 'node:stream';
import { Pool } from 'undici';
import { badGateway, endToEnd } from './end-to-end.js';
import { exitWhenParentGone } from './procs.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { upstream: string; cert: string; key: string; mode: 'https' | 'h2' };
const pool = new Pool(args.upstream, { pipelining: 1, keepAliveTimeout: 60_000 });
const tls = { cert: readFileSync(args.cert), key: readFileSync(args.key) };

function handle(req: IncomingMessage, res: ServerResponse): void {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream({ path: req.url ?? '/', method: req.method as 'GET', headers: endToEnd(req.headers) as Record<string, string>, body: hasBody ? req : null }, ({ statusCode, headers: h }) => {
      res.writeHead(statusCode, endToEnd(h));
      return res as unknown as Writable;
    })
    .catch(() => badGateway(res));
}

function handleStream(stream: ServerHttp2Stream, reqHeaders: H2Headers): void {
  const headers = endToEnd(reqHeaders);
  for (const name of Object.keys(headers)) if (name.startsWith(':')) delete headers[name];
  const authority = reqHeaders[':authority'];
  if (typeof authority === 'string') headers.host = authority;
  // A body is read through a PassThrough: undici destroys a request body it has finished with, and the
  // stream is also the response.
  const body = stream.readableEnded || stream.endAfterHeaders ? null : stream.pipe(new PassThrough());
  pool
    .stream({ path: reqHeaders[':path'] ?? '/', method: reqHeaders[':method'] as 'GET', headers: headers as Record<string, string>, body }, ({ statusCode, headers: h }) => {
      const out = endToEnd(h);
      stream.respond({ ...out, ':status': statusCode });
      return stream;
    })
    .catch(() => {
      if (stream.destroyed) return;
      if (!stream.headersSent) stream.respond({ ':status': 502, 'content-type': 'text/plain' });
      stream.end('bad gateway\n');
    });
}

const server = args.mode === 'h2'
  ? createSecureServer({ ...tls, allowHTTP1: false }).on('stream', handleStream)
  : createHttpsServer({ ...tls, keepAliveTimeout: 65_000 }, handle);
exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
