/** Breaker state machine: opens after N failures, one half-open probe after the cool-down, closes on success. */
import { describe, expect, it } from 'vitest';
import { Breaker, type BreakerState } from '../../../src/sticky/index.js';
import { FakeClock } from './fixtures.js';

describe('Breaker', () => {
  it('closed → open after the threshold → half-open probe → closed', () => {
    const clock = new FakeClock();
    const changes: BreakerState[] = [];
    const b = new Breaker({ clock, failureThreshold: 3, coolDownMs: 1000, onChange: (s) => changes.push(s) });
    b.failure('x');
    b.failure('x');
    expect(b.state).toBe('closed');
    b.success(); // resets the count
    b.failure('x');
    b.failure('x');
    expect(b.allow()).toBe(true);
    b.failure('x');
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    clock.advance(1000);
    expect(b.allow()).toBe(true); // the probe
    expect(b.state).toBe('half-open');
    expect(b.allow()).toBe(false); // only one probe at a time
    b.success();
    expect(b.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'closed']);
    expect(b.openCount).toBe(1);
  });
  it('a failed probe reopens; a probe that never reports is replaced after a cool-down', () => {
    const clock = new FakeClock();
    const b = new Breaker({ clock, failureThreshold: 1, coolDownMs: 100 });
    b.failure('x');
    clock.advance(100);
    expect(b.allow()).toBe(true);
    b.failure('probe failed');
    expect(b.state).toBe('open');
    clock.advance(100);
    expect(b.allow()).toBe(true);
    clock.advance(50);
    expect(b.allow()).toBe(false);
    clock.advance(60);
    expect(b.allow()).toBe(true);
  });
});
