/**
 * What a reload may change is decided in one place (src/config/diff.ts): every key of the schema is
 * either restart-only or live, exactly once; restartRequired and effectiveConfig follow the list; and
 * the docs table (docs/config.md "Reload") says the same.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIVE_KEYS, RESTART_ONLY_KEYS, effectiveConfig, restartRequired } from '../../../src/config/diff.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';

const full = (over: { listen?: string; maxBodySize?: string; token?: string; secret?: string } = {}) => `node:
  id: gw-1
  listen: ${over.listen ?? '127.0.0.1:8080'}
  maxBodySize: ${over.maxBodySize ?? '1MiB'}
  admin: { listen: 127.0.0.1:9901, token: ${over.token ?? 'tok-1'} }
  tls: { listen: 127.0.0.1:8443, certificates: [{ cert: ./site.crt, key: ./site.key }], minVersion: TLSv1.2, http2: true, redirectHttp: false }
cluster:
  listen: 127.0.0.1:7946
  dataDir: /tmp/mg
  secret: ${over.secret ?? '0123456789abcdef0123'}
redis: { url: redis://127.0.0.1:6379 }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams: [{ id: a, url: http://127.0.0.1:9001 }]
`;

function parse(text: string): Config {
  const r = parseConfigText(text, 'c.yaml', {});
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

/** Every key of a parsed config, down to the leaves of `node` (the other top-level blocks are taken whole). */
function keysOf(c: Config): string[] {
  const out: string[] = [];
  for (const top of Object.keys(c)) {
    if (top !== 'node') out.push(top);
  }
  for (const [k, v] of Object.entries(c.node)) {
    if (k === 'admin' || k === 'tls') for (const a of Object.keys(v as object)) out.push(`node.${k}.${a}`);
    else out.push(`node.${k}`);
  }
  return out;
}

describe('restart-only and live keys', () => {
  it('classifies every key of the schema exactly once', () => {
    const rules = [...RESTART_ONLY_KEYS, ...LIVE_KEYS].map((r) => r.key);
    expect(new Set(rules).size).toBe(rules.length);
    const keys = keysOf(parse(full()));
    expect(keys.length).toBeGreaterThan(20);
    for (const key of keys) expect({ key, rules: rules.filter((r) => key === r || key.startsWith(`${r}.`)) }).toEqual({ key, rules: [key] });
    // …and names no key that does not exist.
    for (const r of rules) expect(keys).toContain(r);
  });

  it('reports a changed restart-only key and keeps its running value; applies a live one', () => {
    const running = parse(full());
    const next = parse(full({ listen: '127.0.0.1:8090', token: 'tok-2', secret: 'another-secret-0123456', maxBodySize: '1KiB' }));
    expect(restartRequired(running, next).sort()).toEqual(['cluster', 'node.admin.token', 'node.listen']);
    const eff = effectiveConfig(running, next);
    expect(eff.node.listen).toBe('127.0.0.1:8080');
    expect(eff.node.admin.token).toBe('tok-1');
    expect(eff.cluster).toEqual(running.cluster);
    expect(eff.node.maxBodySize).toBe(1024);
    expect(restartRequired(running, eff)).toEqual([]);
  });

  it('docs/config.md "Reload" lists the same keys as the declaration, each with its kind', () => {
    const md = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
    const section = md.slice(md.indexOf('## Reload'));
    const rows = [...section.matchAll(/^\| `([^`]+)` \| (restart only|live) \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    const declared = [...RESTART_ONLY_KEYS.map((r) => `${r.key} restart only`), ...LIVE_KEYS.map((r) => `${r.key} live`)];
    expect(rows.sort()).toEqual(declared.sort());
  });
});
