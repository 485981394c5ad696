/**
 * The live members of a long-lived collection that one member joins and leaves per connection
 * (sockets, HTTP/2 sessions): slots of a plain array, a freed slot taken by the next member.
 *
 * Why not a Set: with one entry in and one out per connection V8 rebuilds a Set's table over and over,
 * and each table it leaves behind in the old generation still points at the members it held. Every
 * scavenge until the next mark-compact then kept those closed members — and all they reference —
 * alive, and promoted them. Under `Connection: close` (wrk, 50 clients) the downstream connection
 * count in a Set cost 1.9 KB promoted per request instead of 0.7 and scavenges of 3.1–3.6 ms instead
 * of 1.8 (docs/benchmarks.md, 6 Dec 2026). Here a leaving member's slot is overwritten at once, and
 * the array is only replaced when it grows past the most members ever live together.
 */
export class LiveSlots<T> {
  private readonly slots: (T | undefined)[] = [];
  private readonly free: number[] = [];
  private count = 0;

  /** Adds `member`; the slot returned is what `delete` takes. */
  add(member: T): number {
    const slot = this.free.pop() ?? this.slots.length;
    this.slots[slot] = member;
    this.count++;
    return slot;
  }

  /** Removes the member in `slot` (a slot `add` returned and not yet deleted). */
  delete(slot: number): void {
    if (this.slots[slot] === undefined) return;
    this.slots[slot] = undefined;
    this.free.push(slot);
    this.count--;
  }

  get size(): number {
    return this.count;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const m of this.slots) if (m !== undefined) yield m;
  }
}
