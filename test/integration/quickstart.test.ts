/**
 * The newcomer's path of the README: `npm start` (config.yaml) with `npm run backends` beside it answers
 * on http://127.0.0.1:8080 through both services. Uses the fixed ports that config.yaml names.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startPeer, type PeerProcess } from '../helpers/meshgate.js';

const BACKENDS = new URL('../../dist/scripts/backends.js', import.meta.url).pathname;
const CONFIG = new URL('../../config.yaml', import.meta.url).pathname;

describe('quick start: npm start + npm run backends', () => {
  const backends = spawn(process.execPath, [BACKENDS], { stdio: ['ignore', 'pipe', 'pipe'] });
  let peer: PeerProcess | undefined;
  afterAll(async () => {
    await peer?.stop();
    backends.kill('SIGTERM');
  });

  it('serves both services of config.yaml from the backends the script starts', async () => {
    await new Promise<void>((resolve, reject) => {
      backends.stdout!.once('data', () => resolve());
      backends.once('exit', (code) => reject(new Error(`backends exited ${code}`)));
    });
    peer = await startPeer(readFileSync(CONFIG, 'utf8'), { adminPort: 9901, dataPort: 8080 });
    const web = await fetch(`${peer.url}/`);
    expect(web.status).toBe(200);
    expect(((await web.json()) as { backend: string }).backend).toBe('web-1');
    const api = await fetch(`${peer.url}/api/x`, { headers: { 'x-user-id': 'u1' } });
    expect(api.status).toBe(200);
    expect(['api-1', 'api-2']).toContain(((await api.json()) as { backend: string }).backend);
  });
});
