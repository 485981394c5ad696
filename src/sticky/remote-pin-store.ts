/**
 * A pin store run by another process: a data-plane worker (node.workers > 1, no `redis:`) sends every
 * call to its primary's one MemoryPinStore, so all workers of a peer see the same pins (no
 * worker-local pins that disagree). `call` carries one operation and its arguments there and back
 * (workers/channel.ts); a call that does not come back within the budget fails like a Redis call past
 * its budget, and the resolver's fallback rules apply.
 */
import type { CreateOptions, CreateResult, GetResult, MoveOptions, MoveResult, PinStore, RenewOptions, RenewResult, StoreCallOptions } from './pin-store.js';

export type RemotePinCall = (op: 'get' | 'createIfAbsent' | 'compareAndMove' | 'renew', args: readonly unknown[], timeoutMs: number) => Promise<unknown>;

/**
 * Without a budget from the caller (no `redis:`, so no `redis.budget`): a round trip to the primary
 * takes ~0.1 ms, but a loaded machine can hold a process off the CPU for tens of ms, and a pin that
 * times out falls back to the hash (another upstream). One second bounds a hung primary without
 * failing over on scheduling noise.
 */
export const REMOTE_PIN_BUDGET_MS = 1_000;

export class RemotePinStore implements PinStore {
  readonly kind = 'memory' as const;

  constructor(private readonly call: RemotePinCall, private readonly budgetMs = REMOTE_PIN_BUDGET_MS) {}

  private budget(opts: StoreCallOptions | undefined): number {
    return opts?.budgetMs ?? this.budgetMs;
  }

  get(sid: string, opts?: StoreCallOptions): Promise<GetResult> {
    return this.call('get', opts ? [sid, opts] : [sid], this.budget(opts)) as Promise<GetResult>;
  }

  createIfAbsent(sid: string, candidate: string, opts: CreateOptions): Promise<CreateResult> {
    return this.call('createIfAbsent', [sid, candidate, opts], this.budget(opts)) as Promise<CreateResult>;
  }

  compareAndMove(sid: string, expected: { readonly upstream: string; readonly fence: number }, to: string, opts: MoveOptions): Promise<MoveResult> {
    return this.call('compareAndMove', [sid, expected, to, opts], this.budget(opts)) as Promise<MoveResult>;
  }

  renew(sid: string, expectedFence: number, opts: RenewOptions): Promise<RenewResult> {
    return this.call('renew', [sid, expectedFence, opts], this.budget(opts)) as Promise<RenewResult>;
  }

  async close(): Promise<void> {}
}

/** Runs a call a RemotePinStore sent (in the process that holds the store). */
export function servePinCall(store: PinStore, op: string, args: readonly unknown[]): Promise<unknown> {
  const a = args as [never, never, never, never];
  switch (op) {
    case 'get': return store.get(a[0], a[1]);
    case 'createIfAbsent': return store.createIfAbsent(a[0], a[1], a[2]);
    case 'compareAndMove': return store.compareAndMove(a[0], a[1], a[2], a[3]);
    case 'renew': return store.renew(a[0], a[1], a[2]);
    default: return Promise.reject(new Error(`unknown pin store call ${op}`));
  }
}
