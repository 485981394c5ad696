/**
 * A seed replays exactly: the production driver takes all its time, timers and randomness from the
 * simulator (node-io.ts), so a failing seed printed by safety.test.ts reproduces the same run.
 */
import { expect, it } from 'vitest';
import { runDriverSeed } from './cluster-sim.js';

it('replaying a seed yields the same run (tasks, messages, commits, client history counts)', async () => {
  for (const seed of [1, 2]) {
    const a = await runDriverSeed({ seed, voters: 3, spares: 1, operator: true });
    const b = await runDriverSeed({ seed, voters: 3, spares: 1, operator: true });
    expect(a.ok && b.ok, a.ok ? (b.ok ? '' : b.error.message) : a.error.message).toBe(true);
    expect(b).toEqual(a);
  }
}, 120_000);
