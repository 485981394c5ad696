/** `__proto__` is never a config key; a plain object would swallow it silently, so the loader reports it. */
import { expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';

it.each([false, true])('reports a __proto__ key at its line (positioned only: %s)', (positioned) => {
  const text = 'node: { id: g, listen: 127.0.0.1:1 }\nservices:\n  web:\n    upstreams:\n      - { id: a, url: "http://127.0.0.1:1", "__proto__": 1 }\n';
  const r = parseConfigText(text, 'c.yaml', {}, { positioned });
  expect(r.ok ? [] : r.issues.map((i) => `${i.line}:${i.column} ${i.message}`)).toEqual(['5:45 unknown key "__proto__"']);
});
