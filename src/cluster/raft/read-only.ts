/**
 * Pending linearizable reads on the leader (Raft thesis §6.4 ReadIndex; etcd-io/raft read_only.go).
 * A request records the commit index when it arrived; the leader then broadcasts a heartbeat carrying
 * the request context; once a majority of voters echoed that context the leader knows it was still
 * leader at that time, and every request queued up to that context can be served at its index.
 *
 * Invariant: requests are released in arrival order, each at most once.
 */
import type { Message, NodeId } from './types.js';

interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  addRequest(index: number, m: Message): void {
    const ctx = m.context ?? '';
    if (this.pending.has(ctx)) return; // duplicate context: the first request wins
    this.pending.set(ctx, { req: m, index, acks: new Set() });
    this.queue.push(ctx);
  }

  /** Records a heartbeat ack; returns the ack set for the context (undefined if unknown). */
  recvAck(id: NodeId, ctx: string): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(ctx);
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns every request queued up to and including `ctx`. */
  advance(ctx: string): { req: Message; index: number }[] {
    const i = this.queue.indexOf(ctx);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: { req: Message; index: number }[] = [];
    for (const c of done) {
      const rs = this.pending.get(c);
      this.pending.delete(c);
      if (rs) out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  lastPendingContext(): string | undefined {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1] : undefined;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
