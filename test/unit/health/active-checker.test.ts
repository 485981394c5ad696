import { describe, expect, it } from 'vitest';
import { ActiveChecker, INTERVAL_JITTER, statusMatches, type HealthCheckConfig, type HealthTransition } from '../../../src/health/index.js';
import { FakeProbe, FakeScheduler, cycle } from './fakes.js';

const CFG: HealthCheckConfig = { path: '/healthz', intervalMs: 1000, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 3 };
const A = 'http://a:1';
const B = 'http://b:1';

function setup(cfg: HealthCheckConfig = CFG, random: () => number = () => 0.5) {
  const sched = new FakeScheduler();
  const probe = new FakeProbe(sched.nowMs);
  const transitions: HealthTransition[] = [];
  const checker = new ActiveChecker('svc', cfg, {
    probe: probe.probe, scheduler: sched, nowMs: sched.nowMs, random, onTransition: (t) => transitions.push(t),
  });
  return { sched, probe, transitions, checker };
}

describe('ActiveChecker state machine', () => {
  it('starts unknown and the first passing probe makes the upstream healthy', async () => {
    const { sched, checker, transitions, probe } = setup();
    checker.update([{ id: 'a', url: A }]);
    expect(checker.health('a')).toBe('unknown');
    await sched.advance(CFG.intervalMs * INTERVAL_JITTER); // the first probe runs within 10% of the interval
    expect(probe.calls).toHaveLength(1);
    expect(probe.calls[0]!.path).toBe('/healthz');
    expect(checker.health('a')).toBe('healthy');
    expect(transitions).toMatchObject([{ service: 'svc', upstream: 'a', from: 'unknown', to: 'healthy' }]);
  });

  it('the first failing probe makes an unknown upstream unhealthy at once', async () => {
    const { sched, checker, transitions, probe } = setup();
    probe.answers.set(A, 503);
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(100);
    expect(checker.health('a')).toBe('unhealthy');
    expect(transitions[0]!.reason).toContain('503');
  });

  it('a healthy upstream goes unhealthy only after unhealthyThreshold consecutive failures', async () => {
    const { sched, checker, transitions, probe } = setup();
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(100);
    expect(checker.health('a')).toBe('healthy');
    probe.answers.set(A, 500);
    await sched.advance(1000); // failure 1
    await sched.advance(1000); // failure 2
    expect(probe.calls).toHaveLength(3);
    expect(checker.health('a')).toBe('healthy');
    probe.answers.set(A, 200);
    await sched.advance(1000); // a pass resets the streak
    probe.answers.set(A, 'refuse');
    await sched.advance(2000); // failures 1, 2
    expect(checker.health('a')).toBe('healthy');
    await sched.advance(1000); // failure 3
    expect(checker.health('a')).toBe('unhealthy');
    expect(transitions.at(-1)).toMatchObject({ from: 'healthy', to: 'unhealthy' });
    expect(transitions.at(-1)!.reason).toContain('ECONNREFUSED');
    expect(checker.view('a')!.consecutiveFailures).toBe(3);
  });

  it('an unhealthy upstream comes back only after healthyThreshold consecutive passes', async () => {
    const { sched, checker, probe } = setup();
    probe.answers.set(A, 500);
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(100);
    expect(checker.health('a')).toBe('unhealthy');
    probe.answers.set(A, 200);
    await sched.advance(1000);
    expect(checker.health('a')).toBe('unhealthy');
    await sched.advance(1000);
    expect(checker.health('a')).toBe('healthy');
  });

  it('a probe that does not settle within timeoutMs is aborted and counts as a failure', async () => {
    const { sched, checker, probe, transitions } = setup();
    probe.answers.set(A, 'hang');
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(100); // probe started at t=50
    expect(probe.calls).toHaveLength(1);
    expect(probe.calls[0]!.signal.aborted).toBe(false);
    expect(checker.health('a')).toBe('unknown');
    await sched.advance(CFG.timeoutMs);
    expect(probe.calls[0]!.signal.aborted).toBe(true);
    expect(checker.health('a')).toBe('unhealthy');
    expect(transitions[0]!.reason).toContain('timeout');
    expect(checker.view('a')!.lastCheck).toMatchObject({ ok: false, durationMs: CFG.timeoutMs });
  });

  it('probes of one upstream never overlap: the next is scheduled after the previous settles', async () => {
    const { sched, checker, probe } = setup({ ...CFG, timeoutMs: 5000 });
    probe.answers.set(A, 'hang');
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(4000);
    expect(probe.calls).toHaveLength(1);
    await sched.advance(1100); // times out at 5050, next one ~1000 later
    expect(probe.calls).toHaveLength(1);
    await sched.advance(1000);
    expect(probe.calls).toHaveLength(2);
  });

  it('expected statuses: 2xx by default, a 3xx fails; a configured list with ranges is honoured', async () => {
    expect(statusMatches(204, [[200, 299]])).toBe(true);
    expect(statusMatches(301, [[200, 299]])).toBe(false);
    const { sched, checker, probe } = setup({ ...CFG, expectedStatuses: [200, [400, 404]] });
    probe.answers.set(A, 404);
    probe.answers.set(B, 302);
    checker.update([{ id: 'a', url: A }, { id: 'b', url: B }]);
    await sched.advance(100);
    expect(checker.health('a')).toBe('healthy');
    expect(checker.health('b')).toBe('unhealthy');
    const d = setup();
    d.probe.answers.set(A, 301);
    d.checker.update([{ id: 'a', url: A }]);
    await d.sched.advance(100);
    expect(d.checker.health('a')).toBe('unhealthy');
  });
});

describe('ActiveChecker scheduling', () => {
  it('keeps every gap between probes within interval × (1 ± 10%), and the first probe within 10%', async () => {
    // Extremes of the random source plus values in between.
    const { sched, checker, probe } = setup(CFG, cycle([0, 0.999999, 0.5, 0.01, 0.75, 0.3]));
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(60_000);
    const at = probe.calls.map((c) => c.at);
    expect(at.length).toBeGreaterThan(50);
    expect(at[0]!).toBeGreaterThanOrEqual(0);
    expect(at[0]!).toBeLessThanOrEqual(CFG.intervalMs * INTERVAL_JITTER);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(CFG.intervalMs * (1 - INTERVAL_JITTER));
      expect(g).toBeLessThanOrEqual(CFG.intervalMs * (1 + INTERVAL_JITTER));
    }
    // Jitter actually varies the gap (not a fixed period).
    expect(new Set(gaps.map((g) => Math.round(g))).size).toBeGreaterThan(3);
  });

  it('update() keeps state of unchanged upstreams, resets a changed url, and stops probing removed ones', async () => {
    const { sched, checker, probe } = setup();
    probe.answers.set(A, 500);
    checker.update([{ id: 'a', url: A }, { id: 'b', url: B }]);
    await sched.advance(100);
    expect(checker.health('a')).toBe('unhealthy');
    expect(checker.health('b')).toBe('healthy');
    checker.update([{ id: 'a', url: A }, { id: 'b', url: 'http://b2:1' }]);
    expect(checker.health('a')).toBe('unhealthy'); // kept
    expect(checker.health('b')).toBe('unknown'); // new backend behind the same id
    checker.update([{ id: 'b', url: 'http://b2:1' }]);
    expect(checker.health('a')).toBeUndefined();
    const before = probe.callsFor(A).length;
    await sched.advance(10_000);
    expect(probe.callsFor(A).length).toBe(before);
    expect(probe.callsFor('http://b2:1').length).toBeGreaterThan(5);
  });

  it('removing an upstream aborts its in-flight probe and drops the late result', async () => {
    const { sched, checker, probe, transitions } = setup({ ...CFG, timeoutMs: 5000 });
    probe.answers.set(A, 'hang');
    checker.update([{ id: 'a', url: A }]);
    await sched.advance(100);
    checker.update([]);
    expect(probe.calls[0]!.signal.aborted).toBe(true);
    await sched.advance(10_000);
    expect(transitions).toHaveLength(0);
    expect(sched.pending).toBe(0);
  });

  it('stop() clears every timer and aborts in-flight probes', async () => {
    const { sched, checker, probe } = setup({ ...CFG, timeoutMs: 5000 });
    probe.answers.set(B, 'hang');
    checker.update([{ id: 'a', url: A }, { id: 'b', url: B }]);
    await sched.advance(100);
    expect(checker.pendingForTest()).toBe(3); // a: next timer; b: probe in flight + its timeout guard
    checker.stop();
    expect(checker.pendingForTest()).toBe(0);
    expect(sched.pending).toBe(0);
    expect(probe.callsFor(B)[0]!.signal.aborted).toBe(true);
    const n = probe.calls.length;
    await sched.advance(10_000);
    expect(probe.calls.length).toBe(n);
  });

  it('rejects configs that cannot work', () => {
    expect(() => setup({ ...CFG, path: 'healthz' })).toThrow(RangeError);
    expect(() => setup({ ...CFG, intervalMs: 0 })).toThrow(RangeError);
    expect(() => setup({ ...CFG, healthyThreshold: 0 })).toThrow(RangeError);
  });
});
