/**
 * Coherence across peers: two separate Node processes, given the same membership in different list
 * orders, send the same keys to the same upstreams (ring-hash and Maglev) and compute the same
 * hash64 of a session key — the property DESIGN.md §5 (`onStoreDown: hash`) and research §4.4 rely on.
 * Separate processes, not two objects in one, so no shared module state can make them agree by accident.
 *
 * How: esbuild (installed with vitest) bundles src/balance/index.ts into one self-contained ESM file in
 * a temp dir; each child is `node --input-type=module` importing it. The temp dir is removed after.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBalancer, hash64 } from '../../../src/balance/index.js';

const run = promisify(execFile);
const KEY_COUNT = 10_000;

const CHILD = `
const { createBalancer, hash64 } = await import(process.env.MG_BUNDLE);
const members = JSON.parse(process.env.MG_MEMBERS);
const keys = Array.from({ length: ${KEY_COUNT} }, (_, i) => 'user-' + i);
const out = {};
for (const name of ['ring-hash', 'maglev']) {
  const b = createBalancer(name, { candidates: members }, {});
  out[name] = keys.map((hashKey) => b.pick({ hashKey }));
}
out.session = hash64('session-6f1c2a').toString(16);
process.stdout.write(JSON.stringify(out));
`;

const members = [
  { id: 'api-1', weight: 1 },
  { id: 'api-2', weight: 2 },
  { id: 'api-3', weight: 1 },
  { id: 'eu-west-7', weight: 3 },
  { id: 'ünïcode-☃', weight: 1 },
  { id: 'api-10', weight: 1 },
];

let dir = '';
let bundleUrl = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mg-balance-'));
  const outfile = join(dir, 'balance.mjs');
  await build({
    entryPoints: [join(import.meta.dirname, '../../../src/balance/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile,
    logLevel: 'silent',
  });
  bundleUrl = pathToFileURL(outfile).href;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function peer(order: typeof members): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { ...process.env, MG_BUNDLE: bundleUrl, MG_MEMBERS: JSON.stringify(order) },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('coherence across peers', () => {
  it('two processes with the membership in different orders map 10k keys identically', async () => {
    const shuffled = [members[3]!, members[0]!, members[5]!, members[2]!, members[4]!, members[1]!];
    const [a, b] = await Promise.all([peer(members), peer(shuffled)]);
    for (const name of ['ring-hash', 'maglev']) {
      const picksA = a[name] as string[];
      expect(picksA).toHaveLength(KEY_COUNT);
      expect(b[name]).toEqual(picksA);
      // …and the same as this (third) process computes; every upstream gets keys.
      const local = createBalancer(name as 'ring-hash' | 'maglev', { candidates: [...members].reverse() }, {});
      expect(picksA.slice(0, 2000)).toEqual(Array.from({ length: 2000 }, (_, i) => local.pick({ hashKey: `user-${i}` })));
      expect(new Set(picksA).size).toBe(members.length);
    }
    expect(a.session).toBe(b.session);
    expect(a.session).toBe(hash64('session-6f1c2a').toString(16));
  });
});
