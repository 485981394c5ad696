/**
 * The error catalogue and the config reference stay in sync with the source (fastify's errors.test.js).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { z } from 'zod';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('catalogues', () => {
  it('every MG_ERR code in src is in docs/errors.md, and every documented code exists', () => {
    const codes = new Set<string>();
    for (const f of sources('src')) for (const m of readFileSync(f, 'utf8').matchAll(/MG_ERR_[A-Z]+_[A-Z_]*[A-Z]/g)) codes.add(m[0]);
    const doc = readFileSync('docs/errors.md', 'utf8');
    const documented = new Set([...doc.matchAll(/`(MG_ERR_[A-Z_]+)`/g)].map((m) => m[1]!));
    expect([...codes].filter((c) => !documented.has(c)).sort()).toEqual([]);
    expect([...documented].filter((c) => !codes.has(c)).sort()).toEqual([]);
  });

  it('every config key of the schema is in docs/config.md', () => {
    const keys = new Set<string>();
    const walk = (t: z.ZodTypeAny, path: string): void => {
      const inner = unwrap(t);
      if (inner instanceof z.ZodObject) {
        for (const [k, v] of Object.entries(inner.shape as Record<string, z.ZodTypeAny>)) {
          const p = path ? `${path}.${k}` : k;
          keys.add(p);
          walk(v, p);
        }
      } else if (inner instanceof z.ZodArray) walk(inner.element, `${path}[]`);
      else if (inner instanceof z.ZodRecord) walk(inner.valueSchema, `${path}.<name>`);
    };
    walk(configSchema, '');
    const doc = readFileSync('docs/config.md', 'utf8');
    const missing = [...keys].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});

function unwrap(t: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (t instanceof z.ZodEffects) t = t.innerType();
    else if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
    else if (t instanceof z.ZodDefault) t = t.removeDefault();
    else return t;
  }
}
