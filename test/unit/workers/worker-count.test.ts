/** `node.workers` as a process count (app/worker-fleet.ts workerCountOf): `auto` follows the cores, 1 on a 1-core machine. */
import { describe, expect, it } from 'vitest';
import { workerCountOf } from '../../../src/app/worker-fleet.js';

describe('workerCountOf', () => {
  it('auto is one per core, so a single process on one core', () => {
    expect(workerCountOf('auto', 1)).toBe(1);
    expect(workerCountOf('auto', 2)).toBe(2);
    expect(workerCountOf('auto', 16)).toBe(16);
  });
  it('a number is taken as it is (the schema bounds it to 1..64)', () => {
    expect(workerCountOf(1, 16)).toBe(1);
    expect(workerCountOf(3, 2)).toBe(3);
  });
});
