import { describe, expect, it } from 'vitest';
import { ResetCounter } from '../../../src/proxy/h2-limits.js';

describe('ResetCounter (rapid reset, CVE-2023-44487)', () => {
  it('is exceeded by the reset past the limit within one window, and starts again in the next', () => {
    const c = new ResetCounter(3, 1000);
    expect([c.record(0), c.record(10), c.record(20)]).toEqual([false, false, false]);
    expect(c.record(30)).toBe(true);
    expect(c.record(1030)).toBe(false);
  });
  it('a steady trickle below the limit per window never trips it', () => {
    const c = new ResetCounter(3, 1000);
    for (let t = 0; t < 20_000; t += 400) expect(c.record(t)).toBe(false);
  });
});
