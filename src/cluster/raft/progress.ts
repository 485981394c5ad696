/**
 * The leader's view of one follower's replication (etcd-io/raft tracker/progress.go design).
 *
 * States:
 *   probe      — next is a guess; send at most one MsgApp until a response or heartbeat response
 *                (msgAppFlowPaused), back off on rejections using the follower's hint.
 *   replicate  — next is optimistic; stream MsgApps pipelined up to maxInflightMsgs (Inflights).
 *   snapshot   — a MsgSnap is in flight; send nothing else until reportSnapshot or an ack at or
 *                beyond the snapshot index.
 * Invariants: match < next; match only grows while the leader keeps its term.
 */
import type { NodeId } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * Bounded window of in-flight MsgApp (by last index sent, with the entry bytes each carried). Full
 * (capacity messages, or maxBytes of entries when maxBytes > 0) → the leader pauses replication to that
 * follower, which bounds memory and network use when a follower is slow (etcd inflights.go,
 * MaxInflightMsgs / MaxInflightBytes). A message is admitted while below the byte bound, so one larger
 * than the bound still goes out alone.
 */
export class Inflights {
  private readonly buf: { last: number; bytes: number }[] = [];
  private inflightBytes = 0;
  constructor(readonly capacity: number, readonly maxBytes = 0) {}
  add(lastIndex: number, bytes = 0): void {
    if (this.full()) throw new Error('raft: inflights overflow');
    this.buf.push({ last: lastIndex, bytes });
    this.inflightBytes += bytes;
  }
  /** Frees all in-flight messages whose last index is ≤ `index` (they were acknowledged). */
  freeLE(index: number): void {
    let i = 0;
    while (i < this.buf.length && this.buf[i]!.last <= index) this.inflightBytes -= this.buf[i++]!.bytes;
    if (i > 0) this.buf.splice(0, i);
  }
  full(): boolean { return this.buf.length >= this.capacity || (this.maxBytes > 0 && this.inflightBytes >= this.maxBytes); }
  count(): number { return this.buf.length; }
  bytes(): number { return this.inflightBytes; }
  reset(): void { this.buf.length = 0; this.inflightBytes = 0; }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight while state === 'snapshot'. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round (any response); see Raft thesis §6.2. */
  recentActive = false;
  /** In probe state: one MsgApp is outstanding, wait for a reply or a heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;

  constructor(readonly id: NodeId, next: number, maxInflight: number, public isLearner: boolean, maxInflightBytes = 0) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that a MsgApp with `entries` entries (`bytes` of entry data) ending at next-1+entries was sent. */
  sentEntries(entries: number, bytes = 0): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      this.msgAppFlowPaused = true;
    } else {
      throw new Error(`raft: sending append in unhandled state ${this.state}`);
    }
  }

  /** A successful MsgAppResp for index n. Returns false if it was stale (match already ≥ n). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejected MsgApp whose prevLogIndex was `rejected`; `matchHint` is where the follower's log
   * probably matches (the fast back-off of Raft §5.3 "optimization"). Returns false for stale rejections.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false; // stale: we already know a larger match
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // stale: not the probe we are waiting for
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.msgAppFlowPaused;
      case 'replicate': return this.msgAppFlowPaused;
      case 'snapshot': return true;
    }
  }
}
