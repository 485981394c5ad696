/**
 * `redis:` names exactly one topology (DESIGN.md §12): url, sentinels + name, or cluster. Two at once,
 * none, a Sentinel list without a group name, or an empty cluster list are config errors that say so.
 */
import { describe, expect, it } from 'vitest';
import { formatIssue, parseConfigText } from '../../../src/config/load.js';

const base = (redis: string): string => `node:
  id: gw-1
  listen: 127.0.0.1:8080
redis:
${redis}
services:
  web:
    upstreams:
      - { id: w1, url: http://127.0.0.1:9001 }
routes:
  - { match: { pathPrefix: / }, service: web }
`;

function errors(redis: string): string[] {
  const r = parseConfigText(base(redis), 'c.yaml', {});
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe('redis topology in config', () => {
  it('accepts each topology alone', () => {
    expect(errors('  url: redis://127.0.0.1:6379')).toEqual([]);
    expect(errors('  sentinels: [{ host: 127.0.0.1, port: 26379 }]\n  name: mg')).toEqual([]);
    expect(errors('  cluster: [{ host: 127.0.0.1, port: 7000 }, { host: 127.0.0.1, port: 7001 }]\n  password: pw')).toEqual([]);
  });

  it('rejects two topologies at once, naming both', () => {
    const e = errors('  url: redis://127.0.0.1:6379\n  cluster: [{ host: 127.0.0.1, port: 7000 }]');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatch(/redis\.cluster.*redis names url and cluster; use exactly one of url, sentinels \(with name\) or cluster/);
    expect(errors('  sentinels: [{ host: 127.0.0.1, port: 26379 }]\n  name: mg\n  cluster: [{ host: 127.0.0.1, port: 7000 }]').join()).toMatch(/sentinels and cluster/);
  });

  it('rejects none, a Sentinel list without its group name, a lone name, an empty cluster, a bad port', () => {
    expect(errors('  keyPrefix: "x:"').join()).toMatch(/redis needs one of url, sentinels \(with name\) or cluster/);
    expect(errors('  sentinels: [{ host: 127.0.0.1, port: 26379 }]').join()).toMatch(/redis\.sentinels needs redis\.name/);
    expect(errors('  url: redis://127.0.0.1:6379\n  name: mg').join()).toMatch(/redis\.name is the Sentinel master group name/);
    expect(errors('  cluster: []').join()).toMatch(/redis\.cluster needs at least one seed node/);
    expect(errors('  cluster: [{ host: 127.0.0.1, port: 70000 }]').join()).toMatch(/redis\.cluster\.0\.port/);
    expect(errors('  cluster: [{ host: 127.0.0.1, port: 7000, role: master }]').join()).toMatch(/role/);
  });
});
