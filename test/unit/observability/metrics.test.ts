import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { Metrics } from '../../../src/observability/metrics.js';

const lines = async (m: Metrics, prefix: string): Promise<string[]> => (await m.render()).body.split('\n').filter((l) => l.startsWith(prefix));

describe('Metrics: per-upstream series', () => {
  it('counts requests by status class and folds them into the counter at every scrape', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const s = m.bindUpstream('web', 'w1');
    for (const status of [200, 204, 302, 404, 503, 599, 101]) s.countStatus(status);
    // (Series order within a family carries no meaning in the exposition format.)
    expect((await lines(m, 'meshgate_upstream_requests_total{')).sort()).toEqual([
      'meshgate_upstream_requests_total{service="web",upstream="w1",class="1xx"} 1',
      'meshgate_upstream_requests_total{service="web",upstream="w1",class="2xx"} 2',
      'meshgate_upstream_requests_total{service="web",upstream="w1",class="3xx"} 1',
      'meshgate_upstream_requests_total{service="web",upstream="w1",class="4xx"} 1',
      'meshgate_upstream_requests_total{service="web",upstream="w1",class="5xx"} 2',
    ]);
    s.countStatus(200);
    expect(await lines(m, 'meshgate_upstream_requests_total{service="web",upstream="w1",class="2xx"}')).toEqual(['meshgate_upstream_requests_total{service="web",upstream="w1",class="2xx"} 3']);
    expect(m.bindUpstream('web', 'w1')).toBe(s);
  });

  it('exposes the duration histogram as a prom-client Histogram would: cumulative buckets, +Inf, sum, count', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.bindUpstream('web', 'idle'); // never observed: no series, as with prom-client
    const s = m.bindUpstream('web', 'w1');
    for (const v of [0.0005, 0.001, 0.003, 0.2, 31]) s.observeSeconds(v);
    expect(() => s.observeSeconds(Number.NaN)).toThrow(TypeError);
    const out = await lines(m, 'meshgate_upstream_request_duration_seconds');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{service="web",upstream="w1",le="0.001"} 2');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{service="web",upstream="w1",le="0.005"} 3');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{service="web",upstream="w1",le="30"} 4');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{service="web",upstream="w1",le="+Inf"} 5');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_sum{service="web",upstream="w1"} 31.2045');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_count{service="web",upstream="w1"} 5');
    expect(out.filter((l) => l.includes('idle'))).toEqual([]);
    expect(out.filter((l) => l.startsWith('meshgate_upstream_request_duration_seconds_bucket'))).toHaveLength(15);
    const text = (await m.render()).body;
    expect(text).toContain('# TYPE meshgate_upstream_request_duration_seconds histogram');
  });

  it('renders the same samples as a real prom-client Histogram fed the same values (the exposition is pinned to prom-client)', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const reference = new Registry();
    const h = new Histogram({ name: 'meshgate_upstream_request_duration_seconds', help: 'x', labelNames: ['service', 'upstream'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [reference] });
    const values: Array<[string, string, number]> = [['api', 'a1', 0.002], ['api', 'a1', 0.7], ['web', 'we"ird\\id', 12], ['web', 'w2', 0], ['web', 'w2', 0.001]];
    for (const [s, u, v] of values) {
      m.bindUpstream(s, u).observeSeconds(v);
      h.labels(s, u).observe(v);
    }
    const samples = (text: string) => new Set(text.split('\n').filter((l) => l.startsWith('meshgate_upstream_request_duration_seconds')).map(canonical));
    expect(samples((await m.render()).body)).toEqual(samples(await reference.metrics()));
  });

  it('registers the Raft and sticky families only when the peer runs them', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const names = async () => (await m.render()).body;
    expect(await names()).not.toMatch(/meshgate_raft_|meshgate_sticky_/);
    m.enableCluster();
    m.enableCluster();
    expect(await names()).toContain('meshgate_raft_has_quorum 0');
    expect(await names()).not.toMatch(/meshgate_sticky_/);
    m.enableSticky();
    expect(await names()).toContain('meshgate_sticky_store_up 0');
  });

  it('removes every series of an upstream that left the routing snapshot', async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (const id of ['a', 'b']) {
      const s = m.bindUpstream('web', id);
      s.countStatus(200);
      s.observeSeconds(0.01);
      s.connectError('reset');
      m.upstreamHealthy.labels('web', id).set(1);
      m.ejectionsTotal.labels('web', id).inc();
    }
    m.observeRequest('web', 200, 5);
    m.observeRequest('old', 503, 5);
    const before = (await m.render()).body;
    expect(before).toContain('upstream="b"');
    m.retainUpstreams(new Map([['web', ['a']]]));
    const after = (await m.render()).body;
    expect(after).not.toContain('upstream="b"');
    expect(after).toContain('upstream="a"');
    expect(after).not.toContain('service="old"');
    expect(after).toContain('meshgate_requests_total{service="web",class="2xx"} 1');
  });

  it('exports default process metrics under their standard names', async () => {
    const body = (await new Metrics().render()).body;
    expect(body).toContain('process_cpu_seconds_total');
    expect(body).toContain('nodejs_eventloop_lag_seconds');
    expect(body).not.toContain('meshgate_process_');
  });
});

/** A sample line with its labels sorted (label order carries no meaning in the text format). */
function canonical(line: string): string {
  const m = /^([^{ ]+)(?:\{(.*)\})? (.*)$/.exec(line)!;
  const labels = (m[2] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
  return `${m[1]}{${labels.sort().join(',')}} ${Number(m[3])}`;
}
