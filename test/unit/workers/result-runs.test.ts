/**
 * The run-length coding of a worker's passive health outcomes (workers/result-runs.ts): decoding the
 * runs gives back exactly the outcomes recorded, in order, and equal neighbours share one run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResultRuns } from '../../../src/workers/result-runs.js';

const resultArb = fc.constantFrom(
  { kind: 'success' }, { kind: '5xx', status: 500 }, { kind: '5xx', status: 503 }, { kind: 'local-origin', cause: 'connect-failure' },
);
const outcomeArb = fc.record({ service: fc.constantFrom('api', 'web'), upstream: fc.constantFrom('a', 'b'), result: resultArb });

describe('ResultRuns', () => {
  it('decodes to exactly the recorded outcomes, in order', () => {
    fc.assert(fc.property(fc.array(outcomeArb, { maxLength: 200 }), (outcomes) => {
      const runs = new ResultRuns();
      for (const o of outcomes) runs.record(o.service, o.upstream, { ...o.result });
      const decoded = runs.drain().flatMap((r) => Array.from({ length: r.n }, () => ({ service: r.service, upstream: r.upstream, result: r.result })));
      expect(decoded).toEqual(outcomes);
      expect(runs.size).toBe(0);
    }));
  });

  it('a burst of equal outcomes is one run', () => {
    const runs = new ResultRuns();
    for (let i = 0; i < 10_000; i++) runs.record('api', 'a', { kind: 'success' });
    runs.record('api', 'a', { kind: '5xx', status: 502 });
    expect(runs.drain()).toEqual([
      { service: 'api', upstream: 'a', result: { kind: 'success' }, n: 10_000 },
      { service: 'api', upstream: 'a', result: { kind: '5xx', status: 502 }, n: 1 },
    ]);
  });
});
