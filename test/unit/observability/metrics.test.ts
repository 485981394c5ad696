import { describe, expect, it } from 'vitest';
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
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{le="0.001",service="web",upstream="w1"} 2');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{le="0.005",service="web",upstream="w1"} 3');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{le="30",service="web",upstream="w1"} 4');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_bucket{le="+Inf",service="web",upstream="w1"} 5');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_sum{service="web",upstream="w1"} 31.2045');
    expect(out).toContain('meshgate_upstream_request_duration_seconds_count{service="web",upstream="w1"} 5');
    expect(out.filter((l) => l.includes('idle'))).toEqual([]);
    expect(out.filter((l) => l.startsWith('meshgate_upstream_request_duration_seconds_bucket'))).toHaveLength(15);
    const text = (await m.render()).body;
    expect(text).toContain('# TYPE meshgate_upstream_request_duration_seconds histogram');
    // Families keep their declaration order: the histogram right after the request counter.
    expect(text.indexOf('# HELP meshgate_upstream_request_duration_seconds')).toBeGreaterThan(text.indexOf('# HELP meshgate_upstream_requests_total'));
    expect(text.indexOf('# HELP meshgate_upstream_request_duration_seconds')).toBeLessThan(text.indexOf('# HELP meshgate_upstream_requests_in_flight'));
  });

  it('gives the same records through getMetricsAsJSON, labels merged', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.bindUpstream('api', 'a1').observeSeconds(0.002);
    const h = (await m.registry.getMetricsAsJSON()).find((x) => x.name === 'meshgate_upstream_request_duration_seconds')!;
    expect(h.type).toBe('histogram');
    expect(h.values[1]).toMatchObject({ value: 1, metricName: 'meshgate_upstream_request_duration_seconds_bucket', labels: { le: 0.0025, service: 'api', upstream: 'a1' } });
  });
});
