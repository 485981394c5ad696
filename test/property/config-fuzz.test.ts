/**
 * The loader turns any input into either a Config or positioned issues, and never throws.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfigText } from '../../src/config/load.js';

const valid = `node:
  id: gw-1
  listen: 127.0.0.1:8080
services:
  web:
    balancer: ring-hash
    hashOn: header:x-user
    upstreams:
      - { id: w1, url: http://127.0.0.1:9001, weight: 2 }
routes:
  - { match: { pathPrefix: / }, service: web }
`;

function checkResult(text: string): void {
  const r = parseConfigText(text, 'f.yaml', {});
  if (r.ok) return;
  expect(r.issues.length).toBeGreaterThan(0);
  const lines = text.split('\n').length;
  for (const i of r.issues) {
    expect(i.line).toBeGreaterThanOrEqual(1);
    expect(i.line).toBeLessThanOrEqual(lines + 1);
    expect(i.column).toBeGreaterThanOrEqual(1);
    expect(i.message.length).toBeGreaterThan(0);
  }
}

describe('config loader fuzzing', () => {
  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => checkResult(s)), { numRuns: 500 });
  });

  it('never throws on mutations of a valid file (a character deleted, replaced or inserted)', () => {
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.constantFrom('', ' ', ':', '-', '{', '[', '\n', 'x', '0', '"', '\t', '&a', '*a'), (at, ch) => {
        checkResult(valid.slice(0, at) + ch + valid.slice(at + 1));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on structurally random YAML values', () => {
    const yamlValue = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 3 })),
    })).v;
    fc.assert(
      fc.property(yamlValue, yamlValue, (node, services) => checkResult(JSON.stringify({ node, services }))),
      { numRuns: 300 },
    );
  });
});
