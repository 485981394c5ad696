// Comparison target for the TLS bench: the Node floor of a TLS-terminating proxy — node:https (mode
// "https", HTTP/1.1) or node:http2's secure server (mode "h2", HTTP/2 only) in front of one undici
// Pool, nothing else (the TLS twin of undici-min-target.ts). HTTP/2 pseudo-headers are dropped and
// `:authority` becomes Host, which any HTTP/2-to-HTTP/1.1 proxy must do.
// Run: `node tls-floor-target.js '{"upstream":"http://127.0.0.1:P","cert":"c.pem","key":"k.pem","mode":"h2"}'`;
// prints `{"port":N}` once listening.
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { Pool } from 'undici';
import { badGateway, endToEnd } from './end-to-end.js';
import { exitWhenParentGone } from './procs.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { upstream: string; cert: string; key: string; mode: 'https' | 'h2' };
const pool = new Pool(args.upstream, { pipelining: 1, keepAliveTimeout: 60_000 });
const tls = { cert: readFileSync(args.cert), key: readFileSync(args.key) };

function handle(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const headers = endToEnd(req.headers);
  for (const name of Object.keys(headers)) if (name.startsWith(':')) delete headers[name];
  const authority = req.headers[':authority'];
  if (typeof authority === 'string') headers.host = authority;
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream({ path: req.url ?? '/', method: req.method as 'GET', headers: headers as Record<string, string>, body: hasBody ? req : null }, ({ statusCode, headers: h }) => {
      res.writeHead(statusCode, endToEnd(h));
      return res as unknown as Writable;
    })
    .catch(() => badGateway(res));
}

const server = args.mode === 'h2' ? createSecureServer({ ...tls, allowHTTP1: false }, handle) : createHttpsServer({ ...tls, keepAliveTimeout: 65_000 }, handle);
exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
