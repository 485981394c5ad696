/**
 * LockManager over the in-memory backend (and a failing wrapper): owner-only extend/release, distinct
 * errors, jittered retries, auto-extension, the lost signal firing before validUntil, timers cleared.
 */
import { describe, expect, it } from 'vitest';
import {
  LockArgumentError,
  LockContendedError,
  LockLostError,
  LockManager,
  LockUnavailableError,
  MemoryLockBackend,
  monotonicClock,
  StoreUnavailableError,
  type LockBackend,
} from '../../../src/sticky/index.js';

class SwitchableBackend implements LockBackend {
  down = false;
  delays: number[] = [];
  constructor(readonly inner = new MemoryLockBackend()) {}
  acquire: LockBackend['acquire'] = async (n, o, t, b) => {
    if (this.down) throw new StoreUnavailableError('down');
    return this.inner.acquire(n, o, t, b);
  };
  extend: LockBackend['extend'] = async (n, o, t, b) => {
    if (this.down) throw new StoreUnavailableError('down');
    return this.inner.extend(n, o, t, b);
  };
  release: LockBackend['release'] = async (n, o, b) => {
    if (this.down) throw new StoreUnavailableError('down');
    return this.inner.release(n, o, b);
  };
}


describe('LockManager', () => {
  it('acquire gives a lease with a fence; a second owner is contended; fences rise strictly', async () => {
    const m = new LockManager({ backend: new MemoryLockBackend(), retries: 2, retryDelayMs: 5, jitterMs: 2 });
    const a = await m.acquire('job', 1000);
    expect(a.validUntilMs).toBeGreaterThan(monotonicClock.nowMs());
    await expect(m.acquire('job', 1000)).rejects.toBeInstanceOf(LockContendedError);
    await a.release();
    const b = await m.acquire('job', 1000);
    expect(b.fence).toBeGreaterThan(a.fence);
    expect(b.owner).not.toBe(a.owner);
    await b.release();
  });

  it('release and extend are owner-only; double release is harmless', async () => {
    const backend = new MemoryLockBackend();
    const m = new LockManager({ backend });
    const a = await m.acquire('job', 1000);
    expect(await backend.release('job', 'someone-else', 50)).toBe(false);
    expect(await backend.extend('job', 'someone-else', 5000, 50)).toBe(false);
    await expect(m.acquire('job', 1000, { retries: 0 })).rejects.toBeInstanceOf(LockContendedError);
    expect(await a.release()).toBe(true);
    expect(await a.release()).toBe(false);
    await expect(a.extend()).rejects.toBeInstanceOf(LockLostError);
  });

  it('fails fast with LockUnavailableError when the store is down, and rejects bad arguments', async () => {
    const backend = new SwitchableBackend();
    backend.down = true;
    const m = new LockManager({ backend });
    await expect(m.acquire('job', 1000)).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(m.acquire('bad {name}', 1000)).rejects.toBeInstanceOf(LockArgumentError);
    await expect(m.acquire('job', 1)).rejects.toBeInstanceOf(LockArgumentError);
  });

  it('retry delays are jittered', async () => {
    const values = [0.1, 0.9, 0.5, 0.3];
    let i = 0;
    const backend = new MemoryLockBackend();
    const m = new LockManager({ backend, retries: 3, retryDelayMs: 10, jitterMs: 5, random: () => values[i++ % values.length]! });
    const held = await m.acquire('job', 5000);
    const times: number[] = [];
    const spy: LockBackend = {
      acquire: async (...a) => {
        times.push(performance.now());
        return backend.acquire(...a);
      },
      extend: backend.extend.bind(backend),
      release: backend.release.bind(backend),
    };
    const m2 = new LockManager({ backend: spy, retries: 3, retryDelayMs: 10, jitterMs: 5, random: () => values[i++ % values.length]! });
    await expect(m2.acquire('job', 1000)).rejects.toBeInstanceOf(LockContendedError);
    expect(times).toHaveLength(4);
    await held.release();
  });

  it('runWhileHeld keeps a short lease alive past its TTL, then releases it and clears its timers', async () => {
    const backend = new MemoryLockBackend();
    const m = new LockManager({ backend });
    const result = await m.runWhileHeld('job', 150, async (signal, lease) => {
      await new Promise((r) => setTimeout(r, 500));
      expect(signal.aborted).toBe(false);
      expect(m.activeRuns).toBe(1);
      await expect(new LockManager({ backend }).acquire('job', 150, { retries: 0 })).rejects.toBeInstanceOf(LockContendedError);
      return lease.fence;
    });
    expect(result).toBeGreaterThan(0);
    expect(m.activeRuns).toBe(0);
    const again = await m.acquire('job', 150, { retries: 0 });
    await again.release();
  });

  it('the lost signal fires before validUntil when extensions keep failing; runWhileHeld then throws LockLostError', async () => {
    const backend = new SwitchableBackend();
    const m = new LockManager({ backend });
    let abortedAt = 0;
    let validUntil = 0;
    await expect(
      m.runWhileHeld('job', 300, async (signal, lease) => {
        backend.down = true;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        abortedAt = monotonicClock.nowMs();
        validUntil = lease.validUntilMs;
        expect(signal.reason).toBeInstanceOf(LockLostError);
        return 'done';
      }),
    ).rejects.toBeInstanceOf(LockLostError);
    expect(abortedAt).toBeLessThan(validUntil);
    expect(m.activeRuns).toBe(0);
  });

  it('runWhileHeld rethrows fn\'s error even when the release fails', async () => {
    const backend = new SwitchableBackend();
    const m = new LockManager({ backend });
    await expect(
      m.runWhileHeld('job', 1000, async () => {
        backend.down = true;
        throw new Error('fn failed');
      }),
    ).rejects.toThrow('fn failed');
  });
});
