/**
 * A slow or stalled events client never grows our memory: past the buffer bound it is dropped.
 */
import { describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { EventStreams, MAX_BUFFERED_BYTES } from '../../../src/admin/sse.js';
import { EventBus } from '../../../src/observability/events.js';

/** A response whose socket never drains (a stalled client): everything written stays buffered. */
function stalledResponse() {
  const res = {
    writableLength: 0,
    destroyed: false,
    chunks: 0,
    writeHead() {
      return res;
    },
    write(chunk: string) {
      res.writableLength += Buffer.byteLength(chunk);
      res.chunks++;
      return false;
    },
    once() {
      return res;
    },
    destroy() {
      res.destroyed = true;
    },
  };
  return res;
}

describe('event streams', () => {
  it('drops a stalled client once its unsent bytes pass the bound, and keeps serving a live one', () => {
    const bus = new EventBus();
    const streams = new EventStreams(bus);
    const stalled = stalledResponse();
    const live = { ...stalledResponse(), write(chunk: string) { live.chunks++; void chunk; return true; } };
    streams.attach(stalled as unknown as ServerResponse);
    streams.attach(live as unknown as ServerResponse);
    expect(streams.count).toBe(2);
    for (let i = 0; i < 5000 && !stalled.destroyed; i++) {
      bus.emit('health:changed', { service: 'svc', upstream: `u${i}`, from: 'healthy', to: 'unhealthy', reason: 'x'.repeat(100) });
    }
    expect(stalled.destroyed).toBe(true);
    expect(stalled.writableLength).toBeLessThanOrEqual(MAX_BUFFERED_BYTES + 1024);
    expect(streams.dropped).toBe(1);
    expect(streams.count).toBe(1);
    const before = live.chunks;
    bus.emit('config:reloaded', { generation: 2, source: 'test', restartRequired: [] });
    expect(live.chunks).toBe(before + 1);
    streams.close();
    expect(bus.subscriberCount).toBe(0);
  });
});
