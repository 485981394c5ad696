// Comparison target: the smallest reasonable undici reverse proxy — the floor any Node proxy built
// on node:http + undici (meshgate included) can reach. Per request: drop hop-by-hop headers
// (RFC 9110 §7.6.1: Connection and the names it lists, plus the classic RFC 2616 §13.5.1 set),
// Pool.stream() to the backend, write status and headers, pipe the body. No routing, no balancer,
// no logs, no metrics, no x-forwarded-*.
// Several upstreams (`upstreams`) are taken in turn, one Pool each: the balancer any proxy needs.
// Run as its own process: `node undici-min-target.js '{"upstreams":["http://127.0.0.1:P"]}'`;
// prints `{"port":N}` once listening.
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { exitWhenParentGone } from './procs.js';
import { badGateway, endToEnd } from './end-to-end.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { upstreams: string[]; port?: number };
const pools = args.upstreams.map((u) => new Pool(u, { pipelining: 1, keepAliveTimeout: 60_000 }));
let next = 0;

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const pool = pools[next++ % pools.length]!;
  pool
    .stream(
      {
        path: req.url ?? '/',
        method: req.method as 'GET',
        headers: endToEnd(req.headers) as Record<string, string>,
        body: hasBody ? req : null,
      },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, endToEnd(headers));
        return res;
      },
    )
    .catch(() => badGateway(res));
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(args.port ?? 0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
