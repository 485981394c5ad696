/**
 * The timer seam of the health module: the active checker and the monitor schedule through this, so
 * unit tests drive time with a fake and production uses unref'd Node timers.
 *
 * Invariant: timers from `realScheduler` are unref'd — health checking never keeps a process alive;
 * the app's listeners do.
 */
export interface TimerHandle {
  readonly __timer?: never;
}

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realScheduler: Scheduler = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
  },
};
