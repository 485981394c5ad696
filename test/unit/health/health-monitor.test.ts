import { describe, expect, it } from 'vitest';
import { EventBus, type BusEvent } from '../../../src/observability/events.js';
import type { UpstreamSpec, UpstreamState } from '../../../src/model/index.js';
import { CALL_SUCCESS, HealthMonitor, type CallResult, type ServiceHealthConfig } from '../../../src/health/index.js';
import { FakeProbe, FakeScheduler } from './fakes.js';

const E503: CallResult = { kind: '5xx', status: 503 };
const HC = { path: '/healthz', intervalMs: 1000, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 3 };
const OD = { consecutive5xx: 3, baseEjectionTimeMs: 10_000, maxEjectionPercent: 50 };

function spec(id: string, state: UpstreamState = 'active'): UpstreamSpec {
  return { id, url: `http://${id}:80`, weight: 1, state, source: 'file' };
}

function setup() {
  const sched = new FakeScheduler();
  const probe = new FakeProbe(sched.nowMs);
  const bus = new EventBus();
  const events: BusEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const mon = new HealthMonitor({ bus, probe: probe.probe, nowMs: sched.nowMs, random: () => 0.5, scheduler: sched });
  const changes: string[] = [];
  mon.onChange((s) => changes.push(s));
  const of = (type: string) => events.filter((e) => e.type === type).map((e) => e.data);
  return { sched, probe, bus, events, mon, changes, of };
}

const pickIds = (mon: HealthMonitor, svc = 'api') => mon.eligibility(svc).pickable.map((s) => s.id);

describe('HealthMonitor', () => {
  it('unknown upstreams are eligible at once; an active check failure takes one out, emits health:changed and bumps the version', async () => {
    const { sched, probe, mon, changes, of } = setup();
    const cfg: ServiceHealthConfig = { upstreams: [spec('a'), spec('b'), spec('c')], healthCheck: HC };
    mon.setService('api', cfg);
    expect(pickIds(mon)).toEqual(['a', 'b', 'c']);
    const v0 = mon.eligibility('api').version;
    expect(changes).toEqual(['api']);
    probe.answers.set('http://b:80', 500);
    await sched.advance(100);
    expect(pickIds(mon)).toEqual(['a', 'c']);
    expect(mon.eligibility('api').version).toBe(v0 + 1);
    expect(mon.eligibility('api').usable('b')).toBe(false);
    expect(of('health:changed')).toContainEqual(expect.objectContaining({ service: 'api', upstream: 'b', from: 'unknown', to: 'unhealthy' }));
    expect(mon.upstreamHealth('api', 'b')).toMatchObject({ health: 'unhealthy', ejected: false, lastCheck: { ok: false, status: 500 } });
    // a and c went unknown → healthy: same set, so no new version and no extra onChange.
    expect(changes).toEqual(['api', 'api']);
  });

  it('passive failures eject with outlier:ejected, the ejection expires on its own timer, outlier:restored follows', async () => {
    const { sched, mon, of } = setup();
    mon.setService('api', { upstreams: [spec('a'), spec('b'), spec('c')], outlierDetection: OD });
    for (let i = 0; i < 3; i++) mon.recordResult('api', 'a', E503);
    expect(pickIds(mon)).toEqual(['b', 'c']);
    expect(of('outlier:ejected')).toEqual([{ service: 'api', upstream: 'a', untilMs: 10_000, timesEjected: 1, reason: 'consecutive-5xx' }]);
    expect(mon.upstreamHealth('api', 'a')).toMatchObject({ health: 'unknown', ejected: true, ejectedUntilMs: 10_000, timesEjected: 1 });
    await sched.advance(9_999);
    expect(pickIds(mon)).toEqual(['b', 'c']);
    await sched.advance(1);
    expect(pickIds(mon)).toEqual(['a', 'b', 'c']);
    expect(of('outlier:restored')).toEqual([{ service: 'api', upstream: 'a', reason: 'expired' }]);
    expect(sched.pending).toBe(0);
    // A success in between resets the streak.
    mon.recordResult('api', 'a', E503);
    mon.recordResult('api', 'a', E503);
    mon.recordResult('api', 'a', CALL_SUCCESS);
    mon.recordResult('api', 'a', E503);
    expect(pickIds(mon)).toEqual(['a', 'b', 'c']);
  });

  it('panic engages when most active hosts are out, routes to all active ones, and is reported both ways', async () => {
    const { sched, probe, mon, of } = setup();
    mon.setService('api', { upstreams: [spec('a'), spec('b'), spec('c'), spec('d'), spec('x', 'draining')], healthCheck: HC });
    probe.answers.set('http://a:80', 500);
    probe.answers.set('http://b:80', 500);
    await sched.advance(100);
    expect(mon.eligibility('api').panic).toBe(false); // 2 of 4 = 50%: not below
    expect(pickIds(mon)).toEqual(['c', 'd']);
    probe.answers.set('http://c:80', 'refuse');
    await sched.advance(3_000); // c fails 3 checks
    const e = mon.eligibility('api');
    expect(e.panic).toBe(true);
    expect(pickIds(mon)).toEqual(['a', 'b', 'c', 'd']);
    expect(e.usable('x')).toBe(true);
    expect(of('panic:changed')).toEqual([{ service: 'api', panic: true, healthy: 1, total: 4 }]);
    probe.answers.set('http://c:80', 200);
    await sched.advance(2_000);
    expect(mon.eligibility('api').panic).toBe(false);
    expect(of('panic:changed').at(-1)).toEqual({ service: 'api', panic: false, healthy: 2, total: 4 });
    expect(pickIds(mon)).toEqual(['c', 'd']);
  });

  it('setService keeps health and ejection of unchanged upstreams, adds new ones as unknown, skips disabled', async () => {
    const { sched, probe, mon } = setup();
    probe.answers.set('http://a:80', 500);
    const base = { healthCheck: HC, outlierDetection: OD, panicThresholdPercent: 0 };
    mon.setService('api', { upstreams: [spec('a'), spec('b'), spec('c')], ...base });
    await sched.advance(100);
    for (let i = 0; i < 3; i++) mon.recordResult('api', 'b', E503);
    expect(pickIds(mon)).toEqual(['c']);
    mon.setService('api', { upstreams: [spec('a'), spec('b'), spec('c'), spec('d'), spec('e', 'disabled')], ...base });
    expect(mon.upstreamHealth('api', 'a')!.health).toBe('unhealthy');
    expect(mon.upstreamHealth('api', 'b')!.ejected).toBe(true);
    expect(mon.upstreamHealth('api', 'd')!.health).toBe('unknown');
    expect(pickIds(mon)).toEqual(['c', 'd']);
    const before = probe.callsFor('http://e:80').length;
    await sched.advance(5_000);
    expect(probe.callsFor('http://e:80').length).toBe(before); // disabled: not probed
    expect(before).toBe(0);
  });

  it('an active check recovery (unhealthy → healthy) lifts an outlier ejection early', async () => {
    const { sched, probe, mon, of } = setup();
    probe.answers.set('http://a:80', 500);
    mon.setService('api', { upstreams: [spec('a'), spec('b')], healthCheck: HC, outlierDetection: { ...OD, baseEjectionTimeMs: 60_000 } });
    await sched.advance(100);
    for (let i = 0; i < 3; i++) mon.recordResult('api', 'a', E503);
    expect(mon.upstreamHealth('api', 'a')!.ejected).toBe(true);
    probe.answers.set('http://a:80', 200);
    await sched.advance(2_000);
    expect(mon.upstreamHealth('api', 'a')).toMatchObject({ health: 'healthy', ejected: false });
    expect(of('outlier:restored')).toEqual([{ service: 'api', upstream: 'a', reason: 'active-check-passed' }]);
    expect(pickIds(mon)).toEqual(['a', 'b']);
  });

  it('a passing probe does not cancel a 5xx ejection of a host that stays healthy', async () => {
    const { sched, mon } = setup();
    mon.setService('api', { upstreams: [spec('a'), spec('b')], healthCheck: HC, outlierDetection: OD });
    await sched.advance(100);
    for (let i = 0; i < 3; i++) mon.recordResult('api', 'a', E503);
    await sched.advance(5_000);
    expect(mon.upstreamHealth('api', 'a')).toMatchObject({ health: 'healthy', ejected: true });
  });

  it('removeService and close leave no timer or probe behind', async () => {
    const { sched, probe, mon, changes } = setup();
    probe.answers.set('http://b:80', 'hang');
    mon.setService('api', { upstreams: [spec('a'), spec('b')], healthCheck: HC, outlierDetection: OD });
    mon.setService('web', { upstreams: [spec('w')], healthCheck: HC, outlierDetection: OD });
    await sched.advance(100);
    for (let i = 0; i < 3; i++) mon.recordResult('web', 'w', E503);
    mon.removeService('api');
    expect(changes.at(-1)).toBe('api');
    expect(mon.eligibility('api').pickable).toEqual([]);
    expect(probe.callsFor('http://b:80')[0]!.signal.aborted).toBe(true);
    mon.close();
    expect(sched.pending).toBe(0);
    const n = probe.calls.length;
    await sched.advance(60_000);
    expect(probe.calls.length).toBe(n);
  });

  it('results for unknown services or upstreams are ignored; a throwing onChange listener harms nobody', async () => {
    const { mon, changes } = setup();
    mon.onChange(() => {
      throw new Error('boom');
    });
    mon.recordResult('nope', 'a', E503);
    mon.setService('api', { upstreams: [spec('a'), spec('b')], outlierDetection: OD });
    for (let i = 0; i < 10; i++) mon.recordResult('api', 'zzz', E503);
    expect(pickIds(mon)).toEqual(['a', 'b']);
    expect(mon.upstreamHealth('api', 'zzz')).toBeUndefined();
    for (let i = 0; i < 3; i++) mon.recordResult('api', 'a', E503);
    expect(changes.at(-1)).toBe('api');
    expect(pickIds(mon)).toEqual(['b']);
  });
});
