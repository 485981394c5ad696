/**
 * RoutedReports (cluster/routed-reports.ts): which peers route by a committed change, and the bounded
 * wait an admin write does for them. Pure bookkeeping with fake timers; the multi-process behaviour is
 * test/integration/cluster-routed.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { RoutedReports } from '../../../src/cluster/routed-reports.js';
import { decodeMessage, decodeRoutedReport, encodeRoutedReport, isRoutedReport, encodeMessage } from '../../../src/cluster/codec.js';
import type { NodeTimers, TimerHandle } from '../../../src/cluster/node-io.js';

function fakeTimers(): NodeTimers & { fire(): void; pending(): number } {
  const due = new Map<number, () => void>();
  let next = 0;
  return {
    setTimeout: (fn) => {
      due.set(++next, fn);
      return next as unknown as TimerHandle;
    },
    clearTimeout: (t) => void due.delete(t as unknown as number),
    setInterval: () => 0 as unknown as TimerHandle,
    clearInterval: () => undefined,
    setImmediate: (fn) => fn(),
    fire: () => {
      for (const [k, fn] of [...due]) {
        due.delete(k);
        fn();
      }
    },
    pending: () => due.size,
  };
}

describe('RoutedReports', () => {
  it('resolves once every reachable peer reported the index or more; unreachable ones come back unconfirmed at once', async () => {
    const t = fakeTimers();
    const r = new RoutedReports(t);
    r.record('b', 7);
    const w = r.waitFor(7, ['b', 'c'], ['d'], 2_000);
    r.record('c', 6); // not yet
    let settled = false;
    void w.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    r.record('c', 9);
    expect(await w).toEqual({ confirmed: ['b', 'c'], unconfirmed: ['d'] });
    expect(t.pending()).toBe(0); // its timer is cleared
  });

  it('a peer that never reports is unconfirmed when the timeout fires', async () => {
    const t = fakeTimers();
    const r = new RoutedReports(t);
    const w = r.waitFor(3, ['b', 'c'], [], 2_000);
    r.record('b', 3);
    t.fire();
    expect(await w).toEqual({ confirmed: ['b'], unconfirmed: ['c'] });
  });

  it('reports are monotonic: an older or repeated index changes nothing', async () => {
    const r = new RoutedReports(fakeTimers());
    r.record('b', 10);
    r.record('b', 4);
    r.record('b', 10);
    expect(r.of('b')).toBe(10);
    expect(await r.waitFor(10, ['b'], [], 1)).toEqual({ confirmed: ['b'], unconfirmed: [] });
  });

  it('a peer removed from the group is not waited for: unconfirmed at once, its old reports dropped', async () => {
    const t = fakeTimers();
    const r = new RoutedReports(t);
    r.record('c', 9);
    const w = r.waitFor(5, ['b', 'c', 'd'], [], 2_000);
    r.forget('b');
    let settled = false;
    void w.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false); // 'd' is still a member and has not reported
    r.record('d', 5);
    expect(await w).toEqual({ confirmed: ['c', 'd'], unconfirmed: ['b'] });
    expect(t.pending()).toBe(0); // settled before its bound, timer cleared
    // The same id added back later confirms only by what it reports then.
    r.forget('c');
    expect(r.of('c')).toBe(0);
    const again = r.waitFor(9, ['c'], [], 2_000);
    r.forget('c');
    expect(await again).toEqual({ confirmed: [], unconfirmed: ['c'] });
  });

  it('close() ends every wait with what it has', async () => {
    const r = new RoutedReports(fakeTimers());
    const w = r.waitFor(5, ['b'], [], 60_000);
    r.close();
    expect(await w).toEqual({ confirmed: [], unconfirmed: ['b'] });
  });
});

describe('routed report frames', () => {
  it('round-trip, and are told apart from Raft messages', () => {
    const buf = encodeRoutedReport({ from: 'gw-1', to: 'gw-2', index: 123_456 });
    expect(isRoutedReport(buf)).toBe(true);
    expect(decodeRoutedReport(buf)).toEqual({ from: 'gw-1', to: 'gw-2', index: 123_456 });
    const raft = encodeMessage({ type: 'MsgHeartbeat', from: 'gw-1', to: 'gw-2', term: 3, commit: 9 });
    expect(isRoutedReport(raft)).toBe(false);
  });

  it('a peer that predates them refuses one as an unknown Raft message type (dropped, nothing applied)', () => {
    expect(() => decodeMessage(encodeRoutedReport({ from: 'a', to: 'b', index: 1 }))).toThrow(/unknown message type/);
  });

  it('truncated, trailing bytes or a negative index are refused', () => {
    const buf = encodeRoutedReport({ from: 'gw-1', to: 'gw-2', index: 5 });
    expect(() => decodeRoutedReport(buf.subarray(0, buf.length - 1))).toThrow();
    expect(() => decodeRoutedReport(Buffer.concat([buf, Buffer.from([0])]))).toThrow();
    const neg = Buffer.from(buf);
    neg.writeDoubleLE(-1, neg.length - 8);
    expect(() => decodeRoutedReport(neg)).toThrow();
  });
});
