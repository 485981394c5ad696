// WebSocket echo backend for the `websocket` macro bench: node:http + the `ws` server, every message
// sent back as it came (text stays text, binary stays binary).
// Run as its own process: `node ws-echo-target.js '{}'`; prints `{"port":N}` once listening.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { exitWhenParentGone } from './procs.js';

const server = createServer((_req, res) => res.end('ok'));
// perMessageDeflate off (the ws server's default): the bench measures the proxy, not zlib.
const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 * 1024 });
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));

exitWhenParentGone();
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
