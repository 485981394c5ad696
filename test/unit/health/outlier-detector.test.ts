import { describe, expect, it } from 'vitest';
import { CALL_SUCCESS, OutlierDetector, type CallResult } from '../../../src/health/index.js';

const E500: CallResult = { kind: '5xx', status: 500 };
const REFUSED: CallResult = { kind: 'local-origin', cause: 'connect-failure' };
const BASE = 30_000;

function detector(hosts: string[], cfg: Partial<ConstructorParameters<typeof OutlierDetector>[1]> = {}) {
  const d = new OutlierDetector('api', { consecutive5xx: 5, baseEjectionTimeMs: BASE, maxEjectionPercent: 100, ...cfg });
  d.setHosts(hosts, 0);
  return d;
}

function fail(d: OutlierDetector, id: string, n: number, nowMs: number, r: CallResult = E500) {
  let last;
  for (let i = 0; i < n; i++) last = d.record(id, r, nowMs);
  return last;
}

describe('OutlierDetector: consecutive failures', () => {
  it('ejects on the consecutive5xx-th 5xx in a row, not before', () => {
    const d = detector(['a', 'b']);
    expect(fail(d, 'a', 4, 1000)).toBeUndefined();
    expect(d.isEjected('a')).toBe(false);
    const ej = d.record('a', E500, 1000);
    expect(ej).toEqual({ service: 'api', upstream: 'a', atMs: 1000, untilMs: 1000 + BASE, timesEjected: 1, reason: 'consecutive-5xx' });
    expect(d.isEjected('a')).toBe(true);
    expect(d.ejectedHosts).toBe(1);
  });

  it('a success breaks the streak', () => {
    const d = detector(['a', 'b']);
    fail(d, 'a', 4, 0);
    expect(d.record('a', CALL_SUCCESS, 0)).toBeUndefined();
    expect(fail(d, 'a', 4, 0)).toBeUndefined();
    expect(d.isEjected('a')).toBe(false);
  });

  it('local-origin failures have their own streak; a 5xx response breaks it (a connection was made)', () => {
    const d = detector(['a', 'b'], { consecutiveLocalOriginFailures: 3 });
    fail(d, 'a', 2, 0, REFUSED);
    d.record('a', E500, 0);
    expect(fail(d, 'a', 2, 0, REFUSED)).toBeUndefined();
    const ej = d.record('a', { kind: 'local-origin', cause: 'timeout' }, 0);
    expect(ej?.reason).toBe('consecutive-local-origin-failure');
    // ...while local-origin failures do not break the 5xx streak.
    const d2 = detector(['a', 'b'], { consecutive5xx: 3, consecutiveLocalOriginFailures: 10 });
    d2.record('a', E500, 0);
    d2.record('a', REFUSED, 0);
    d2.record('a', E500, 0);
    expect(d2.record('a', E500, 0)?.reason).toBe('consecutive-5xx');
  });

  it('results for unknown hosts are ignored', () => {
    const d = detector(['a']);
    expect(fail(d, 'zzz', 10, 0)).toBeUndefined();
    expect(d.ejectedHosts).toBe(0);
  });
});

describe('OutlierDetector: ejection time', () => {
  it('repeat ejections last base × timesEjected, capped at maxEjectionTime', () => {
    const d = detector(['a', 'b'], { maxEjectionTimeMs: 100_000 });
    let now = 0;
    const durations: number[] = [];
    for (let i = 0; i < 6; i++) {
      const ej = fail(d, 'a', 5, now)!;
      durations.push(ej.untilMs - now);
      now = ej.untilMs;
      expect(d.expire(now)).toHaveLength(1); // restored exactly at the end; fail again at once
    }
    expect(durations).toEqual([30_000, 60_000, 90_000, 100_000, 100_000, 100_000]);
  });

  it('the cap defaults to 300 s, or base when base is larger (Envoy)', () => {
    const d = detector(['a', 'b']);
    let now = 0;
    let last = 0;
    for (let i = 0; i < 15; i++) {
      const ej = fail(d, 'a', 5, now)!;
      last = ej.untilMs - now;
      now = ej.untilMs;
      d.expire(now);
    }
    expect(last).toBe(300_000);
    const big = detector(['a', 'b'], { baseEjectionTimeMs: 400_000 });
    expect(fail(big, 'a', 5, 0)!.untilMs).toBe(400_000);
  });

  it('expire() restores at the end time, not before; nextExpiryMs() points at the earliest end', () => {
    const d = detector(['a', 'b', 'c']);
    fail(d, 'a', 5, 0);
    fail(d, 'b', 5, 10_000);
    expect(d.nextExpiryMs()).toBe(BASE);
    expect(d.expire(BASE - 1)).toEqual([]);
    expect(d.expire(BASE)).toEqual([{ service: 'api', upstream: 'a', atMs: BASE, reason: 'expired' }]);
    expect(d.isEjected('a')).toBe(false);
    expect(d.nextExpiryMs()).toBe(10_000 + BASE);
    d.expire(10_000 + BASE);
    expect(d.nextExpiryMs()).toBeUndefined();
    expect(d.ejectedHosts).toBe(0);
  });

  it('timesEjected decays by one per base ejection time spent not ejected', () => {
    const d = detector(['a', 'b']);
    let ej = fail(d, 'a', 5, 0)!;
    d.expire(ej.untilMs); // restored at 30 s, times = 1
    ej = fail(d, 'a', 5, ej.untilMs)!; // times = 2, until 30 + 60 = 90 s
    expect(ej.timesEjected).toBe(2);
    d.expire(90_000);
    expect(d.host('a', 90_000)!.timesEjected).toBe(2);
    expect(d.host('a', 90_000 + BASE - 1)!.timesEjected).toBe(2);
    expect(d.host('a', 90_000 + BASE)!.timesEjected).toBe(1);
    expect(d.host('a', 90_000 + 5 * BASE)!.timesEjected).toBe(0);
    // After one base period of good behaviour, the next ejection is ×2 again, not ×3.
    const again = fail(d, 'a', 5, 90_000 + BASE)!;
    expect(again.timesEjected).toBe(2);
    expect(again.untilMs - (90_000 + BASE)).toBe(2 * BASE);
  });
});

describe('OutlierDetector: max ejection percent', () => {
  it('with 3 hosts at 10% still ejects one, but never a second', () => {
    const d = detector(['a', 'b', 'c'], { maxEjectionPercent: 10 });
    expect(d.ejectionLimit()).toBe(1);
    expect(fail(d, 'a', 5, 0)).toBeDefined();
    expect(fail(d, 'b', 5, 0)).toBeUndefined();
    expect(d.isEjected('b')).toBe(false);
    expect(d.overflowCount).toBeGreaterThan(0);
    // When 'a' comes back, 'b' (still failing) is ejected by its next failure.
    d.expire(BASE);
    expect(d.record('b', E500, BASE)?.upstream).toBe('b');
  });

  it('with 20 hosts at 10% ejects two', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `h${i}`);
    const d = detector(ids, { maxEjectionPercent: 10 });
    expect(d.ejectionLimit()).toBe(2);
    for (const id of ids) fail(d, id, 5, 0);
    expect(d.ejectedHosts).toBe(2);
  });

  it('setHosts keeps state of known hosts and restores extras when the set shrinks', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `h${i}`);
    const d = detector(ids, { maxEjectionPercent: 20 });
    fail(d, 'h0', 5, 0);
    fail(d, 'h1', 5, 1000);
    expect(d.ejectedHosts).toBe(2);
    fail(d, 'h2', 3, 0);
    // Shrink to 5 hosts: limit becomes 1; h0 (earliest end) goes back.
    const restored = d.setHosts(['h0', 'h1', 'h2', 'h3', 'h4'], 2000);
    expect(restored).toEqual([{ service: 'api', upstream: 'h0', atMs: 2000, reason: 'ejection-limit' }]);
    expect(d.isEjected('h1')).toBe(true);
    expect(d.host('h2', 2000)!.consecutive5xx).toBe(3);
    // A removed ejected host frees its slot.
    d.setHosts(['h0', 'h2', 'h3', 'h4'], 3000);
    expect(d.ejectedHosts).toBe(0);
  });

  it('uneject() lifts an ejection early', () => {
    const d = detector(['a', 'b']);
    fail(d, 'a', 5, 0);
    expect(d.uneject('a', 5)).toEqual({ service: 'api', upstream: 'a', atMs: 5, reason: 'active-check-passed' });
    expect(d.isEjected('a')).toBe(false);
    expect(d.uneject('a', 6)).toBeUndefined();
  });

  it('rejects impossible configs', () => {
    expect(() => new OutlierDetector('x', { consecutive5xx: 0 })).toThrow(RangeError);
    expect(() => new OutlierDetector('x', { maxEjectionPercent: 101 })).toThrow(RangeError);
  });
});
