// Starting a bench's targets one by one: a target whose package is missing is left out with a note,
// one that fails to start or to serve is stopped and recorded as failed, the rest are returned in order.
import type { Target } from './launch.js';
import type { BenchContext } from './types.js';

export interface StartableTarget {
  readonly name: string;
  /** Why this target cannot run here (a missing package), or undefined. */
  readonly missing?: () => string | undefined;
}

export async function startTargets<T extends StartableTarget>(
  ctx: BenchContext,
  bench: string,
  targets: readonly T[],
  start: (t: T) => Promise<Target>,
  ready: (t: T, target: Target) => Promise<void>,
): Promise<{ started: Map<string, Target>; failed: Map<string, string>; notes: string[] }> {
  const started = new Map<string, Target>();
  const failed = new Map<string, string>();
  const notes: string[] = [];
  for (const t of targets) {
    const missing = t.missing?.();
    if (missing) {
      notes.push(`${t.name}: left out (${missing}; scripts/install-bench-deps.sh installs it)`);
      continue;
    }
    try {
      ctx.log(`${bench}: starting ${t.name}`);
      const target = await start(t);
      started.set(t.name, target);
      await ready(t, target);
    } catch (err) {
      await started.get(t.name)?.stop();
      started.delete(t.name);
      failed.set(t.name, (err as Error).message);
      ctx.log(`${bench}: ${t.name} failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { started, failed, notes };
}
