/**
 * The upstream response and body-idle timeouts of every exchange, with one timer for all of them and
 * no object allocated per request.
 *
 * Why not undici's `headersTimeout` / `bodyTimeout`: its HTTP/1.1 parser keeps one timer per connection
 * and replaces it (a new FastTimer and a new WeakRef) whenever the next timeout's value differs from the
 * last one's. A service's `response` and `idle` differ by default (30 s, 60 s), so every request made
 * two timer objects, kept in undici's list until its next 0.5 s sweep: old enough to survive scavenges
 * and be promoted. Measured under wrk (64 B keep-alive, one upstream): 26,000 live FastTimers and
 * WeakRefs in a heap snapshot against 1,400 in the minimal undici proxy, twice its bytes promoted per
 * scavenge (240 vs 122 KB) and scavenges of 1.6 vs 1.1 ms (docs/benchmarks.md, 3 Dec 2026).
 *
 * How: an armed entry (the exchange itself: the links are its own fields) is appended to the list of
 * its timeout value. Every entry of a list has the same timeout and joins at the tail, so each list is
 * in deadline order and only its head can be due. One unref'd timer is set for the earliest head; when
 * it fires it expires what is due (each entry is disarmed before its `expire` runs) and is set again for
 * the next head, or not at all once every list is empty — so nothing is left running after the last
 * request.
 */

/** What an exchange carries to be timed here; the four link fields belong to Deadlines. */
export interface Expiring {
  expiresAt: number;
  prevExpiring: Expiring | undefined;
  nextExpiring: Expiring | undefined;
  expiringIn: DeadlineList | undefined;
  /** The deadline passed while armed (the entry is already disarmed). */
  expire(): void;
}

export class DeadlineList {
  head: Expiring | undefined;
  tail: Expiring | undefined;
}

export class Deadlines {
  private readonly lists = new Map<number, DeadlineList>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer is set for (Infinity: not set). */
  private timerAt = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** (Re)arms `e` to expire `timeoutMs` after `nowMs` (the caller's performance.now()); 0 disarms. */
  arm(e: Expiring, timeoutMs: number, nowMs: number): void {
    if (e.expiringIn !== undefined) unlink(e);
    if (timeoutMs <= 0) return;
    let list = this.lists.get(timeoutMs);
    if (list === undefined) this.lists.set(timeoutMs, (list = new DeadlineList()));
    const at = nowMs + timeoutMs;
    e.expiresAt = at;
    e.expiringIn = list;
    e.nextExpiring = undefined;
    const tail = list.tail;
    e.prevExpiring = tail;
    if (tail === undefined) list.head = e;
    else tail.nextExpiring = e;
    list.tail = e;
    if (at < this.timerAt) this.setTimer(at, nowMs);
  }

  disarm(e: Expiring): void {
    if (e.expiringIn !== undefined) unlink(e);
  }

  /** Entries armed now (tests, status). */
  get size(): number {
    let n = 0;
    for (const list of this.lists.values()) for (let e = list.head; e !== undefined; e = e.nextExpiring) n++;
    return n;
  }

  /** Stops the timer and forgets every entry (shutdown, once the listeners are closed). */
  close(): void {
    for (const list of this.lists.values()) {
      while (list.head !== undefined) unlink(list.head);
    }
    this.lists.clear();
    this.clearTimer();
  }

  private setTimer(at: number, nowMs: number): void {
    this.clearTimer();
    this.timerAt = at;
    // setTimeout rounds down to whole ms and may fire a little early by this clock: fire() re-arms then.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - nowMs)));
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    for (const list of this.lists.values()) {
      for (let e = list.head; e !== undefined && e.expiresAt <= now; e = list.head) {
        unlink(e);
        // expire() may arm entries again (a retry's next attempt): they join a tail, due later.
        e.expire();
      }
    }
    let next = Infinity;
    for (const [timeoutMs, list] of this.lists) {
      // Lists emptied by disarm or expiry go; arm() makes them again.
      if (list.head === undefined) this.lists.delete(timeoutMs);
      else if (list.head.expiresAt < next) next = list.head.expiresAt;
    }
    // An entry armed by an expire() above may have set the timer already.
    if (next < this.timerAt) this.setTimer(next, now);
  };
}

function unlink(e: Expiring): void {
  const list = e.expiringIn!;
  const prev = e.prevExpiring;
  const next = e.nextExpiring;
  if (prev === undefined) list.head = next;
  else prev.nextExpiring = next;
  if (next === undefined) list.tail = prev;
  else next.prevExpiring = prev;
  e.prevExpiring = undefined;
  e.nextExpiring = undefined;
  e.expiringIn = undefined;
}
