import { describe, expect, it } from 'vitest';
import type { HealthStatus, UpstreamSpec, UpstreamState } from '../../../src/model/index.js';
import { computeEligibility } from '../../../src/health/index.js';
import { ServiceEligibility, type HostSignals } from '../../../src/health/host-health.js';

function spec(id: string, state: UpstreamState = 'active', weight = 1): UpstreamSpec {
  return { id, url: `http://${id}:80`, weight, state, source: 'file' };
}

function signals(health: Record<string, HealthStatus> = {}, ejected: string[] = []): HostSignals {
  return { health: (id) => health[id] ?? 'unknown', ejected: (id) => ejected.includes(id) };
}

const ids = (xs: readonly UpstreamSpec[]) => xs.map((s) => s.id);

describe('computeEligibility', () => {
  it('unknown and healthy are eligible; unhealthy and ejected are not', () => {
    const specs = [spec('a'), spec('b'), spec('c'), spec('d'), spec('e'), spec('f')];
    const r = computeEligibility(specs, signals({ a: 'healthy', c: 'unhealthy', d: 'healthy' }, ['d']), 0);
    expect(ids(r.pickable)).toEqual(['a', 'b', 'e', 'f']);
    expect([...r.usableIds].sort()).toEqual(['a', 'b', 'e', 'f']);
    expect(r.panic).toBe(false);
  });

  it('draining is usable for pins but never pickable; disabled is neither', () => {
    const specs = [spec('a'), spec('b', 'draining'), spec('c', 'disabled'), spec('d', 'draining')];
    const r = computeEligibility(specs, signals({ d: 'unhealthy' }), 50);
    expect(ids(r.pickable)).toEqual(['a']);
    expect(r.usableIds.has('b')).toBe(true);
    expect(r.usableIds.has('c')).toBe(false);
    expect(r.usableIds.has('d')).toBe(false);
  });

  it('panic engages below the threshold share of available active hosts and routes to every active one', () => {
    const specs = [spec('a'), spec('b'), spec('c'), spec('d'), spec('x', 'draining'), spec('z', 'disabled')];
    const bad = signals({ a: 'unhealthy', b: 'unhealthy', c: 'unhealthy' }, []);
    const r = computeEligibility(specs, bad, 50);
    expect(r).toMatchObject({ panic: true, healthy: 1, total: 4 });
    expect(ids(r.pickable)).toEqual(['a', 'b', 'c', 'd']); // draining x stays out of new picks
    expect(r.usableIds.has('x')).toBe(true);
    expect(r.usableIds.has('z')).toBe(false);
    // Exactly at the threshold: 2 of 4 = 50% is not below 50%.
    const half = computeEligibility(specs, signals({ a: 'unhealthy' }, ['b']), 50);
    expect(half.panic).toBe(false);
    expect(ids(half.pickable)).toEqual(['c', 'd']);
  });

  it('threshold 0 disables panic; no active host means no panic', () => {
    const specs = [spec('a'), spec('b')];
    const r = computeEligibility(specs, signals({ a: 'unhealthy', b: 'unhealthy' }), 0);
    expect(r.panic).toBe(false);
    expect(r.pickable).toEqual([]);
    expect(computeEligibility([spec('a', 'draining')], signals({ a: 'unhealthy' }), 50).panic).toBe(false);
    expect(computeEligibility([], signals(), 50).panic).toBe(false);
  });
});

describe('ServiceEligibility', () => {
  it('bumps the version only when the result changes, including a weight change', () => {
    const e = new ServiceEligibility();
    const specs = [spec('a'), spec('b')];
    expect(e.recompute(specs, signals(), 50, 0).changed).toBe(true);
    expect(e.value.version).toBe(1);
    expect(e.recompute(specs, signals({ a: 'healthy' }), 50, 1).changed).toBe(false); // unknown → healthy: same set
    expect(e.value.version).toBe(1);
    expect(e.recompute(specs, signals({ a: 'unhealthy' }), 50, 2).changed).toBe(true);
    expect(e.value.version).toBe(2);
    expect(e.recompute([spec('a'), spec('b', 'active', 3)], signals({ a: 'unhealthy' }), 50, 3).changed).toBe(true);
    expect(e.value.version).toBe(3);
  });

  it('reports panic flips and keeps eligibleSinceMs for hosts that became pickable later', () => {
    const e = new ServiceEligibility();
    const specs = [spec('a'), spec('b')];
    e.recompute(specs, signals(), 50, 100);
    expect(e.value.eligibleSinceMs('a')).toBeUndefined(); // pickable from the start: no slow start
    e.recompute(specs, signals({ b: 'unhealthy' }), 50, 200);
    const flip = e.recompute(specs, signals({ a: 'unhealthy', b: 'unhealthy' }), 50, 300);
    expect(flip).toEqual({ changed: true, panicChanged: true });
    const back = e.recompute(specs, signals({ a: 'unhealthy' }), 50, 400);
    expect(back.panicChanged).toBe(true);
    expect(ids(e.value.pickable)).toEqual(['b']);
    // b became pickable when panic routed to everyone (300) and has stayed pickable since.
    expect(e.value.eligibleSinceMs('b')).toBe(300);
    e.recompute(specs, signals({ b: 'unhealthy' }), 50, 500);
    expect(e.value.eligibleSinceMs('a')).toBe(500);
    expect(e.value.eligibleSinceMs('b')).toBeUndefined();
  });
});
