// Lint rules that keep the architecture honest (docs/architecture.md "Dependency rules", ../shared/style.md).
//
// ESLint keeps only the last config's options for a rule, so two configs that both set
// `no-restricted-imports` for a file do not add up: the later one replaces the earlier (that is how
// these rules once cancelled each other). Here every rule below is written once, as data, and
// `architectureConfigs()` gives each zone (folder or file) ONE config whose `no-restricted-imports`
// holds every restriction that applies there. test/unit/lint/architecture-rules.test.ts plants each
// violation and shows lint fails.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** Each dependency has one home. `allowedIn` globs are relative to the repo root; anything else in src/ may not import it. */
const HOMES = [
  { names: ['undici', 'http-proxy'], allowedIn: ['src/proxy/**'], why: 'HTTP client I/O lives in src/proxy/' },
  { names: ['ioredis'], allowedIn: ['src/sticky/redis-*.ts'], why: 'Redis I/O lives in src/sticky/redis-*.ts' },
  { names: ['pino', 'prom-client'], allowedIn: ['src/observability/**'], why: 'logging and metrics live in src/observability/' },
  // The worker processes of node.workers: forked and talked to only there (main.ts asks isWorker).
  { names: ['node:cluster', 'cluster'], allowedIn: ['src/workers/**', 'src/main.ts'], why: 'process management lives in src/workers/' },
  {
    names: ['node:fs', 'node:fs/promises', 'fs', 'fs/promises'],
    // The config file and the files it names; the Raft data dir; and three read-or-open-once edges
    // documented in docs/architecture.md. (config/schema.ts and diff.ts are pure: no I/O at all.)
    allowedIn: [
      'src/config/**',
      'src/cluster/storage.ts',
      'src/observability/log.ts', // opens the access-log file (node.accessLog.file) at start, to fail early
      'src/observability/line-batches.ts', // writes the access log's 64 KiB batches (fs.write, off the request path)
      'src/dashboard/index.ts', // reads its own assets once at start
      'src/app/version.ts', // reads package.json once at start
    ],
    why: 'file I/O lives in config/ (the config file and the files it names) and cluster/storage.ts (the Raft data dir)',
  },
];

/**
 * Pure cores: time and randomness come in as arguments, no I/O at all (DESIGN.md "pure cores").
 * Keep in sync with docs/architecture.md.
 */
const PURE = [
  'src/cluster/raft/**', 'src/model/**', 'src/balance/**',
  'src/cluster/membership.ts', 'src/cluster/rejections.ts',
  'src/health/outlier-detector.ts',
  'src/config/schema.ts', 'src/config/diff.ts',
  'src/proxy/route-table.ts',
];

const PURE_IMPORT_BANS = [
  { group: ['node:*', 'fs', 'fs/*', 'net', 'http', 'https', 'http2', 'crypto', 'os', 'dgram', 'child_process', 'worker_threads', 'timers', 'timers/*', 'perf_hooks'], message: 'Pure cores do no I/O.' },
  { group: ['undici', 'http-proxy', 'ioredis', 'pino', 'prom-client'], message: 'Pure cores import no I/O library.' },
];

const PURE_GLOBAL_BANS = [
  ...['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate'].map((name) => ({ name, message: 'Pure cores take time as ticks or arguments.' })),
  { name: 'Date', message: 'Pure cores never read the clock.' },
  { name: 'performance', message: 'Pure cores never read the clock.' },
  { name: 'process', message: 'Pure cores do no I/O.' },
  { name: 'crypto', message: 'Pure cores take randomness as an argument.' },
];

// --- composing one rule set per zone ---------------------------------------------------------------

/** A glob as a regular expression (only `**`, `*` and literal text occur above). */
function globRegex(glob) {
  const body = glob.split('**').map((part) => part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*');
  return new RegExp(`^${body}$`);
}

/** A path that only files of this zone have (stands for the zone when asking which rules apply). */
function sample(glob) {
  return glob.replace('/**/*.ts', '/zz/zz.ts').replace('/**', '/zz/zz.ts').replace('*', 'zz');
}

/** Zones ordered from widest to narrowest: flat config lets the last matching config win. */
function specificity(glob) {
  const fixed = glob.split('*')[0];
  return fixed.split('/').length * 4 + (glob.includes('**') ? 0 : glob.includes('*') ? 1 : 2);
}

function restrictionsFor(file) {
  const inside = (globs) => globs.some((g) => globRegex(g).test(file));
  const paths = HOMES.filter((h) => !inside(h.allowedIn)).flatMap((h) =>
    h.names.map((name) => ({ name, message: `${h.why} (docs/architecture.md "Dependency rules").` })));
  const pure = inside(PURE);
  return {
    'no-restricted-imports': pure ? ['error', { paths, patterns: PURE_IMPORT_BANS }] : ['error', { paths }],
    'no-restricted-globals': pure ? ['error', ...PURE_GLOBAL_BANS] : 'off',
    'no-restricted-properties': pure ? ['error', { object: 'Math', property: 'random', message: 'Pure cores take randomness as an argument (inject a seeded source).' }] : 'off',
  };
}

function architectureConfigs() {
  const zones = [...new Set(['src/**/*.ts', ...HOMES.flatMap((h) => h.allowedIn), ...PURE])].sort((a, b) => specificity(a) - specificity(b));
  // Two zones of equal specificity that overlap would make the result depend on their order.
  for (const a of zones) for (const b of zones) {
    if (a !== b && specificity(a) === specificity(b) && (globRegex(a).test(sample(b)) || globRegex(b).test(sample(a)))) {
      throw new Error(`eslint.config.js: zones ${a} and ${b} overlap at the same specificity`);
    }
  }
  return zones.map((zone) => ({ name: `architecture: ${zone}`, files: [zone.endsWith('/**') ? `${zone}/*.ts` : zone], rules: restrictionsFor(sample(zone)) }));
}

// --- the config --------------------------------------------------------------------------------------

const root = import.meta.dirname;

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...architectureConfigs(),
  {
    name: 'architecture: import graph',
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // The plugin's TypeScript settings (which files it parses to follow imports), with the resolver that maps './x.js' to x.ts.
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver': undefined,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: `${root}/tsconfig.json` })],
    },
    rules: {
      // Imports flow one way (main → app → features → cores): nothing but main.ts imports app/.
      'import-x/no-restricted-paths': ['error', {
        basePath: root,
        zones: [
          { target: ['./src/!(app)/**/*', './src/!(main).ts'], from: './src/app', message: 'Only src/main.ts imports app/ (the composition root); pass an interface in instead.' },
          { target: './src/cluster/raft', from: './src', except: ['./cluster/raft', './model', './lib'], message: 'cluster/raft/ imports only cluster/raft/, model/ and lib/.' },
        ],
      }],
      // No import cycles. The rule follows value imports only (`import type` is erased at run time).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
);
