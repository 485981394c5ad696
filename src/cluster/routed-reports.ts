/**
 * Which peers route by a committed membership change yet (issue 16: "once a DELETE returns, no worker of
 * any peer routes to that upstream").
 *
 * Raft tells the answering peer that an entry is committed and applied *here*; it says nothing about when
 * the other peers apply it and rebuild their routing (a few milliseconds later, one append round trip and
 * an fsync). So every peer reports, to every other member, the applied index its routing includes once
 * its routing snapshot (and, with `node.workers`, every worker) has been rebuilt; an admin write waits for
 * those reports before it answers.
 *
 * Invariants:
 * - A report is monotonic per peer (a lower or repeated index is ignored), so reordered or replayed
 *   frames cannot make a peer look behind or ahead of what it said last.
 * - Waiting is bounded: peers this node has not heard from recently are not waited for (they are named
 *   as unconfirmed at once), the others for at most the caller's timeout. A write is never failed here:
 *   it is committed already; the answer says which peers have not confirmed.
 * - Pure bookkeeping: the clock and timers come from the driver (node.ts), which owns the sockets.
 */
import type { NodeId } from './raft/types.js';
import type { NodeTimers, TimerHandle } from './node-io.js';

export interface RoutedOutcome {
  /** Peers (other than this one) whose routing includes the index. */
  readonly confirmed: NodeId[];
  /** Peers that had not confirmed when the wait ended (unreachable, or past the timeout). */
  readonly unconfirmed: NodeId[];
}

interface Waiter {
  readonly index: number;
  readonly waitingFor: Set<NodeId>;
  readonly confirmed: NodeId[];
  readonly unconfirmed: NodeId[];
  readonly resolve: (o: RoutedOutcome) => void;
  timer: TimerHandle | undefined;
}

export class RoutedReports {
  private readonly byPeer = new Map<NodeId, number>();
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly timers: NodeTimers) {}

  /** What `peer` reported last (0: nothing yet). */
  of(peer: NodeId): number {
    return this.byPeer.get(peer) ?? 0;
  }

  /** A report from `peer`: its routing includes every entry up to `index`. */
  record(peer: NodeId, index: number): void {
    if (index <= this.of(peer)) return;
    this.byPeer.set(peer, index);
    for (const w of [...this.waiters]) {
      if (!w.waitingFor.has(peer) || index < w.index) continue;
      w.waitingFor.delete(peer);
      w.confirmed.push(peer);
      if (w.waitingFor.size === 0) this.settle(w);
    }
  }

  /**
   * Resolves once every peer of `reachable` has reported `index` or more, or after `timeoutMs`;
   * `unreachable` peers are reported unconfirmed without waiting.
   */
  waitFor(index: number, reachable: readonly NodeId[], unreachable: readonly NodeId[], timeoutMs: number): Promise<RoutedOutcome> {
    const confirmed: NodeId[] = [];
    const waitingFor = new Set<NodeId>();
    for (const p of reachable) {
      if (this.of(p) >= index) confirmed.push(p);
      else waitingFor.add(p);
    }
    const unconfirmed = [...unreachable];
    if (waitingFor.size === 0) return Promise.resolve({ confirmed, unconfirmed });
    return new Promise<RoutedOutcome>((resolve) => {
      const w: Waiter = { index, waitingFor, confirmed, unconfirmed, resolve, timer: undefined };
      w.timer = this.timers.setTimeout(() => this.settle(w), timeoutMs);
      this.waiters.add(w);
    });
  }

  /**
   * `peer` left the group (its removal is applied here): no wait holds for it any longer — it is
   * named unconfirmed at once, since it learns no further change — and what it reported is dropped, so
   * the same id added back later confirms only by what it reports then.
   */
  forget(peer: NodeId): void {
    this.byPeer.delete(peer);
    for (const w of [...this.waiters]) {
      if (!w.waitingFor.delete(peer)) continue;
      w.unconfirmed.push(peer);
      if (w.waitingFor.size === 0) this.settle(w);
    }
  }

  /** Shutdown: every wait ends now with what it has. */
  close(): void {
    for (const w of [...this.waiters]) this.settle(w);
  }

  private settle(w: Waiter): void {
    if (!this.waiters.delete(w)) return;
    this.timers.clearTimeout(w.timer);
    w.resolve({ confirmed: w.confirmed, unconfirmed: [...w.unconfirmed, ...w.waitingFor] });
  }
}
