/**
 * Server-Sent Events for /api/v1/events (the dashboard's live feed).
 *
 * A slow or stalled client must never grow our memory: each client's socket buffer is checked on
 * every event, and a client whose unsent bytes pass MAX_BUFFERED_BYTES is dropped (it reconnects and
 * reloads state from /api/v1/status, as EventSource does on its own).
 */
import type { ServerResponse } from 'node:http';
import type { BusEvent, EventBus } from '../observability/events.js';

/** 256 KiB ≈ a thousand events: far more than a live browser ever lags, small enough per client. */
export const MAX_BUFFERED_BYTES = 256 * 1024;
/** Comment line every 15 s keeps proxies and browsers from timing the stream out. */
const HEARTBEAT_MS = 15_000;

export class EventStreams {
  private readonly clients = new Set<ServerResponse>();
  dropped = 0;
  private readonly unsubscribe: () => void;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(bus: EventBus) {
    this.unsubscribe = bus.subscribe((ev) => this.broadcast(ev));
    this.heartbeat = setInterval(() => this.writeAll(': keep-alive\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  attach(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n: connected\n\n');
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
  }

  private broadcast(ev: BusEvent): void {
    if (this.clients.size === 0) return;
    this.writeAll(`event: ${ev.type}\ndata: ${JSON.stringify({ at: ev.at, ...ev.data })}\n\n`);
  }

  private writeAll(chunk: string): void {
    for (const res of this.clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.dropped++;
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(chunk);
    }
  }

  get count(): number {
    return this.clients.size;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const res of this.clients) res.destroy();
    this.clients.clear();
  }
}
