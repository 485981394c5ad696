/**
 * The read side of durable Raft state that the core needs (etcd-io/raft storage.go). The driver
 * implements it over its WAL + snapshot files; MemoryStorage is the in-memory reference.
 *
 * Contract: everything returned here is durable (fsynced). Entries not yet durable live in the core's
 * unstable log until the driver persists a Ready and calls advance().
 *   entries(lo, hi, maxBytes) returns [lo, hi) limited to maxBytes (always at least one entry);
 *   throws ErrCompacted if lo ≤ snapshot index, ErrUnavailable if hi > lastIndex()+1.
 *   term(i) is valid for i in [firstIndex()-1, lastIndex()] (firstIndex()-1 = snapshot index);
 *   throws ErrCompacted below, ErrUnavailable above.
 */
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** Approximate encoded size of an entry, used for message and Ready batching limits. */
export function entrySize(e: Entry): number {
  // Fixed overhead for term/index/type fields, as a wire encoder would spend on them.
  return e.data.byteLength + 16;
}

/** Keeps a prefix of `ents` whose total size is ≤ maxBytes, but always at least one entry (etcd limitSize). */
export function limitSize<T extends Entry>(ents: T[], maxBytes: number | undefined): T[] {
  if (maxBytes === undefined || ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
