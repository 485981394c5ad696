import { describe, expect, it } from 'vitest';
import { closest, editDistance, keysAt } from '../../../src/config/suggest.js';
import { configSchema } from '../../../src/config/schema.js';
import { parseConfigText } from '../../../src/config/load.js';

describe('did you mean', () => {
  it('measures edits, transpositions included', () => {
    expect(editDistance('listen', 'listen')).toBe(0);
    expect(editDistance('lisen', 'listen')).toBe(1);
    expect(editDistance('balnacer', 'balancer')).toBe(1);
    expect(editDistance('Balancer', 'balancer')).toBe(0);
  });

  it('suggests only what is close, never a far-off name', () => {
    expect(closest('helthCheck', ['healthCheck', 'retries'])).toBe('healthCheck');
    expect(closest('colour', ['listen', 'admin', 'accessLog'])).toBeUndefined();
    expect(closest('x', ['y'])).toBe('y');
    expect(closest('ab', ['xyz'])).toBeUndefined();
  });

  it('knows the keys accepted at each config path (through defaults, arrays and records)', () => {
    expect(keysAt(configSchema, [])).toContain('services');
    expect(keysAt(configSchema, ['node'])).toContain('drainTimeout');
    expect(keysAt(configSchema, ['node', 'admin'])).toEqual(['listen', 'token', 'maxBodySize', 'allowedHosts']);
    expect(keysAt(configSchema, ['services', 'web'])).toContain('healthCheck');
    expect(keysAt(configSchema, ['services', 'web', 'upstreams', 0])).toContain('url');
    expect(keysAt(configSchema, ['nowhere'])).toEqual([]);
  });

  it('adds the hint to unknown-key and unknown-service errors', () => {
    const text = `node: { id: a, listen: 127.0.0.1:1, drainTimout: 1s }
routes: [{ service: wbe }]
services:
  web:
    balanser: round-robin
    upstreams: [{ id: a, url: http://127.0.0.1:2 }]
`;
    const r = parseConfigText(text, 'c.yaml');
    expect(r.ok).toBe(false);
    const messages = r.ok ? [] : r.issues.map((i) => i.message);
    expect(messages).toContain('unknown key "drainTimout" in node; did you mean "drainTimeout"?');
    expect(messages).toContain('unknown key "balanser" in services.web; did you mean "balancer"?');
    expect(messages).toContain('routes.0.service: route names unknown service "wbe"; did you mean "web"?');
  });
});
