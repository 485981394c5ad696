/**
 * The bounds an HTTP/2 client connection is held to (docs/config.md "HTTP/2 limits"), and the rapid-reset
 * counter. Pure: the caller passes the time.
 *
 * Attack classes and what answers each (anchors' defaults in the comments):
 * - too many streams at once: SETTINGS_MAX_CONCURRENT_STREAMS; a stream past it is refused (REFUSED_STREAM),
 *   and a connection that keeps opening refused streams is closed (maxSessionRejectedStreams);
 * - rapid reset (CVE-2023-44487): streams the client resets before their response headers are counted per
 *   connection in a window; past the limit the connection is closed with GOAWAY ENHANCE_YOUR_CALM;
 * - CONTINUATION flood (CVE-2024-27316 family) and oversized / HPACK-amplified header blocks: the decoded
 *   header list is capped at `node.maxHeaderSize` (SETTINGS_MAX_HEADER_LIST_SIZE, enforced on what HPACK
 *   *decodes*, so a tiny block that expands is cut as it expands) and at `node.maxHeadersCount` lines;
 *   nghttp2 refuses more than 8 CONTINUATION frames per header block; invalid frames close the
 *   connection past maxSessionInvalidFrames; HPACK's dynamic table stays at 4 KiB (the RFC default);
 * - window starvation (a client that never opens its flow-control window): a stream whose response has
 *   bytes waiting and none sent for `node.bodyIdleTimeout` is reset (h2-front.ts); an idle connection is
 *   closed after `node.keepAliveTimeout`; all sessions together are bounded by maxSessionMemory each.
 */

export const H2_LIMITS = {
  /** Envoy's edge-proxy recommendation (100; its default is 2^31-1); nginx http2_max_concurrent_streams 128. */
  maxConcurrentStreams: 100,
  /** Streams reset by the client before their response headers, per connection per window, before
   *  GOAWAY: two full sets of concurrent streams. Envoy closes a connection once more than half of its
   *  streams were reset prematurely (checked from 500 streams on); nghttp2's own limit is a burst of
   *  1,000 then 33 per second. A browser cancelling a page's requests stays far below. */
  maxResetsPerWindow: 200,
  resetWindowMs: 10_000,
  /** Node's defaults (nghttp2's semantics): invalid frames and refused streams tolerated per connection. */
  maxSessionInvalidFrames: 1000,
  maxSessionRejectedStreams: 100,
  /** MiB of nghttp2 state (header blocks, queued frames) per connection; Node's default. */
  maxSessionMemoryMiB: 10,
  /** Pseudo-headers a request carries (:method :scheme :authority :path), allowed on top of maxHeadersCount. */
  pseudoHeaders: 4,
} as const;

/** Counts a connection's premature resets in fixed windows; `exceeded` once more than `limit` fell in one. */
export class ResetCounter {
  private windowStart = -Infinity;
  private count = 0;

  constructor(private readonly limit: number, private readonly windowMs: number) {}

  /** One more reset at `now` (ms); true when this one is past the limit. */
  record(now: number): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.count = 0;
    }
    this.count++;
    return this.count > this.limit;
  }
}
