/**
 * Router.apply: a rebuilt routing table keeps what the data path relies on across membership writes
 * and reloads — runtimes (and their pools) of upstreams that stay, and slow start for an upstream that
 * becomes pickable with the new table (Envoy's slow_start_config: "a host that just became healthy or
 * was just added").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { Router } from '../../../src/proxy/routing.js';
import { UpstreamPools } from '../../../src/proxy/upstream-pools.js';
import type { ClusterMembership } from '../../../src/model/index.js';

const pools: UpstreamPools[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.closeAll(true)));
});

function config(): Config {
  const r = parseConfigText(
    [
      'node: { id: t, listen: 127.0.0.1:0, admin: { listen: 127.0.0.1:0 } }',
      'routes: [{ match: { pathPrefix: / }, service: web }]',
      'services:',
      '  web:',
      '    slowStart: 30s',
      '    upstreams:',
      '      - { id: a, url: http://127.0.0.1:9001 }',
    ].join('\n'),
    'test.yaml',
  );
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

function membership(state: 'active' | 'disabled'): ClusterMembership {
  return new Map([['web', new Map([['b', { url: 'http://127.0.0.1:9002', weight: 1, state }]])]]);
}

describe('Router.apply', () => {
  it('starts slow start for an upstream re-enabled by a membership write, and keeps runtimes that stay', () => {
    let now = 1_000_000;
    const p = new UpstreamPools();
    pools.push(p);
    const router = new Router(p, new Metrics({ defaultMetrics: false }), () => now);
    const cfg = config();
    router.apply(cfg, membership('disabled'), 1);
    const before = router.table!.services.get('web')!;
    expect(before.upstreams.get('b')!.eligibleSinceMs).toBeUndefined();
    const a = before.upstreams.get('a')!;

    now += 5_000;
    router.apply(cfg, membership('active'), 1);
    const after = router.table!.services.get('web')!;
    expect(after.upstreams.get('a')).toBe(a); // same runtime, same pool, counters kept
    expect(a.eligibleSinceMs).toBeUndefined(); // pickable before and after: no slow start
    expect(after.upstreams.get('b')!.eligibleSinceMs).toBe(now); // newly pickable: slow start from now
  });
});
