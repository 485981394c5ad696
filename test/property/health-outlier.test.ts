/**
 * Property: whatever the sequence of results, host changes and clock steps, the outlier detector
 * never ejects more than max(1, floor(maxEjectionPercent × n / 100)) of its n hosts, its count
 * matches the hosts it reports ejected, and every ejection lasts between base and the cap.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutlierDetector, type CallResult } from '../../src/health/index.js';

const result: fc.Arbitrary<CallResult> = fc.oneof(
  fc.constant<CallResult>({ kind: 'success' }),
  fc.integer({ min: 500, max: 599 }).map((status): CallResult => ({ kind: '5xx', status })),
  fc.constantFrom<CallResult>(
    { kind: 'local-origin', cause: 'connect-failure' },
    { kind: 'local-origin', cause: 'reset' },
    { kind: 'local-origin', cause: 'timeout' },
  ),
);

const step = fc.oneof(
  { weight: 20, arbitrary: fc.record({ t: fc.constant('call' as const), host: fc.nat(15), r: result, dt: fc.nat(5_000) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('expire' as const), dt: fc.nat(120_000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hosts' as const), n: fc.integer({ min: 0, max: 16 }) }) },
);

describe('outlier detector properties', () => {
  it('never ejects more than max(1, floor(pct × n)) hosts, and ejection times stay within [base, cap]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 50_000 }),
        fc.integer({ min: 1, max: 400_000 }),
        fc.array(step, { maxLength: 400 }),
        (n0, pct, threshold, base, max, steps) => {
          const d = new OutlierDetector('s', {
            consecutive5xx: threshold, consecutiveLocalOriginFailures: threshold,
            baseEjectionTimeMs: base, maxEjectionTimeMs: max, maxEjectionPercent: pct,
          });
          let ids = Array.from({ length: n0 }, (_, i) => `h${i}`);
          let now = 0;
          d.setHosts(ids, now);
          const cap = Math.max(base, max);
          for (const s of steps) {
            if (s.t === 'call') {
              now += s.dt;
              const ej = d.record(`h${s.host}`, s.r, now);
              if (ej !== undefined) {
                const len = ej.untilMs - ej.atMs;
                expect(len).toBeGreaterThanOrEqual(base);
                expect(len).toBeLessThanOrEqual(cap);
              }
            } else if (s.t === 'expire') {
              now += s.dt;
              d.expire(now);
            } else {
              ids = Array.from({ length: s.n }, (_, i) => `h${i}`);
              d.setHosts(ids, now);
            }
            const n = ids.length;
            const bound = n === 0 ? 0 : Math.max(1, Math.floor((pct * n) / 100));
            const reported = ids.filter((id) => d.isEjected(id)).length;
            expect(reported).toBe(d.ejectedHosts);
            expect(reported).toBeLessThanOrEqual(bound);
          }
        },
      ),
      { numRuns: 300, verbose: true },
    );
  });
});
