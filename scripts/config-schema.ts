/**
 * Writes docs/config.schema.json from the zod schema (`npm run schema`). With `--check`, exits 1
 * when the committed file differs (CI and test/unit/config/json-schema.test.ts use the same function).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configSchema } from '../src/config/schema.js';
import { toJsonSchema } from '../src/config/json-schema.js';

export const SCHEMA_FILE = 'docs/config.schema.json';

export function schemaText(): string {
  return `${JSON.stringify(toJsonSchema(configSchema), null, 2)}\n`;
}

if (process.argv[1]?.endsWith('config-schema.js')) {
  const text = schemaText();
  if (process.argv.includes('--check')) {
    const current = readFileSync(SCHEMA_FILE, 'utf8');
    if (current !== text) {
      process.stderr.write(`${SCHEMA_FILE} is stale: run npm run schema\n`);
      process.exit(1);
    }
  } else writeFileSync(SCHEMA_FILE, text);
}
