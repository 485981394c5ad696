import { describe, expect, it } from 'vitest';
import { formatIssue, parseConfigText } from '../../../src/config/load.js';
import { checkDuration, checkSize } from '../../../src/model/validate/index.js';

const parseDuration = (v: unknown) => { const r = checkDuration(v); return r.ok ? r.value : r.message; };
const parseSize = (v: unknown) => { const r = checkSize(v); return r.ok ? r.value : r.message; };
import { substituteEnv } from '../../../src/config/env.js';
import { restartRequired, effectiveConfig } from '../../../src/config/diff.js';

const base = `node:
  id: gw-1
  listen: 127.0.0.1:8080
services:
  web:
    upstreams:
      - { id: w1, url: http://127.0.0.1:9001 }
routes:
  - { match: { pathPrefix: / }, service: web }
`;

/** `line:column` (1-based) of the first occurrence of `needle` in `text`, plus `skip` characters. */
function loc(text: string, needle: string, skip = 0): string {
  const i = text.indexOf(needle) + skip;
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

function errors(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const r = parseConfigText(text, 'c.yaml', env);
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe('config loader', () => {
  it('accepts a minimal file and fills documented defaults', () => {
    const r = parseConfigText(base, 'c.yaml', {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const web = r.config.services.web!;
    expect(web.balancer).toBe('round-robin');
    expect(web.timeouts).toEqual({ connect: 2000, response: 30000, idle: 60000, upgrade: { handshake: 10000, idle: 3_600_000 } });
    expect(web.upstreams[0]).toEqual({ id: 'w1', url: 'http://127.0.0.1:9001', weight: 1, state: 'active' });
    expect(r.config.node.admin.listen).toBe('127.0.0.1:9901');
    expect(Object.isFrozen(r.config.services.web)).toBe(true);
  });

  it('reports unknown keys at the key, with file:line:column', () => {
    expect(errors(base.replace('  listen: 127.0.0.1:8080', '  listen: 127.0.0.1:8080\n  lisen: 1'))).toEqual(['c.yaml:4:3: unknown key "lisen" in node; did you mean "listen"?']);
  });

  it('reports invalid YAML with its position', () => {
    const e = errors('node:\n  id: [oops\n');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatch(/^c\.yaml:\d+:\d+: YAML: /);
  });

  it('reports a bad duration, weight ≤ 0, a hashOn that names nothing and boundedLoad < 1 at their lines', () => {
    const text = `node: { id: g, listen: 127.0.0.1:1 }
services:
  api:
    balancer: ring-hash
    hashOn: "header:"
    boundedLoad: 0.5
    timeouts: { connect: soon }
    upstreams:
      - { id: a, url: http://h:1, weight: 0 }
`;
    const e = errors(text);
    expect(e).toContain('c.yaml:5:13: services.api.hashOn: hashOn must be header:NAME, cookie:NAME, query:NAME, path or client-ip');
    expect(e).toContain('c.yaml:6:18: services.api.boundedLoad: boundedLoad must be ≥ 1 (1.25 lets no upstream exceed 125% of the mean load)');
    expect(e.some((x) => x.startsWith('c.yaml:7:26: services.api.timeouts.connect: invalid duration "soon"'))).toBe(true);
    expect(e).toContain(`c.yaml:${loc(text, 'weight: 0', 8)}: services.api.upstreams.0.weight: weight must be an integer in 1..10000, got 0`);
  });

  it('refuses an empty upstream list without a cluster, and a route to an unknown service', () => {
    const text = base.replace(/ {4}upstreams:\n.*\n/, '    upstreams: []\n').replace('service: web', 'service: nope');
    const e = errors(text);
    expect(e).toContain(`c.yaml:${loc(text, '[]')}: services.web.upstreams: service "web" has no upstreams (and no cluster to register any)`);
    expect(e).toContain(`c.yaml:${loc(text, 'nope')}: routes.0.service: route names unknown service "nope"`);
  });

  it('substitutes ${ENV}, with defaults, and reports a missing variable at its value', () => {
    const text = base.replace('id: gw-1', 'id: ${PEER_ID}').replace('127.0.0.1:8080', '${LISTEN:-127.0.0.1:8081}');
    const r = parseConfigText(text, 'c.yaml', { PEER_ID: 'gw-9' });
    expect(r.ok && r.config.node.id).toBe('gw-9');
    expect(r.ok && r.config.node.listen).toBe('127.0.0.1:8081');
    expect(errors(text, {})).toEqual(['c.yaml:2:7: environment variable PEER_ID is not set (use ${PEER_ID:-default} for a default)']);
  });

  it('rejects duplicate keys and duplicate upstream ids', () => {
    expect(errors(base.replace('  id: gw-1', '  id: gw-1\n  id: gw-2'))[0]).toMatch(/^c\.yaml:3:3: YAML: Map keys must be unique/);
    expect(errors(base.replace('      - { id: w1, url: http://127.0.0.1:9001 }', '      - { id: w1, url: http://127.0.0.1:9001 }\n      - { id: w1, url: http://127.0.0.1:9002 }'))).toEqual([
      'c.yaml:8:15: services.web.upstreams.1.id: duplicate upstream id "w1"',
    ]);
  });
});

describe('durations, sizes, env', () => {
  it.each([['250ms', 250], ['2s', 2000], ['5m', 300_000], ['1h', 3_600_000], ['1.5s', 1500], [100, 100]])('%s → %i ms', (i, ms) => {
    expect(parseDuration(i)).toBe(ms);
  });
  it.each(['2', '2 s', '-1s', '1d', '', 'ms'])('rejects duration %j', (i) => expect(typeof parseDuration(i)).toBe('string'));
  it.each([['16KiB', 16384], ['10MiB', 10 * 1024 * 1024], ['512', 512], [1024, 1024]])('size %s → %i', (i, b) => expect(parseSize(i)).toBe(b));
  it('escapes $${ and reports each missing name', () => {
    expect(substituteEnv('a$${B}c', {})).toEqual({ value: 'a${B}c', missing: [] });
    expect(substituteEnv('${A}-${B}', { A: '1' })).toEqual({ value: '1-', missing: ['B'] });
  });
});

describe('reload diff', () => {
  it('lists keys that need a restart and keeps their running values', () => {
    const a = parseConfigText(base, 'c', {});
    const b = parseConfigText(base.replace('127.0.0.1:8080', '127.0.0.1:8090').replace('9001', '9002'), 'c', {});
    if (!a.ok || !b.ok) throw new Error('fixture invalid');
    expect(restartRequired(a.config, b.config)).toEqual(['node.listen']);
    const eff = effectiveConfig(a.config, b.config);
    expect(eff.node.listen).toBe('127.0.0.1:8080');
    expect(eff.services.web!.upstreams[0]!.url).toBe('http://127.0.0.1:9002');
  });

  it('node.tls: listen and http2 (and adding or removing the block) need a restart; certificates, minVersion and redirectHttp apply', () => {
    const tls = (listen: string, extra = '') => base.replace('  listen: 127.0.0.1:8080\n', `  listen: 127.0.0.1:8080\n  tls:\n    listen: ${listen}\n    certificates: [{ cert: /c/a.crt, key: /c/a.key }]\n${extra}`);
    const parse = (t: string) => {
      const r = parseConfigText(t, 'c', {});
      if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
      return r.config;
    };
    const a = parse(tls('127.0.0.1:8443'));
    expect(a.node.tls).toMatchObject({ minVersion: 'TLSv1.2', http2: true, redirectHttp: false });
    const b = parse(tls('127.0.0.1:9443', '    http2: false\n    minVersion: TLSv1.3\n    redirectHttp: true\n'));
    expect(restartRequired(a, b)).toEqual(['node.tls.listen', 'node.tls.http2']);
    expect(effectiveConfig(a, b).node.tls).toMatchObject({ listen: '127.0.0.1:8443', http2: true, minVersion: 'TLSv1.3', redirectHttp: true });
    const none = parse(base);
    expect(restartRequired(none, a)).toEqual(['node.tls.listen', 'node.tls.http2']);
    expect(effectiveConfig(none, a).node.tls).toBeUndefined();
    expect(effectiveConfig(a, none).node.tls).toEqual(a.node.tls);
  });

  it('node.tls refuses TLS 1.1 as a minimum, an empty certificate list and unknown keys', () => {
    const t = (body: string) => parseConfigText(base.replace('  listen: 127.0.0.1:8080\n', `  listen: 127.0.0.1:8080\n  tls:\n    listen: 127.0.0.1:8443\n${body}`), 'c', {});
    const r1 = t('    certificates: [{ cert: a, key: b }]\n    minVersion: TLSv1.1\n');
    expect(r1.ok).toBe(false);
    const r2 = t('    certificates: []\n');
    expect(!r2.ok && r2.issues[0]!.message).toMatch(/at least one/);
    const r3 = t('    certificates: [{ cert: a, key: b, pass: x }]\n');
    expect(!r3.ok && r3.issues[0]!.code).toBe('MG_ERR_CONFIG_UNKNOWN_KEY');
  });
});
