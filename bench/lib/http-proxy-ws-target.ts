// Comparison target for the `websocket` macro bench: `http-proxy` (node-http-proxy 1.18) proxying
// Upgrade requests with `proxy.ws()`, as meshgate did before issue 12.
// Run as its own process: `node http-proxy-ws-target.js '{"upstream":"http://127.0.0.1:P"}'`;
// prints `{"port":N}` once listening.
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { exitWhenParentGone } from './procs.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { upstream: string };
const proxy = httpProxy.createProxyServer({ target: args.upstream, ws: true, xfwd: true });
proxy.on('error', (_err, _req, sock) => (sock as Duplex).destroy());
const server = createServer((_req, res) => res.end('ok'));
server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
  socket.on('error', () => socket.destroy());
  proxy.ws(req, socket, head);
});

exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
