import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LiveSlots } from '../../../src/lib/live-slots.js';

describe('LiveSlots', () => {
  it('holds exactly the members added and not deleted, whatever the order (model: a Set)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant('add' as const), fc.nat(200)), { maxLength: 300 }), (ops) => {
        const slots = new LiveSlots<{ n: number }>();
        const model = new Map<number, { n: number }>(); // slot → member
        let next = 0;
        for (const op of ops) {
          if (op === 'add') {
            const member = { n: next++ };
            const slot = slots.add(member);
            expect(model.has(slot)).toBe(false); // a live slot is never handed out twice
            model.set(slot, member);
          } else {
            const live = [...model.keys()];
            if (live.length === 0) continue;
            const slot = live[op % live.length]!;
            slots.delete(slot);
            slots.delete(slot); // deleting twice is harmless
            model.delete(slot);
          }
          expect(slots.size).toBe(model.size);
        }
        expect(new Set(slots)).toEqual(new Set(model.values()));
      }),
    );
  });

  it('reuses freed slots, so the array never outgrows the most members live at once', () => {
    const slots = new LiveSlots<number>();
    const a = slots.add(1);
    const b = slots.add(2);
    for (let i = 0; i < 1000; i++) slots.delete(slots.add(i + 10));
    slots.delete(a);
    expect([a, b]).toContain(slots.add(3));
    expect(slots.add(4)).toBe(2);
    expect([...slots].sort()).toEqual([2, 3, 4]);
  });
});
