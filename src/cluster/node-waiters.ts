/**
 * A caller of RaftNode waiting for its answer (a proposal, a read, a conf change, a leadership
 * transfer), with its deadline. Kept apart from the Ready loop because its one rule is easy to break
 * there: a waiter is answered exactly once — by the apply, by a failure, or by its timer — and whichever
 * comes first removes it from the collection holding it, so the others find nothing to answer.
 */
import { RaftTimeoutError } from './errors.js';
import type { NodeTimers, TimerHandle } from './node-io.js';

export interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
  /** Removes the waiter from the collection holding it when it times out (it may move between them). */
  forget: () => void;
}

/** Registers a waiter under `key` that rejects with RaftTimeoutError after `ms` (and leaves `map`). */
export function armWaiter<T>(timers: NodeTimers, map: Map<string, Waiter<T>>, key: string, resolve: (v: T) => void, reject: (e: Error) => void, what: string, ms: number): Waiter<T> {
  const w: Waiter<T> = {
    resolve,
    reject,
    timer: timers.setTimeout(() => {
      w.forget();
      reject(new RaftTimeoutError(what, ms));
    }, ms),
    forget: () => map.delete(key),
  };
  map.set(key, w);
  return w;
}
