import { describe, expect, it } from 'vitest';
import { Deadlines, type DeadlineList, type Expiring } from '../../../src/proxy/deadlines.js';

class Entry implements Expiring {
  expiresAt = 0;
  prevExpiring: Expiring | undefined;
  nextExpiring: Expiring | undefined;
  expiringIn: DeadlineList | undefined;
  expiredAt: number | undefined;
  constructor(readonly name: string, private readonly log: string[], private readonly onExpire?: () => void) {}
  expire(): void {
    this.expiredAt = performance.now();
    this.log.push(this.name);
    this.onExpire?.();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Deadlines', () => {
  it('expires entries in deadline order across lists of different timeouts, never early', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const t0 = performance.now();
    const slow = new Entry('slow', log);
    const fast = new Entry('fast', log);
    const mid = new Entry('mid', log);
    d.arm(slow, 90, t0);
    d.arm(fast, 20, t0);
    d.arm(mid, 50, t0);
    await sleep(150);
    expect(log).toEqual(['fast', 'mid', 'slow']);
    expect(fast.expiredAt! - t0).toBeGreaterThanOrEqual(20);
    expect(mid.expiredAt! - t0).toBeGreaterThanOrEqual(50);
    expect(slow.expiredAt! - t0).toBeGreaterThanOrEqual(90);
    expect(d.size).toBe(0);
  });

  it('never expires a disarmed entry, and re-arming moves the deadline', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const a = new Entry('a', log);
    const b = new Entry('b', log);
    const c = new Entry('c', log);
    const t0 = performance.now();
    d.arm(a, 30, t0);
    d.arm(b, 30, t0);
    d.arm(c, 30, t0);
    d.disarm(b);
    await sleep(15);
    d.arm(a, 30, performance.now()); // a refresh: now due after c
    expect(d.size).toBe(2);
    await sleep(80);
    expect(log).toEqual(['c', 'a']);
    expect(a.expiredAt! - t0).toBeGreaterThanOrEqual(45);
  });

  it('arming with 0 disarms (the timeout is off)', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const a = new Entry('a', log);
    d.arm(a, 20, performance.now());
    d.arm(a, 0, performance.now());
    await sleep(50);
    expect(log).toEqual([]);
    expect(d.size).toBe(0);
  });

  it('lets an expiring entry arm itself or others again (a retry) without losing them', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    let rounds = 0;
    const retry: Entry = new Entry('retry', log, () => {
      if (++rounds < 3) d.arm(retry, 10, performance.now());
    });
    d.arm(retry, 10, performance.now());
    await sleep(100);
    expect(log).toEqual(['retry', 'retry', 'retry']);
    expect(d.size).toBe(0);
  });

  it('close() forgets every entry: nothing fires after it', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    for (let i = 0; i < 5; i++) d.arm(new Entry(`e${i}`, log), 10 + i, performance.now());
    d.close();
    await sleep(40);
    expect(log).toEqual([]);
    expect(d.size).toBe(0);
  });
});
