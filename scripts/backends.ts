/**
 * `npm run backends`: the three backends that config.yaml (what `npm start` serves) points at, on
 * 127.0.0.1:9001-9003, so a newcomer can run `npm start` in one terminal and this in another.
 * Ctrl-C stops them.
 */
import { startDemoBackend } from './lib/demo-backend.js';

const backends = [
  { id: 'api-1', port: 9001 },
  { id: 'api-2', port: 9002 },
  { id: 'web-1', port: 9003 },
];

const servers = await Promise.all(backends.map((b) => startDemoBackend(b.id, b.port)));
process.stdout.write(`backends for config.yaml: ${backends.map((b) => `${b.id} http://127.0.0.1:${b.port}`).join(', ')}\nCtrl-C stops them.\n`);
const stop = () => {
  for (const s of servers) s.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
