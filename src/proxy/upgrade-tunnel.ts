/**
 * An upgraded connection: bytes relayed both ways between the client's socket and the upstream's,
 * with backpressure (stream pipe), until either side goes away or the tunnel is idle too long.
 *
 * Invariants:
 * - Both sockets have an 'error' listener for their whole life; an error on either ends the tunnel.
 * - A side that ends cleanly (FIN) has its end passed on (the pipe ends the other side, which is
 *   closed once its pending bytes are flushed), so a WebSocket close frame sent just before the FIN
 *   still arrives; a side that errors or is reset has the other side destroyed at once.
 * - `onEnd` is called exactly once, with the first cause.
 * - The idle timer is the client socket's own: it is reset by bytes in either direction, because
 *   every byte of the tunnel is either read from or written to that socket.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export type TunnelEnd = 'client-closed' | 'upstream-closed' | 'client-error' | 'upstream-error' | 'idle-timeout' | 'shutdown';

export class Tunnel {
  private ended = false;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Socket,
    idleTimeoutMs: number,
    private readonly onEnd: (why: TunnelEnd) => void,
  ) {
    client.on('error', () => this.end('client-error'));
    upstream.on('error', () => this.end('upstream-error'));
    client.once('close', () => this.sideClosed(client, upstream, 'client-closed'));
    upstream.once('close', () => this.sideClosed(upstream, client, 'upstream-closed'));
    if (idleTimeoutMs > 0 && 'setTimeout' in client) {
      (client as Socket).setTimeout(idleTimeoutMs, () => this.end('idle-timeout'));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Ends the tunnel now (shutdown, idle, an error): both sockets destroyed. */
  end(why: TunnelEnd): void {
    this.client.destroy();
    this.upstream.destroy();
    this.report(why);
  }

  private sideClosed(side: Duplex, other: Duplex, why: TunnelEnd): void {
    // A clean close was preceded by 'end', which the pipe passed on as other.end(); let those bytes
    // flush, then close. Anything else (reset, error, destroy) cuts the other side at once.
    if (side.readableEnded && !other.destroyed) {
      if (other.writableFinished) other.destroy();
      else {
        other.end();
        other.once('finish', () => other.destroy());
      }
    } else other.destroy();
    this.report(why);
  }

  private report(why: TunnelEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(why);
  }
}
