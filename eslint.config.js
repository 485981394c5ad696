// Lint rules that keep the architecture honest (../shared/style.md, dependency rules 1–3).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const pureBans = {
  'no-restricted-globals': ['error',
    { name: 'setTimeout', message: 'Pure cores take time as ticks or arguments.' },
    { name: 'setInterval', message: 'Pure cores take time as ticks or arguments.' },
    { name: 'setImmediate', message: 'Pure cores take time as ticks or arguments.' },
    { name: 'Date', message: 'Pure cores never read the clock.' },
    { name: 'performance', message: 'Pure cores never read the clock.' },
    { name: 'process', message: 'Pure cores do no I/O.' },
  ],
  'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Inject a seeded random source.' }],
  'no-restricted-imports': ['error', { patterns: [
    { group: ['node:*', 'fs', 'net', 'http', 'crypto', 'os', 'dgram', 'child_process'], message: 'Pure cores do no I/O.' },
    { group: ['undici', 'http-proxy', 'ioredis', 'pino', 'prom-client'], message: 'Pure cores import no I/O library.' },
  ] }],
};

const onlyImporter = (pkgs, where) => ({
  files: ['src/**/*.ts'],
  ignores: where,
  rules: { 'no-restricted-imports': ['error', { paths: pkgs.map((name) => ({ name, message: `${name} is imported only by ${where.join(', ')}` })) }] },
});

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
  onlyImporter(['undici', 'http-proxy'], ['src/proxy/**']),
  onlyImporter(['ioredis'], ['src/sticky/redis-*.ts', 'src/sticky/redis/**']),
  onlyImporter(['pino', 'prom-client'], ['src/observability/**']),
  {
    files: ['src/cluster/raft/**/*.ts', 'src/model/**/*.ts', 'src/cluster/rejections.ts', 'src/balance/**/*.ts', 'src/health/outlier-detector.ts', 'src/cluster/membership.ts', 'src/config/schema.ts', 'src/config/diff.ts', 'src/proxy/route-table.ts'],
    rules: pureBans,
  },
);
