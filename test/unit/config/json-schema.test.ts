import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import Ajv from 'ajv';
import { schemaText, SCHEMA_FILE } from '../../../scripts/config-schema.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

describe('docs/config.schema.json', () => {
  it('is current (regenerate with npm run schema)', () => {
    expect(readFileSync(`${ROOT}${SCHEMA_FILE}`, 'utf8')).toBe(schemaText());
  });

  it('accepts the example config and refuses an unknown key, a wrong enum and a wrong type', () => {
    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(JSON.parse(schemaText()) as object);
    const example = parse(readFileSync(`${ROOT}config.yaml`, 'utf8').replace(/\$\{MESHGATE_ADMIN_TOKEN:-\}/, '""')) as Record<string, Record<string, unknown>>;
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...example, node: { ...example.node, lisen: 1 } })).toBe(false);
    expect(validate({ ...example, services: { web: { balancer: 'fastest', upstreams: [] } } })).toBe(false);
    expect(validate({ ...example, node: { ...example.node, accessLog: 'yes' } })).toBe(false);
  });
});
