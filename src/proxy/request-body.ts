/**
 * The client's request body, read by exactly one consumer: this object. undici pulls it as an async
 * iterable when (and only when) an upstream connection is ready for it; nothing else listens to the
 * request stream.
 *
 * Why one consumer: a second 'data' listener (a byte counter) attached before undici puts the stream in
 * flowing mode, so chunks that arrived with the head (or before the upstream connected) went to the
 * counter alone and undici saw a shorter or empty body — the truncation of issue 12.
 *
 * What it enforces while it reads, reporting to its owner instead of throwing into undici's writer:
 * - the size limit (`node.maxBodySize`) for bodies without Content-Length → `onTooLarge`;
 * - the body idle timeout (`node.bodyIdleTimeout`): time spent waiting for the *client* to send the next
 *   bytes — not time waiting for the upstream to drain (that is backpressure, not the client's fault)
 *   → `onIdleTimeout`.
 * `started` says whether any byte has left the client's stream and is not held whole here: until then
 * a failed attempt may be retried on another upstream with the body intact.
 *
 * Request buffering (`node.requestBufferSize`, NGINX proxy_request_buffering / client_body_buffer_size):
 * `prebuffer(limit, ready)` reads a small body into memory *before* an upstream is picked, so a client
 * that trickles it never holds an upstream connection. `ready` is called once, when the body ended
 * (`whole` is then the complete body: a Buffer undici can send, and send again on a retry), grew past
 * `limit` (what was read is queued as the first chunk and the rest streams as usual), or the client's
 * stream failed (the first read reports it). The same 'data' listener reads in both modes; the size
 * limit and the idle timeout apply while buffering too (buffering is waiting on the client).
 *
 * The chunk that completes a Content-Length is held until the client's stream has ended: an upstream
 * that has all the declared bytes takes the request as complete, and an HTTP/2 client can still send
 * more than it declared, a malformed request nghttp2 answers with a stream error only then (RFC 9113
 * §8.1.1). Over HTTP/1.1 the end comes with that chunk (llhttp stops at the length), so nothing waits.
 */
import type { IncomingMessage } from 'node:http';

export interface BodyOwner {
  onTooLarge(): void;
  onIdleTimeout(): void;
}

/** The error a pending read ends with when the exchange gives the body up (abort, local answer). */
export const BODY_DETACHED = Object.assign(new Error('request body detached'), { code: 'MG_BODY_DETACHED' });

export class RequestBody implements AsyncIterable<Buffer>, AsyncIterator<Buffer> {
  bytes = 0;
  /** The complete body, when prebuffer read all of it. */
  whole: Buffer | undefined;
  /** While prebuffering: the chunks so far, the size past which streaming takes over, and its callback. */
  private buffered: Buffer[] | undefined;
  private bufferLimit = 0;
  private ready: (() => void) | undefined;
  private queued: Buffer | undefined;
  /** The body's last chunk by its Content-Length, until the stream ends (see the file comment). */
  private held: Buffer | undefined;
  private readonly declared: number;
  private ended = false;
  private failed: Error | undefined;
  /** The error the client's own stream ended with (reset mid-body, bad chunk framing), if any. */
  failedWith: Error | undefined;
  private waiting: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: Error) => void } | undefined;
  private listening = false;
  private timer: NodeJS.Timeout | undefined;
  private lastDataMs = 0;

  constructor(
    private readonly req: IncomingMessage,
    private readonly owner: BodyOwner,
    /** Bytes allowed; Infinity when a Content-Length under the limit was already checked. */
    private readonly maxBytes: number,
    private readonly idleMs: number,
  ) {
    const cl = req.headers['content-length'];
    this.declared = cl === undefined ? -1 : Number(cl);
  }

  /** Some of the body has left the client's stream and is not held whole (a retry could not resend it). */
  get started(): boolean {
    return this.listening && this.whole === undefined;
  }

  /** Reads up to `limit` bytes before any upstream is involved; `ready` once (see the file comment). */
  prebuffer(limit: number, ready: () => void): void {
    this.buffered = [];
    this.bufferLimit = limit;
    this.ready = ready;
    this.lastDataMs = performance.now();
    this.listen();
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    this.listen();
    return this;
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.failed) return Promise.reject(this.failed);
    const chunk = this.queued;
    if (chunk !== undefined) {
      this.queued = undefined;
      this.req.resume();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      // Waiting on the client from now: the idle clock starts (or restarts) here.
      this.lastDataMs = performance.now();
    });
  }

  /** undici stopped iterating (its attempt failed): keep the stream paused for a retry or a local answer. */
  return(): Promise<IteratorResult<Buffer>> {
    this.req.pause();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** The exchange is done with the body: fail a pending read, stop the timer, discard what is left. */
  detach(discard: boolean): void {
    this.clearTimer();
    this.failed ??= BODY_DETACHED;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failed);
    if (this.listening) {
      this.req.off('data', this.onData);
      this.req.off('end', this.onEnd);
      this.req.off('error', this.onError);
    }
    this.queued = undefined;
    this.held = undefined;
    this.buffered = undefined;
    this.ready = undefined;
    // Reading the rest and dropping it keeps the connection usable (Node's own _dump does the same).
    if (discard) this.req.resume();
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.req.on('data', this.onData);
    this.req.on('end', this.onEnd);
    this.req.on('error', this.onError);
    if (this.idleMs > 0) this.timer = setTimeout(this.onTimer, this.idleMs);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    this.lastDataMs = performance.now();
    if (this.bytes > this.maxBytes) {
      this.detach(false);
      this.owner.onTooLarge();
      return;
    }
    const buffered = this.buffered;
    if (buffered !== undefined) {
      buffered.push(chunk);
      if (this.bytes <= this.bufferLimit) return;
      // Past the buffer size: what was read becomes the first chunk, the rest streams.
      this.queued = buffered.length === 1 ? chunk : Buffer.concat(buffered, this.bytes);
      this.req.pause();
      return this.endBuffering();
    }
    if (this.bytes === this.declared) {
      this.held = chunk;
      return;
    }
    this.deliver(chunk);
  };

  private deliver(chunk: Buffer): void {
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w.resolve({ value: chunk, done: false });
      return;
    }
    // undici has not asked yet (its socket is draining): hold this chunk and stop reading.
    this.queued = chunk;
    this.req.pause();
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    this.clearTimer();
    const buffered = this.buffered;
    if (buffered !== undefined) {
      this.whole = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered, this.bytes);
      return this.endBuffering();
    }
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.deliver(held);
    const w = this.waiting;
    if (w !== undefined && this.queued === undefined) {
      this.waiting = undefined;
      w.resolve({ value: undefined, done: true });
    }
  };

  private readonly onError = (err: Error): void => {
    this.held = undefined;
    this.failed = err;
    this.failedWith = err;
    this.clearTimer();
    if (this.buffered !== undefined) {
      // The (partial) body is dropped; the first read rejects with `err`, as when streaming.
      this.buffered = undefined;
      return this.endBuffering();
    }
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  };

  /** Fires at most every idleMs; only time spent waiting on the client counts. */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.ended || this.failed) return;
    const idle = this.waiting === undefined && this.buffered === undefined ? 0 : performance.now() - this.lastDataMs;
    if (idle >= this.idleMs) {
      this.detach(false);
      this.owner.onIdleTimeout();
      return;
    }
    this.timer = setTimeout(this.onTimer, this.idleMs - idle);
  };

  private endBuffering(): void {
    this.buffered = undefined;
    const ready = this.ready;
    this.ready = undefined;
    ready?.();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
