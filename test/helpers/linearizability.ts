/**
 * A history recorder and a WGL linearizability checker (Wing & Gong's search with Lowe's memoisation,
 * the algorithm Knossos and Porcupine use) for histories of writes and reads on independent registers
 * (raft.md R-D1–D3). Used by the simulator-free multi-process tests: clients talk to real meshgate
 * peers through the admin API while peers are killed, and the recorded history must have a legal
 * sequential order that respects real time.
 *
 * The model is one register per key: `write(v)` sets it, `read` returns the value (or null: absent).
 * Registers are independent objects, so the history is checked key by key (linearizability is
 * compositional, Herlihy & Wing §3.3); a read that returns many keys at once is split into one read per
 * key, which makes the check necessary but not sufficient for the multi-key read's atomicity.
 *
 * A write whose outcome is unknown (timeout, connection reset, a 5xx that does not promise "not
 * applied") is recorded with no return: it may take effect at any point after its invocation, or never
 * — the search places it at the end when nothing observed it.
 */

export type RegisterOp =
  | { kind: 'write'; key: string; value: string; call: number; ret: number }
  | { kind: 'read'; key: string; value: string | null; call: number; ret: number };

/** Monotonic time in microseconds (process.hrtime), so call/return order is real-time order. */
export const now = (): number => Number(process.hrtime.bigint() / 1000n);

/** Collects operations as clients invoke them and complete them. */
export class HistoryRecorder {
  readonly ops: RegisterOp[] = [];

  /** A write: call `done(true)` when it was acknowledged, `done(false)` when it certainly did not apply, `unknown()` otherwise. */
  write(key: string, value: string): { ok(): void; failed(): void; unknown(): void } {
    const call = now();
    return {
      ok: () => { this.ops.push({ kind: 'write', key, value, call, ret: now() }); },
      failed: () => { /* never applied: not part of the history */ },
      unknown: () => { this.ops.push({ kind: 'write', key, value, call, ret: Number.POSITIVE_INFINITY }); },
    };
  }

  /** A read of several keys at once: `done(values)` with what it saw (keys it did not see are absent). */
  read(keys: readonly string[]): { done(seen: ReadonlyMap<string, string>): void } {
    const call = now();
    return {
      done: (seen) => {
        const ret = now();
        for (const key of keys) this.ops.push({ kind: 'read', key, value: seen.get(key) ?? null, call, ret });
      },
    };
  }
}

export interface CheckResult {
  ok: boolean;
  /** The first key whose history has no linearization. */
  key?: string;
  /** Operations on that key, for the failure message. */
  ops?: RegisterOp[];
  /** Search steps taken (all keys). */
  steps: number;
}

/** Checks every key's sub-history; `initial` is each register's value before the history (default absent). */
export function checkRegisters(ops: readonly RegisterOp[], initial: ReadonlyMap<string, string> = new Map(), maxSteps = 5_000_000): CheckResult {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  let steps = 0;
  for (const [key, all] of byKey) {
    const list = boundUnknownWrites(all);
    if (list === 'read-before-write') return { ok: false, key, ops: all, steps };
    const r = linearizable(list, initial.get(key) ?? null, maxSteps - steps);
    steps += r.steps;
    if (r.ok === 'budget') throw new Error(`linearizability search for ${key} exceeded ${maxSteps} steps`);
    if (!r.ok) return { ok: false, key, ops: list, steps };
  }
  return { ok: true, steps };
}

/**
 * Writes whose outcome is unknown are what makes the search exponential (each may or may not have
 * happened, anywhere after its call). Two rewrites that keep the answer (values are unique per write):
 * an unknown write nobody read can be dropped — placing it last is always legal and it can only make
 * later reads harder — and one that some read returned did happen before that read's linearization
 * point, so it can be given that read's return as its own.
 */
function boundUnknownWrites(ops: readonly RegisterOp[]): RegisterOp[] | 'read-before-write' {
  const firstSeen = new Map<string, number>();
  for (const op of ops) if (op.kind === 'read' && op.value !== null) firstSeen.set(op.value, Math.min(firstSeen.get(op.value) ?? Infinity, op.ret));
  const out: RegisterOp[] = [];
  for (const op of ops) {
    if (op.kind !== 'write' || op.ret !== Number.POSITIVE_INFINITY) { out.push(op); continue; }
    const seenBy = firstSeen.get(op.value);
    if (seenBy === undefined) continue;
    if (seenBy < op.call) return 'read-before-write';
    out.push({ ...op, ret: seenBy });
  }
  return out;
}

/** One event of the history: an invocation (with its return) or a return, in a doubly linked list. */
interface Entry {
  id: number;
  isCall: boolean;
  time: number;
  op: RegisterOp;
  match: Entry | undefined; // a call's return entry
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** WGL over one register. Returns ok true/false, or 'budget' when the search ran out of steps. */
function linearizable(ops: readonly RegisterOp[], initial: string | null, budget: number): { ok: boolean | 'budget'; steps: number } {
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const ret: Entry = { id, isCall: false, time: op.ret, op, match: undefined, prev: undefined, next: undefined };
    events.push({ id, isCall: true, time: op.call, op, match: ret, prev: undefined, next: undefined }, ret);
  });
  // Time order; at equal times invocations come first, which treats touching operations as
  // concurrent (the permissive reading: it never reports a violation that depends on a tie).
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall));
  const head: Entry = { id: -1, isCall: false, time: -Infinity, op: ops[0]!, match: undefined, prev: undefined, next: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (call: Entry): void => {
    for (const e of [call, call.match!]) {
      e.prev!.next = e.next;
      if (e.next) e.next.prev = e.prev;
    }
  };
  const unlift = (call: Entry): void => {
    for (const e of [call.match!, call]) {
      e.prev!.next = e;
      if (e.next) e.next.prev = e;
    }
  };

  const words = new Uint32Array(Math.ceil(ops.length / 32) + 1);
  const seen = new Set<string>();
  const stack: Array<{ call: Entry; state: string | null }> = [];
  let state = initial;
  let entry = head.next;
  let steps = 0;
  while (head.next) {
    if (++steps > budget) return { ok: 'budget', steps };
    if (!entry) return { ok: false, steps }; // unreachable: a return always ends the scan
    if (entry.isCall) {
      const op = entry.op;
      const legal = op.kind === 'write' || op.value === state;
      const next = op.kind === 'write' ? op.value : state;
      if (legal) {
        words[entry.id >> 5]! ^= 1 << (entry.id & 31);
        const key = `${words.join(',')}|${next ?? '\u0000'}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        words[entry.id >> 5]! ^= 1 << (entry.id & 31);
      }
      entry = entry.next;
    } else {
      // A return whose call could not be linearized before it: undo the latest choice.
      const top = stack.pop();
      if (!top) return { ok: false, steps };
      words[top.call.id >> 5]! ^= 1 << (top.call.id & 31);
      state = top.state;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { ok: true, steps };
}

/** A readable dump of a failing key's history, in call order (µs relative to the first call). */
export function describeOps(ops: readonly RegisterOp[]): string {
  const t0 = Math.min(...ops.map((o) => o.call));
  return [...ops]
    .sort((a, b) => a.call - b.call)
    .map((o) => `${o.kind} ${o.kind === 'write' ? o.value : `→ ${o.value ?? '∅'}`}  [${o.call - t0}, ${o.ret === Infinity ? '?' : o.ret - t0}]`)
    .join('\n');
}
