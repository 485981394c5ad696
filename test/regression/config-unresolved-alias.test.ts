/**
 * Found by the config fuzzer (test/property/config-fuzz.test.ts): an alias to an anchor defined later
 * parses as YAML but made `toJS` throw, which crashed `meshgate check` and a reload. It must come back
 * as a positioned YAML error like any other bad input.
 */
import { expect, it } from 'vitest';
import { formatIssue, parseConfigText } from '../../src/config/load.js';

it('an unresolved alias is a positioned YAML error, not a crash', () => {
  const text = 'node:\n  id: *later\n  listen: &later 127.0.0.1:1\n';
  const r = parseConfigText(text, 'c.yaml', {});
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.issues.map(formatIssue)).toEqual([expect.stringMatching(/^c\.yaml:2:7: YAML: .*alias/i)]);
});
