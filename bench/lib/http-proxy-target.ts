// Comparison target: a plain `http-proxy` (node-http-proxy 1.18) reverse proxy, as most Node
// projects deploy it — node:http server, proxy.web(), one keep-alive http.Agent to the backend.
// Several upstreams (`upstreams`) are taken in turn (http-proxy has no balancer of its own).
// Run as its own process: `node http-proxy-target.js '{"upstreams":["http://127.0.0.1:P"]}'`;
// prints `{"port":N}` once listening.
// Invariant: the agent keeps connections alive and is unbounded like undici's default Pool, so the
// comparison is about the proxy code, not about connection limits.
import { createServer, Agent } from 'node:http';
import httpProxy from 'http-proxy';
import { exitWhenParentGone } from './procs.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { upstreams: string[] };
// Without an agent http-proxy opens a new upstream connection per request (research/proxies.md §1d).
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, keepAliveMsecs: 60_000 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
let next = 0;
proxy.on('error', (_err, _req, res) => {
  // `res` is a ServerResponse for web requests (a Socket only for ws, which we never proxy here).
  if ('writeHead' in res && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  } else {
    res.destroy();
  }
});

const server = createServer((req, res) => proxy.web(req, res, { target: args.upstreams[next++ % args.upstreams.length] }));
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
