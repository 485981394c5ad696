/**
 * The Raft log as the core sees it: durable storage plus the unstable tail (etcd-io/raft log.go).
 *
 * Invariants: applied ≤ committed ≤ lastIndex(); committed never decreases (a conflicting suffix at or
 * below committed is a safety violation and throws); entries are contiguous from firstIndex().
 */
import { ErrCompacted, ErrUnavailable } from './errors.js';
import { limitSize, type RaftStorage } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { Unstable } from './unstable.js';

export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  /** Highest index handed to the driver in Ready.committedEntries but not yet advanced. */
  applying: number;

  constructor(readonly storage: RaftStorage, applied = 0) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = Math.max(first - 1, applied);
    this.applying = this.applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * Last index the driver has reported durable (advance): everything below the unstable part. With a
   * snapshot still pending, 0 — a conservative answer for the only caller, the leader's own match.
   */
  stableLastIndex(): number {
    if (this.unstable.entries.length > 0) return this.unstable.offset - 1;
    return this.unstable.snapshot ? 0 : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i; throws ErrCompacted / ErrUnavailable when out of range. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1) throw new ErrCompacted();
    if (i > this.lastIndex()) throw new ErrUnavailable();
    return this.storage.term(i);
  }

  /** Term of entry i, or 0 when it is compacted or beyond the log (etcd zeroTermOnOutOfBounds). */
  termOr0(i: number): number {
    return this.termOrUndefined(i) ?? 0;
  }

  matchTerm(i: number, t: number): boolean {
    const known = this.termOrUndefined(i);
    return known !== undefined && known === t;
  }

  /** Term of entry i, or undefined when it is compacted or beyond the log. Hot path: no exceptions. */
  private termOrUndefined(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return undefined;
      throw e;
    }
  }

  /** Raft §5.4.1: (term, index) is at least as up to date as our last entry. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * AppendEntries receiver (Raft Figure 2): if our entry at `index` has term `logTerm`, append `ents`
   * (dropping a conflicting suffix) and commit up to min(committed, last new index). Returns the last
   * index known to match the leader, or undefined if the consistency check failed.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[], ignorePrevTermForTest = false): number | undefined {
    const ok = ignorePrevTermForTest ? index <= this.lastIndex() && index >= this.firstIndex() - 1 : this.matchTerm(index, logTerm);
    if (!ok) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) throw new Error(`raft: entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) throw new Error(`raft: after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * First index whose term differs from ours (or is beyond our log); 0 if all given entries are
   * already present. Raft §5.3: "If an existing entry conflicts with a new one, delete it and all that follow".
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast back-off (Raft §5.3 end, etcd findConflictByTerm): the largest index ≤ `index` whose term is
   * ≤ `term`, with that term. Used by followers to hint where logs may match, and by leaders on rejects.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const t = this.termOrUndefined(index);
      if (t === undefined) return { index, term: 0 };
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  commitTo(c: number): void {
    if (this.committed < c) {
      if (this.lastIndex() < c) throw new Error(`raft: tocommit(${c}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
      this.committed = c;
    }
  }

  /**
   * Leader commit rule (Raft §5.4.2): only an entry of the current term is committed by counting
   * replicas; earlier entries are committed indirectly. `ignoreTermForTest` is mutation (1).
   */
  maybeCommit(maxIndex: number, term: number, ignoreTermForTest = false): boolean {
    if (maxIndex > this.committed && (ignoreTermForTest || this.termOr0(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) throw new Error(`raft: applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: number, t: number): void { this.unstable.stableTo(i, t); }
  stableSnapTo(i: number): void { this.unstable.stableSnapTo(i); }

  hasPendingSnapshot(): boolean { return this.unstable.snapshot !== undefined; }

  unstableEntries(): Entry[] { return this.unstable.entries.slice(); }

  /** Committed entries not yet handed to the driver; none while a snapshot is pending installation. */
  nextCommittedEnts(maxBytes?: number): Entry[] {
    if (this.hasPendingSnapshot()) return [];
    const lo = Math.max(this.applying, this.applied) + 1;
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasPendingSnapshot()) return false;
    return this.committed > Math.max(this.applying, this.applied);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Entries [lo, hi) limited to maxBytes; throws ErrCompacted if lo is below firstIndex. */
  slice(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo < this.firstIndex()) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) throw new Error(`raft: slice[${lo},${hi}) out of bound lastIndex(${this.lastIndex()})`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uo = this.unstable.offset;
    if (lo < uo) {
      const stored = this.storage.entries(lo, Math.min(hi, uo), maxBytes);
      if (stored.length < Math.min(hi, uo) - lo) return stored; // size-limited
      ents = stored;
    }
    if (hi > uo) {
      const u = this.unstable.slice(Math.max(lo, uo), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }

  /** Entries from i to the end, limited to maxBytes. */
  entriesFrom(i: number, maxBytes?: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
