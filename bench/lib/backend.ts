// Benchmark backend, run as its own process: `node backend.js '{"id":"b1"}'`.
// GET /64 answers a 64-byte body, GET /1m a 1 MiB body, both from buffers allocated once, so the
// backend does as little per request as node:http allows and the proxy in front dominates.
// Prints `{"port":N}` on stdout once listening on 127.0.0.1 (port 0 = the kernel picks).
// Invariant: keep-alive idle timeout (65 s) is longer than any client's (undici 4 s by default,
// the load generator's 60 s), so the client, never this server, closes idle connections — the
// rule Node's own docs give for servers behind a keep-alive proxy, avoiding ECONNRESET races.
import { createServer } from 'node:http';
import { exitWhenParentGone } from './procs.js';

const KEEP_ALIVE_MS = 65_000;
const SMALL = Buffer.alloc(64, 'a');
const LARGE = Buffer.alloc(1024 * 1024, 'b');

const args = JSON.parse(process.argv[2] ?? '{}') as { id?: string; port?: number };
const id = args.id ?? 'backend';

const server = createServer((req, res) => {
  // Drain any request body so the connection can be reused.
  req.resume();
  const body = req.url === '/64' ? SMALL : req.url === '/1m' ? LARGE : undefined;
  if (!body || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-length': '0', 'x-backend-id': id });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'x-backend-id': id });
  res.end(req.method === 'HEAD' ? undefined : body);
});
server.keepAliveTimeout = KEEP_ALIVE_MS;
// headersTimeout must exceed keepAliveTimeout, else an idle keep-alive socket is cut by it first.
server.headersTimeout = KEEP_ALIVE_MS + 1_000;

exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(args.port ?? 0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port, id })}\n`);
});
