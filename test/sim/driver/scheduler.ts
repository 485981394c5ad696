/**
 * Virtual time and a seeded event queue for the driver simulator. Every timer, message delivery and disk
 * latency of every simulated process is a task here; nothing waits on the real clock, so a seed replays
 * exactly and a simulated minute costs only the CPU of what happens in it.
 *
 * Between two tasks the queue lets every promise chain the last task started run to its end (one macrotask
 * turn: the production driver's Ready loop, storage and codec are all async but wait on nothing real), so
 * each task sees the effects of the previous one complete.
 *
 * A task belongs to a process (Proc). Killing the process cancels its tasks: its timers stop and its
 * pending disk calls never return, which is what SIGKILL or a power cut does to a real peer.
 */
import type { NodeTimers, TimerHandle } from '../../../src/cluster/node-io.js';
import { Heap } from '../raft/sim.js';

export class Proc {
  alive = true;
  constructor(readonly name: string) {}
}

interface Task {
  /** Virtual timers keep no process alive; present so a Task is a TimerHandle. */
  unref(): void;
  fn: () => void;
  owner: Proc | undefined;
  cancelled: boolean;
}

/** One macrotask turn: every microtask queued so far (and those they queue) has run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Scheduler {
  now = 0;
  tasks = 0;
  private readonly heap = new Heap<Task>();

  /** Runs `fn` at now + ms (ms ≥ 0) unless `owner` has died by then. */
  after(ms: number, fn: () => void, owner?: Proc): Task {
    const task: Task = { fn, owner, cancelled: false, unref: () => undefined };
    this.heap.push(this.now + Math.max(0, ms), task);
    return task;
  }

  /** Resolves after `ms` of virtual time; never, if `owner` dies first. */
  sleep(ms: number, owner: Proc): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve, owner));
  }

  /** Node's timer API over virtual time, for one process (node-io.ts NodeTimers). */
  timersFor(owner: Proc): NodeTimers {
    const cancel = (t: TimerHandle | undefined): void => {
      if (t) (t as { cancelled: boolean }).cancelled = true;
    };
    return {
      setTimeout: (fn, ms) => this.after(ms, fn, owner),
      clearTimeout: cancel,
      setInterval: (fn, ms) => {
        // One handle for the whole series: clearing it stops the next firing.
        const handle = { cancelled: false, unref: () => undefined };
        const fire = (): void => {
          if (handle.cancelled) return;
          this.after(ms, fire, owner);
          fn();
        };
        this.after(ms, fire, owner);
        return handle;
      },
      clearInterval: cancel,
      setImmediate: (fn) => void this.after(0, fn, owner),
    };
  }

  /**
   * Runs tasks until virtual time `until` (or the queue is empty), calling `afterEach` after each task
   * once its promise chains have settled; `afterEach` may throw to stop the run.
   */
  async runUntil(until: number, afterEach: () => void): Promise<void> {
    await turn();
    for (;;) {
      const next = this.heap.pop();
      if (!next) return;
      if (next.t > until) {
        this.heap.push(next.t, next.e); // put it back for the next phase
        this.now = until;
        return;
      }
      const task = next.e;
      if (task.cancelled || (task.owner && !task.owner.alive)) continue;
      this.now = next.t;
      this.tasks++;
      task.fn();
      await turn();
      afterEach();
    }
  }
}
