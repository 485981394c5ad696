/**
 * Client connection and byte counts of a listener, for meshgate_downstream_* (Envoy's
 * downstream_cx_active / downstream_cx_rx_bytes_total). Counted per connection, not per request:
 * a closed socket adds its final byte counts once, and a scrape adds the live sockets' counts so far.
 *
 * The live sockets sit in the slots of a plain array (a freed slot is taken by the next connection),
 * not in a Set. A Set with one entry in and one out per connection has V8 rebuild its table over and
 * over, and each table it leaves behind in the old generation still points at the sockets it held, so
 * every scavenge until the next mark-compact kept those closed sockets — and all they reference —
 * alive and promoted them. Under `Connection: close` (wrk, 50 clients) that was 1.9 KB promoted per
 * request instead of 0.7 and scavenges of 3.1–3.6 ms instead of 1.8 (docs/benchmarks.md, 6 Dec 2026).
 */
import type { Server, Socket } from 'node:net';

export interface ConnectionCounts {
  open: number;
  received: number;
  sent: number;
}

const SLOT = Symbol('meshgate.connectionSlot');
type Tracked = Socket & { [SLOT]?: number };

/** `servers`: the plain listener and the TLS one. A TLS connection is counted once, as the TCP socket
 *  the TLS listener accepted (wire bytes); its decrypted side, handed to the plain listener's node:http
 *  server, is skipped. */
export function trackConnections(servers: readonly Server[]): () => ConnectionCounts {
  const slots: (Socket | undefined)[] = [];
  const freeSlots: number[] = [];
  let open = 0;
  let closedReceived = 0;
  let closedSent = 0;
  // One listener for every socket (the emitter is `this`), not a closure per connection: with
  // `Connection: close` clients this runs once per request.
  function onClose(this: Tracked): void {
    const slot = this[SLOT];
    if (slot === undefined) return;
    this[SLOT] = undefined;
    slots[slot] = undefined;
    freeSlots.push(slot);
    open--;
    closedReceived += this.bytesRead;
    closedSent += this.bytesWritten;
  }
  const onConnection = (socket: Tracked) => {
    if ((socket as Socket & { encrypted?: boolean }).encrypted === true) return;
    const slot = freeSlots.pop() ?? slots.length;
    slots[slot] = socket;
    socket[SLOT] = slot;
    open++;
    socket.on('close', onClose);
  };
  for (const server of servers) server.on('connection', onConnection);
  return () => {
    let received = closedReceived;
    let sent = closedSent;
    for (const s of slots) {
      if (s === undefined) continue;
      received += s.bytesRead;
      sent += s.bytesWritten;
    }
    return { open, received, sent };
  };
}
