/**
 * The checker itself, on histories whose answer is known: if it accepted a stale read or refused a
 * legal concurrent one, the multi-process tests that use it would prove nothing.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkRegisters, type RegisterOp } from '../../helpers/linearizability.js';

const w = (value: string, call: number, ret: number, key = 'x'): RegisterOp => ({ kind: 'write', key, value, call, ret });
const r = (value: string | null, call: number, ret: number, key = 'x'): RegisterOp => ({ kind: 'read', key, value, call, ret });

describe('WGL register checker', () => {
  it('accepts a sequential history and refuses a stale read after a completed write', () => {
    expect(checkRegisters([w('1', 0, 10), r('1', 20, 30)]).ok).toBe(true);
    expect(checkRegisters([w('1', 0, 10), w('2', 20, 30), r('1', 40, 50)]).ok).toBe(false);
    expect(checkRegisters([r('1', 0, 5)]).ok).toBe(false); // a value nobody wrote
    expect(checkRegisters([w('1', 0, 10), r(null, 20, 30)]).ok).toBe(false); // the write was lost
  });

  it('lets a read overlapping a write see either value, but not both orders at once', () => {
    expect(checkRegisters([w('1', 0, 10), w('2', 20, 60), r('1', 30, 40)]).ok).toBe(true);
    expect(checkRegisters([w('1', 0, 10), w('2', 20, 60), r('2', 30, 40)]).ok).toBe(true);
    // Two reads in real-time order that see the new value, then the old: not linearizable.
    expect(checkRegisters([w('1', 0, 10), w('2', 20, 100), r('2', 30, 40), r('1', 50, 60)]).ok).toBe(false);
  });

  it('treats an unknown write as possibly applied at any later time, or never', () => {
    const unknown = w('2', 20, Number.POSITIVE_INFINITY);
    expect(checkRegisters([w('1', 0, 10), unknown, r('1', 30, 40)]).ok).toBe(true);
    expect(checkRegisters([w('1', 0, 10), unknown, r('2', 30, 40)]).ok).toBe(true);
    expect(checkRegisters([w('1', 0, 10), unknown, r('2', 30, 40), r('1', 50, 60)]).ok).toBe(false);
    expect(checkRegisters([w('1', 0, 10), unknown, r('2', 5, 8)]).ok).toBe(false); // read before the invocation
  });

  it('checks keys independently and names the one that fails', () => {
    const res = checkRegisters([w('1', 0, 10, 'a'), r('1', 20, 30, 'a'), w('1', 0, 10, 'b'), r(null, 20, 30, 'b')]);
    expect(res.ok).toBe(false);
    expect(res.key).toBe('b');
  });

  it('agrees with brute force over every order on small random histories', () => {
    // Brute force: some permutation that respects real time and register semantics.
    const brute = (ops: RegisterOp[]): boolean => {
      const n = ops.length;
      const used = new Array<boolean>(n).fill(false);
      const go = (done: number, state: string | null): boolean => {
        if (done === n) return true;
        for (let i = 0; i < n; i++) {
          if (used[i]) continue;
          // i may go next only if no unused op returned before i was invoked.
          if (ops.some((o, j) => !used[j] && j !== i && o.ret < ops[i]!.call)) continue;
          const o = ops[i]!;
          if (o.kind === 'read' && o.value !== state) continue;
          used[i] = true;
          if (go(done + 1, o.kind === 'write' ? o.value : state)) return true;
          used[i] = false;
        }
        return false;
      };
      return go(0, null);
    };
    // Values are unique per write (the checker's precondition, as in the multi-process tests); a
    // read returns one of them, absent, or a value nobody wrote.
    const raw = fc.record({
      write: fc.boolean(),
      pick: fc.nat(),
      call: fc.integer({ min: 0, max: 40 }),
      len: fc.integer({ min: 1, max: 30 }),
      unknown: fc.boolean(),
    });
    const history = fc.array(raw, { minLength: 1, maxLength: 7 }).map((list) => {
      const writes = list.filter((o) => o.write).length;
      let n = 0;
      return list.map((o): RegisterOp => {
        if (o.write) return w(`v${n++}`, o.call, o.unknown ? Number.POSITIVE_INFINITY : o.call + o.len);
        const k = o.pick % (writes + 2);
        return r(k === writes ? null : `v${k}`, o.call, o.call + o.len); // k = writes + 1: never written
      });
    });
    let both = 0;
    fc.assert(fc.property(history, (ops) => {
      const expected = brute(ops);
      if (!expected) both++;
      expect(checkRegisters(ops).ok).toBe(expected);
    }), { numRuns: 2000, seed: 42 });
    expect(both).toBeGreaterThan(200); // the generator makes non-linearizable histories too
  });
});
