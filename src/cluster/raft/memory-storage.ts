/**
 * In-memory RaftStorage (etcd-io/raft MemoryStorage). Used by tests, the simulator and by a driver as
 * the cache in front of its WAL. Everything stored here is treated by the core as durable.
 *
 * Layout: ents[0] is a dummy entry carrying the snapshot's (index, term); real entries follow with
 * consecutive indexes. Invariants: ents is never empty; ents[k].index === ents[0].index + k.
 */
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from './errors.js';
import { limitSize, type RaftStorage } from './storage.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

const EMPTY = new Uint8Array(0);

export interface MemoryStorageInit {
  /** Bootstrap configuration for a brand-new cluster (stored as the metadata of the index-0 snapshot). */
  confState?: ConfState;
  hardState?: HardState;
}

export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];

  constructor(init: MemoryStorageInit = {}) {
    this.snap = { metadata: { index: 0, term: 0, confState: init.confState ?? { voters: [], learners: [] } }, data: EMPTY };
    this.ents = [dummy(0, 0)];
    if (init.hardState) this.hardState = init.hardState;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  private offset(): number { return this.ents[0]!.index; }

  firstIndex(): number { return this.offset() + 1; }

  lastIndex(): number { return this.offset() + this.ents.length - 1; }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new ErrCompacted();
    if (i - off >= this.ents.length) throw new ErrUnavailable();
    return this.ents[i - off]!.term;
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) throw new ErrUnavailable();
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - off, hi - off), maxBytes);
  }

  snapshot(): Snapshot { return this.snap; }

  /** Replaces all state with the snapshot (a follower installing MsgSnap, or a restart). */
  applySnapshot(s: Snapshot): void {
    const cur = this.snap.metadata.index;
    // Equal index is allowed only for the index-0 bootstrap snapshot (replacing the initial ConfState).
    if (s.metadata.index < cur || (s.metadata.index === cur && cur !== 0)) throw new ErrSnapOutOfDate();
    this.snap = s;
    this.ents = [dummy(s.metadata.index, s.metadata.term)];
  }

  /**
   * Records a snapshot of the application state at `index` (≤ lastIndex, normally the applied index),
   * so the log before it can be compacted. Returns the snapshot.
   */
  createSnapshot(index: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    if (index > this.lastIndex()) throw new Error(`raft: snapshot index ${index} is out of bound lastindex ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState: cs }, data };
    return this.snap;
  }

  /** Discards entries before `index` (which must be ≤ the applied index; the caller keeps a snapshot covering them). */
  compact(index: number): void {
    const off = this.offset();
    if (index <= off) throw new ErrCompacted();
    if (index > this.lastIndex()) throw new Error(`raft: compact ${index} is out of bound lastindex ${this.lastIndex()}`);
    const i = index - off;
    this.ents = [dummy(this.ents[i]!.index, this.ents[i]!.term), ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries; entries overlapping existing ones replace them and everything after (Raft §5.3:
   * a conflicting suffix is discarded). Entries already compacted are ignored.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > entries[0]!.index) ents = entries.slice(first - entries[0]!.index);
    const off = ents[0]!.index - this.offset();
    if (off > this.ents.length) throw new Error(`raft: missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`);
    // In place: the common case is a pure append, and copying the whole log per append is quadratic.
    this.ents.length = off;
    for (const e of ents) this.ents.push(e);
  }
}

function dummy(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: EMPTY };
}
