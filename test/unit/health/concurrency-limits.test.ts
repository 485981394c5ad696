import { describe, expect, it } from 'vitest';
import { ConcurrencyLimits, RetryBudget, type BreakerReason } from '../../../src/health/index.js';

describe('ConcurrencyLimits', () => {
  it('refuses the request over maxInFlightPerUpstream, per upstream, and frees the slot on release', () => {
    const opened: [BreakerReason, string | undefined][] = [];
    const b = new ConcurrencyLimits('api', { maxInFlightPerUpstream: 2, maxPending: 10 }, (k, u) => opened.push([k, u]));
    expect(b.tryAcquire('a')).toBeUndefined();
    expect(b.tryAcquire('a')).toBeUndefined();
    expect(b.tryAcquire('a')).toBe('max-in-flight');
    expect(b.tryAcquire('a')).toBe('max-in-flight');
    expect(b.tryAcquire('b')).toBeUndefined(); // other upstreams unaffected
    expect(b.inFlight('a')).toBe(2);
    expect(b.rejectedInFlight).toBe(2);
    expect(opened).toEqual([['max-in-flight', 'a']]); // once per open episode, not per refusal
    expect(b.isOpen('a')).toBe(true);
    b.release('a');
    expect(b.isOpen('a')).toBe(false);
    expect(b.tryAcquire('a')).toBeUndefined();
    expect(b.tryAcquire('a')).toBe('max-in-flight');
    expect(opened).toHaveLength(2);
  });

  it('bounds pending requests per service', () => {
    const b = new ConcurrencyLimits('api', { maxPending: 1 });
    expect(b.tryAcquirePending()).toBeUndefined();
    expect(b.tryAcquirePending()).toBe('max-pending');
    expect(b.rejectedPending).toBe(1);
    b.releasePending();
    expect(b.pending).toBe(0);
    expect(b.tryAcquirePending()).toBeUndefined();
  });

  it('an unpaired release is a bug and throws', () => {
    const b = new ConcurrencyLimits('api');
    expect(() => b.release('a')).toThrow();
    expect(() => b.releasePending()).toThrow();
    expect(b.config).toEqual({ maxInFlightPerUpstream: 1024, maxPending: 1024 });
  });
});

describe('RetryBudget', () => {
  it('allows minRetryConcurrency retries even with few requests', () => {
    const r = new RetryBudget({ budgetPercent: 20, minRetryConcurrency: 3 });
    r.onRequestStart();
    expect(r.tryStartRetry()).toBe(true);
    expect(r.tryStartRetry()).toBe(true);
    expect(r.tryStartRetry()).toBe(true);
    expect(r.tryStartRetry()).toBe(false);
    expect(r.retriesRejected).toBe(1);
    r.onRetryEnd();
    expect(r.canRetry()).toBe(true);
  });

  it('scales with active requests: 20% of 50 = 10 concurrent retries', () => {
    const r = new RetryBudget();
    for (let i = 0; i < 50; i++) r.onRequestStart();
    let n = 0;
    while (r.tryStartRetry()) n++;
    expect(n).toBe(10);
    for (let i = 0; i < 40; i++) r.onRequestEnd();
    // 10 active → limit back to the minimum 3; the 10 in flight block new ones until they end.
    expect(r.limit()).toBe(3);
    for (let i = 0; i < 7; i++) r.onRetryEnd();
    expect(r.canRetry()).toBe(false);
    r.onRetryEnd();
    expect(r.canRetry()).toBe(true);
  });

  it('budget 0 with minimum 0 never retries; unpaired ends throw', () => {
    const r = new RetryBudget({ budgetPercent: 0, minRetryConcurrency: 0 });
    r.onRequestStart();
    expect(r.canRetry()).toBe(false);
    expect(() => r.onRetryEnd()).toThrow();
    expect(() => new RetryBudget().onRequestEnd()).toThrow();
  });
});
