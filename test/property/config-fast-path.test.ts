/**
 * The loader's fast first pass (js-yaml, src/config/fast-parse.ts) and its positioned pass (`yaml` with
 * line:column) must agree on values: a text the positioned pass accepts, the fast pass accepts with a
 * deep-equal Config; a text only the fast pass accepts is one the positioned pass refuses for YAML syntax
 * alone (js-yaml is more lenient about the indentation of a flow collection continued on the next line),
 * never for a value — so no value the schema would refuse can slip through. Texts are mutations of a
 * valid file (a character deleted, replaced or inserted, YAML's awkward characters included), YAML 1.1
 * look-alikes that 1.2 reads as strings, duplicate keys, and env references.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';

const valid = `node:
  id: gw-1
  listen: 127.0.0.1:8080
  admin: { token: "\${TOKEN:-t}" }
services:
  web:
    balancer: ring-hash
    hashOn: header:x-user
    healthCheck: { interval: 2s, timeout: 1s, expectedStatus: [200, 204] }
    retries: { attempts: 2, on: [connect-failure, reset, 503] }
    upstreams:
      - { id: w1, url: http://127.0.0.1:9001, weight: 2 }
      - id: w2
        url: "http://127.0.0.1:9002"
        state: draining
routes:
  - { match: { pathPrefix: / }, service: web }
`;
const env = { TOKEN: 'from-env', HOST: '127.0.0.1' };

function agree(text: string): boolean {
  const fast = parseConfigText(text, 'f.yaml', env);
  const slow = parseConfigText(text, 'f.yaml', env, { positioned: true });
  if (slow.ok) {
    expect({ text, fast: fast.ok }).toEqual({ text, fast: true });
    if (fast.ok) expect(fast.config).toEqual(slow.config);
  } else if (fast.ok) {
    expect({ text, codes: [...new Set(slow.issues.map((i) => i.code))] }).toEqual({ text, codes: ['MG_ERR_CONFIG_YAML'] });
  }
  return slow.ok;
}

describe('config fast pass agrees with the positioned pass', () => {
  it('on mutations of a valid file', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.constantFrom('', ' ', ':', '-', '{', '}', '[', ']', '\n', 'x', '0', '"', "'", '\t', '#', '&a', '*a', '!!str ', '%', '@', '`', '|', '>', '? ', '${HOST}', '${NOPE}'), (at, ch) => {
        if (agree(valid.slice(0, at) + ch + valid.slice(at + 1))) accepted++;
      }),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(10);
  });

  it('on values YAML 1.1 and 1.2 read differently, duplicate keys and special scalars', () => {
    for (const v of ['yes', 'on', 'off', 'no', 'y', '~', 'null', '0o17', '0x1F', '1_000', '1e3', '.inf', '2001-12-14', '1:20', '"503"', '503', '-', '""']) {
      agree(valid.replace('attempts: 2', `attempts: ${v}`));
      agree(valid.replace('hashOn: header:x-user', `hashOn: ${v}`));
    }
    agree(valid.replace('  listen: 127.0.0.1:8080\n', '  listen: 127.0.0.1:8080\n  listen: 127.0.0.1:8081\n'));
    agree(valid.replace('routes:', 'routes:\nroutes:'));
    expect(agree(valid)).toBe(true);
  });
});
