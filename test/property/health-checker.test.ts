/**
 * Property: for any sequence of probe outcomes, the active checker follows the rise/fall rules
 * stated in docs/health.md, checked sentence by sentence after every probe:
 * - the first result alone decides an `unknown` upstream;
 * - `unhealthyThreshold` failures in a row always leave it unhealthy, `healthyThreshold` passes in a
 *   row always leave it healthy;
 * - a healthy → unhealthy transition happens only on a run of ≥ unhealthyThreshold failures, and
 *   unhealthy → healthy only on a run of ≥ healthyThreshold passes;
 * - exactly one event per change of state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ActiveChecker, type HealthTransition } from '../../src/health/index.js';
import type { HealthStatus } from '../../src/model/index.js';
import { FakeProbe, FakeScheduler } from '../unit/health/fakes.js';

const URL_A = 'http://a:1';

describe('active checker properties', () => {
  it('follows the rise/fall rules for any outcome sequence', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.constantFrom<number | 'refuse' | 'hang'>(200, 204, 500, 503, 302, 'refuse', 'hang'), { minLength: 1, maxLength: 30 }),
        async (rise, fall, outcomes) => {
          const sched = new FakeScheduler();
          const probe = new FakeProbe(sched.nowMs);
          const events: HealthTransition[] = [];
          const interval = 1000;
          const checker = new ActiveChecker('s', { path: '/h', intervalMs: interval, timeoutMs: 100, healthyThreshold: rise, unhealthyThreshold: fall }, {
            probe: probe.probe, scheduler: sched, nowMs: sched.nowMs, random: () => 0.5, onTransition: (t) => events.push(t),
          });
          const passes = (o: number | string) => typeof o === 'number' && o >= 200 && o <= 299;
          let prev: HealthStatus = 'unknown';
          let changes = 0;
          let runPass = 0;
          let runFail = 0;
          for (let i = 0; i < outcomes.length; i++) {
            probe.answers.set(URL_A, outcomes[i]!);
            if (i === 0) checker.update([{ id: 'a', url: URL_A }]);
            const before = probe.calls.length;
            // Step the fake clock until this probe started and settled (a hang settles by timeout).
            for (let steps = 0; !(probe.calls.length > before && checker.pendingForTest() === 1); steps++) {
              expect(steps).toBeLessThan(1000);
              await sched.advance(25);
            }
            expect(probe.calls.length).toBe(before + 1);
            const ok = passes(outcomes[i]!);
            runPass = ok ? runPass + 1 : 0;
            runFail = ok ? 0 : runFail + 1;
            const h = checker.health('a')!;
            if (i === 0) expect(h).toBe(ok ? 'healthy' : 'unhealthy');
            if (runFail >= fall) expect(h).toBe('unhealthy');
            if (runPass >= rise) expect(h).toBe('healthy');
            if (prev === 'healthy' && h === 'unhealthy') expect(runFail).toBeGreaterThanOrEqual(fall);
            if (prev === 'unhealthy' && h === 'healthy') expect(runPass).toBeGreaterThanOrEqual(rise);
            if (h !== prev) changes++;
            prev = h;
          }
          expect(events).toHaveLength(changes);
          checker.stop();
          expect(sched.pending).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
