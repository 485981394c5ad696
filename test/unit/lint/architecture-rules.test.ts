/**
 * The architecture rules of eslint.config.js hold (docs/architecture.md "Dependency rules"): each
 * violation, planted as the text of a file under the folder it is forbidden in, makes the real config
 * report the rule that forbids it; the same imports where they belong report nothing. Nothing is
 * written to disk: ESLint lints the text as if it were that file (`lintText` with `filePath`), and the
 * import rules resolve its imports against the real src/. A cycle is planted by giving an existing file
 * the text that imports a module importing it back.
 *
 * The regression this guards: configs that each set `no-restricted-imports` replaced one another, so
 * importing undici or ioredis from src/admin reported nothing.
 */
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: repo, overrideConfigFile: `${repo}eslint.config.js` });
});

async function lint(filePath: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: `${repo}${filePath}` });
  return result!.messages;
}

/** The [rule, message] pairs lint reports, for readable failures. */
async function problems(filePath: string, code: string): Promise<Array<[string | null, string]>> {
  return (await lint(filePath, code)).map((m) => [m.ruleId, m.message]);
}

describe('one home per dependency', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['undici outside proxy/', 'src/admin/planted.ts', "import { request } from 'undici';\nexport const r = request;\n", /undici.*src\/proxy/],
    ['http-proxy outside proxy/', 'src/health/planted.ts', "import httpProxy from 'http-proxy';\nexport const p = httpProxy;\n", /http-proxy.*src\/proxy/],
    ['ioredis outside sticky/redis-*', 'src/sticky/resolver-planted.ts', "import { Redis } from 'ioredis';\nexport const R = Redis;\n", /ioredis.*src\/sticky\/redis/],
    ['ioredis in proxy/', 'src/proxy/planted.ts', "import { Redis } from 'ioredis';\nexport const R = Redis;\n", /ioredis/],
    ['pino outside observability/', 'src/proxy/planted.ts', "import { pino } from 'pino';\nexport const p = pino;\n", /pino.*observability/],
    ['prom-client outside observability/', 'src/admin/planted.ts', "import { Counter } from 'prom-client';\nexport const C = Counter;\n", /prom-client.*observability/],
    ['node:fs outside config/ and storage', 'src/proxy/planted.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", /node:fs.*file I\/O/],
    ['node:cluster outside workers/', 'src/app/planted.ts', "import cluster from 'node:cluster';\nexport const c = cluster;\n", /node:cluster.*src\/workers/],
    ['node:fs/promises in cluster/ but not storage.ts', 'src/cluster/planted.ts', "import { readFile } from 'node:fs/promises';\nexport const r = readFile;\n", /node:fs\/promises.*file I\/O/],
  ];
  for (const [name, file, code, message] of cases) {
    it(`reports ${name}`, async () => {
      const found = await problems(file, code);
      expect(found).toContainEqual(['no-restricted-imports', expect.stringMatching(message)]);
    });
  }

  it('reports every restriction of a folder at once (no rule set replaces another)', async () => {
    const code = [
      "import { request } from 'undici';",
      "import { Redis } from 'ioredis';",
      "import { pino } from 'pino';",
      "import { readFileSync } from 'node:fs';",
      'export const all = [request, Redis, pino, readFileSync];',
      '',
    ].join('\n');
    const found = (await lint('src/admin/planted.ts', code)).filter((m) => m.ruleId === 'no-restricted-imports');
    expect(found.map((m) => m.line)).toEqual([1, 2, 3, 4]);
  });

  it('accepts each dependency in its home', async () => {
    expect(await problems('src/proxy/planted.ts', "import { Pool } from 'undici';\nexport const P = Pool;\n")).toEqual([]);
    expect(await problems('src/sticky/redis-planted.ts', "import { Redis } from 'ioredis';\nexport const R = Redis;\n")).toEqual([]);
    expect(await problems('src/observability/planted.ts', "import { pino } from 'pino';\nimport { Counter } from 'prom-client';\nexport const x = [pino, Counter];\n")).toEqual([]);
    expect(await problems('src/config/planted.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toEqual([]);
    expect(await problems('src/cluster/storage.ts', "import { promises } from 'node:fs';\nexport const p = promises;\n")).toEqual([]);
  });
});

describe('imports flow one way', () => {
  it('reports a feature folder importing app/', async () => {
    const found = await problems('src/admin/planted.ts', "import { VERSION } from '../app/version.js';\nexport const v = VERSION;\n");
    expect(found).toContainEqual(['import-x/no-restricted-paths', expect.stringMatching(/Only src\/main\.ts imports app\//)]);
  });

  it('reports a top-level file other than main.ts importing app/', async () => {
    const found = await problems('src/planted.ts', "import { VERSION } from './app/version.js';\nexport const v = VERSION;\n");
    expect(found).toContainEqual(['import-x/no-restricted-paths', expect.stringMatching(/Only src\/main\.ts/)]);
  });

  it('lets main.ts and app/ itself import app/', async () => {
    expect(await problems('src/main.ts', "import { VERSION } from './app/version.js';\nexport const v = VERSION;\n")).toEqual([]);
    expect(await problems('src/app/planted.ts', "import { VERSION } from './version.js';\nexport const v = VERSION;\n")).toEqual([]);
  });

  it('reports cluster/raft/ importing outside raft/, model/ and lib/', async () => {
    const found = await problems('src/cluster/raft/planted.ts', "import { noopLogger } from '../logger.js';\nexport const l = noopLogger;\n");
    expect(found).toContainEqual(['import-x/no-restricted-paths', expect.stringMatching(/cluster\/raft\/ imports only/)]);
  });

  it('reports an import cycle', async () => {
    // balance/registry.ts imports round-robin.ts; round-robin.ts importing registry.ts closes the loop.
    const found = await problems('src/balance/round-robin.ts', "import { createBalancer } from './registry.js';\nexport const c = createBalancer;\n");
    expect(found).toContainEqual(['import-x/no-cycle', expect.stringMatching(/cycle/i)]);
  });
});

describe('pure cores never read the clock, random, or the process', () => {
  const cases: Array<[string, string, string, string]> = [
    ['Date', 'src/balance/planted.ts', 'export const now = (): number => Date.now();\n', 'no-restricted-globals'],
    ['performance', 'src/cluster/membership.ts', 'export const now = (): number => performance.now();\n', 'no-restricted-globals'],
    ['setTimeout', 'src/cluster/raft/planted.ts', 'export const later = (f: () => void): unknown => setTimeout(f, 1);\n', 'no-restricted-globals'],
    ['setInterval', 'src/model/planted.ts', 'export const every = (f: () => void): unknown => setInterval(f, 1);\n', 'no-restricted-globals'],
    ['process', 'src/config/schema.ts', 'export const env = (): unknown => process.env;\n', 'no-restricted-globals'],
    ['Math.random', 'src/health/outlier-detector.ts', 'export const r = (): number => Math.random();\n', 'no-restricted-properties'],
    ['a node: module', 'src/config/diff.ts', "import { hrtime } from 'node:process';\nexport const h = hrtime;\n", 'no-restricted-imports'],
    ['node:fs, though config/ may read files', 'src/config/schema.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", 'no-restricted-imports'],
    ['an I/O library', 'src/proxy/route-table.ts', "import { request } from 'undici';\nexport const r = request;\n", 'no-restricted-imports'],
  ];
  for (const [name, file, code, rule] of cases) {
    it(`reports ${name} in ${file}`, async () => {
      const found = await problems(file, code);
      expect(found.map(([r]) => r)).toContain(rule);
    });
  }

  it('accepts a pure core that takes time and randomness as arguments', async () => {
    const code = "import type { Balancer } from './balancer.js';\nexport const pick = (b: Balancer, nowMs: number, random: () => number): [Balancer, number] => [b, nowMs + random()];\n";
    expect(await problems('src/balance/planted.ts', code)).toEqual([]);
  });

  it('leaves the clock to the edges', async () => {
    expect(await problems('src/proxy/planted.ts', 'export const now = (): number => Date.now() + performance.now();\n')).toEqual([]);
  });
});
