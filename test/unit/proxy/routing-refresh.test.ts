/**
 * RoutingRefresh: a rebuilt routing snapshot keeps what the data path relies on across membership
 * writes and reloads — runtimes (and their pools) of upstreams that stay, the balancer of a service
 * whose inputs did not change, and slow start for an upstream that becomes pickable with the new
 * snapshot (Envoy's slow_start_config: "a host that just became healthy or was just added") — and a
 * snapshot already handed out is never changed by a later refresh.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { RoutingRefresh } from '../../../src/proxy/routing-refresh.js';
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

/** A refresh over settable inputs, with a deferral the test runs by hand (one call = one event-loop turn). */
function harness(cfg: Config) {
  const state = { now: 1_000_000, membership: membership('disabled') as ClusterMembership | undefined };
  const turns: Array<() => void> = [];
  const p = new UpstreamPools();
  pools.push(p);
  const refresh = new RoutingRefresh({
    pools: p,
    metrics: new Metrics({ defaultMetrics: false }),
    sources: { config: () => cfg, generation: () => 1, membership: () => state.membership, eligibility: () => undefined },
    defer: (fn) => turns.push(fn),
    nowMs: () => state.now,
  });
  const turn = () => {
    for (const fn of turns.splice(0)) fn();
  };
  return { state, refresh, turn, turns };
}

describe('RoutingRefresh', () => {
  it('starts slow start for an upstream re-enabled by a membership write, and keeps runtimes that stay', () => {
    const { state, refresh, turn } = harness(config());
    refresh.request({ kind: 'start' });
    refresh.flushNow();
    const before = refresh.snapshot!.services.get('web')!;
    expect(before.upstreams.get('b')!.eligibleSinceMs).toBeUndefined();
    const a = before.upstreams.get('a')!;

    state.now += 5_000;
    state.membership = membership('active');
    refresh.request({ kind: 'membership' });
    expect(refresh.snapshot!.services.get('web')).toBe(before); // nothing rebuilt inside the caller's turn
    turn();
    const after = refresh.snapshot!.services.get('web')!;
    expect(after.upstreams.get('a')).toBe(a); // same runtime, same pool, counters kept
    expect(a.eligibleSinceMs).toBeUndefined(); // pickable before and after: no slow start
    expect(after.upstreams.get('b')!.eligibleSinceMs).toBe(state.now); // newly pickable: slow start from now
    // The snapshot a request held is unchanged: its members and balancer are those it started with.
    expect(before.pickable.map((s) => s.id)).toEqual(['a']);
    expect(before.balancer).not.toBe(after.balancer);
  });

  it('coalesces a burst of events into one rebuild and reuses the balancer of an unchanged service', () => {
    const { refresh, turn, turns } = harness(config());
    refresh.request({ kind: 'start' });
    refresh.flushNow();
    turn(); // the start's own deferral: flushNow already built, so it does nothing
    const first = refresh.snapshot!;
    expect(first.through).toBe(1);
    for (let i = 0; i < 100; i++) refresh.request({ kind: 'health', service: 'web' });
    expect(turns.length).toBe(1);
    turn();
    const next = refresh.snapshot!;
    expect(next).not.toBe(first);
    expect(next.through).toBe(101);
    expect(next.services.get('web')!.balancer).toBe(first.services.get('web')!.balancer);
  });
});
