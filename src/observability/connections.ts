/**
 * Client connection and byte counts of a listener, for meshgate_downstream_* (Envoy's
 * downstream_cx_active / downstream_cx_rx_bytes_total). Counted per connection, not per request:
 * a closed socket adds its final byte counts once, and a scrape adds the live sockets' counts so far.
 *
 * The live sockets are LiveSlots (lib/live-slots.ts), not a Set: a Set churned one socket in and out
 * per connection kept closed sockets alive across scavenges.
 */
import type { Server, Socket } from 'node:net';
import { LiveSlots } from '../lib/live-slots.js';

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
  const live = new LiveSlots<Socket>();
  let closedReceived = 0;
  let closedSent = 0;
  // One listener for every socket (the emitter is `this`), not a closure per connection: with
  // `Connection: close` clients this runs once per request.
  function onClose(this: Tracked): void {
    const slot = this[SLOT];
    if (slot === undefined) return;
    this[SLOT] = undefined;
    live.delete(slot);
    closedReceived += this.bytesRead;
    closedSent += this.bytesWritten;
  }
  const onConnection = (socket: Tracked) => {
    if ((socket as Socket & { encrypted?: boolean }).encrypted === true) return;
    socket[SLOT] = live.add(socket);
    socket.on('close', onClose);
  };
  for (const server of servers) server.on('connection', onConnection);
  return () => {
    let received = closedReceived;
    let sent = closedSent;
    for (const s of live) {
      received += s.bytesRead;
      sent += s.bytesWritten;
    }
    return { open: live.size, received, sent };
  };
}
