/**
 * The small HTTP backend of the demo and of `npm run backends`: `/healthz` answers `ok`; anything else
 * answers, after 2–10 ms (so the dashboard has latency to show), a JSON line naming the backend and what
 * meshgate forwarded (path, x-user-id, x-meshgate-fence).
 */
import { createServer, type Server } from 'node:http';

export function startDemoBackend(id: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ backend: id, path: req.url, user: req.headers['x-user-id'] ?? null, fence: req.headers['x-meshgate-fence'] ?? null }) + '\n');
    }, 2 + Math.random() * 8);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
