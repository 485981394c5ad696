/**
 * The builder thread of proxy/table-builds.ts: runs ring-hash and Maglev table jobs
 * (balance/table-build.ts) off the event loop that serves requests, one at a time, and posts each
 * table back (in shared memory: no copy either way).
 */
import { parentPort } from 'node:worker_threads';
import { buildTable, type TableJob } from '../balance/table-build.js';

parentPort?.on('message', (m: { id: number; job: TableJob }) => {
  try {
    parentPort!.postMessage({ id: m.id, result: buildTable(m.job) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
