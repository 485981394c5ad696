/**
 * Client connection and byte counts of a listener, for meshgate_downstream_* (Envoy's
 * downstream_cx_active / downstream_cx_rx_bytes_total). Counted per connection, not per request:
 * a closed socket adds its final byte counts once, and a scrape adds the live sockets' counts so far.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionCounts {
  open: number;
  received: number;
  sent: number;
}

export function trackConnections(server: Server): () => ConnectionCounts {
  const live = new Set<Socket>();
  let closedReceived = 0;
  let closedSent = 0;
  server.on('connection', (socket: Socket) => {
    live.add(socket);
    socket.once('close', () => {
      live.delete(socket);
      closedReceived += socket.bytesRead;
      closedSent += socket.bytesWritten;
    });
  });
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
