/**
 * Access-log lines gathered into 64 KiB buffers outside V8's heap and written to a file descriptor
 * with fs.write (NGINX `access_log … buffer=64k flush=1s`).
 *
 * Each line is encoded into the open batch as it is made (one `Buffer.write`), so the lines of a batch
 * are never held as strings: a batch kept as a growing string (as sonic-boom keeps it) survives
 * young-generation collections, is flattened, and is encoded again by the write, which cost 6,300
 * instructions per request in callgrind (186k → 180k per logged request). Two buffers are reused,
 * so a steady log allocates nothing per batch.
 *
 * To a file, one write is in flight at a time; batches sealed meanwhile leave together in one writev
 * when it completes, in order. To a pipe or socket that others write to as well (`mode`), writes are
 * pieces of at most PIPE_BUF bytes ending at a line end, and to a pipe they are made synchronously on
 * a non-blocking descriptor (log.ts opens it). A partial write continues with the rest; EAGAIN is
 * retried after RETRY_MS; any other error drops what was being written and is reported once per
 * error code (the log goes on with the next batch: a full disk may free up).
 *
 * Bounded: while more than `maxWaitingBytes` wait behind a target that does not keep up (a stalled
 * pipe reader), a newly full batch is dropped instead of queued, and its lines counted (HAProxy's log
 * ring drops the same way; NGINX would block its worker instead). Both the start and the end of such
 * an episode are reported, the end with the number of lines lost.
 */
import { write, writev, writeSync } from 'node:fs';

/** Bytes of one batch. */
export const BATCH_BYTES = 65536;
/** How long to wait before writing again after EAGAIN. */
const RETRY_MS = 10;
/** Spare batch buffers kept for reuse (the open one, one being written, one waiting). */
const SPARES = 2;
/** Writes up to this size to a pipe are never interleaved with other writers' (POSIX PIPE_BUF, Linux). */
export const PIPE_BUF = 4096;
/** Default bound on bytes waiting to be written (512 batches). */
export const MAX_WAITING_BYTES = 32 * 1024 * 1024;
/** How long a synchronous flush (an exit) keeps retrying a target that answers EAGAIN. */
const SYNC_RETRY_MS = 1000;

export class LineBatches {
  private open = Buffer.allocUnsafeSlow(BATCH_BYTES);
  private used = 0;
  private openLines = 0;
  /** Sealed batches not yet written, oldest first (the one in flight is not here), and their bytes. */
  private readonly sealed: Buffer[] = [];
  private sealedBytes = 0;
  /** Lines dropped in the current episode of a target not keeping up. */
  private dropped = 0;
  private readonly spares: Buffer[] = [];
  private inFlight: Buffer[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly reported = new Set<string>();
  private idle: Array<() => void> = [];

  /**
   * `maxDelayMs`: longest a line waits in an open batch (at low traffic `tail -f` still shows it).
   * `report`: a problem worth telling the operator (a write error, lines dropped), one sentence.
   * `mode`: `file` writes whole batches; for a pipe or socket shared with other writers (stdout of
   * several workers, the operational log), `shared-stream` makes each write at most PIPE_BUF bytes
   * ending at a line end, so the kernel never puts another writer's bytes inside a line, and
   * `non-blocking-pipe` (`fd` opened O_NONBLOCK on a pipe) writes those pieces synchronously.
   */
  constructor(
    private readonly fd: number,
    private readonly maxDelayMs: number,
    private readonly report: (problem: string) => void,
    private readonly maxWaitingBytes = MAX_WAITING_BYTES,
    private readonly mode: 'file' | 'shared-stream' | 'non-blocking-pipe' = 'file',
  ) {}

  /** Pieces of at most this many bytes, cut at line ends (a shared stream's writes must not interleave). */
  private get atomicBytes(): number | undefined {
    return this.mode === 'file' ? undefined : PIPE_BUF;
  }

  push(line: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8, so a line of n units always fits in 3n bytes:
    // write() never cuts one short.
    if (BATCH_BYTES - this.used < line.length * 3) {
      this.seal();
      if (line.length * 3 > BATCH_BYTES) {
        this.enqueue(Buffer.from(line, 'utf8'), 1);
        this.startWrite();
        return;
      }
    }
    this.used += this.open.write(line, this.used);
    this.openLines++;
    this.timer ??= setTimeout(this.onTimer, this.maxDelayMs).unref();
  }

  /** Resolves once every line pushed so far has been written (or dropped by a write error). */
  flush(): Promise<void> {
    this.seal();
    if (this.inFlight === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Writes the open and sealed batches synchronously (for an exit that cannot wait). A write in
   * flight at that moment finishes on its own and may land after them; `flush()` keeps the order.
   */
  flushSync(): void {
    this.seal(false);
    const giveUpAt = Date.now() + SYNC_RETRY_MS;
    while (this.sealed.length > 0) {
      for (const b of this.nextWrite()) {
        let off = 0;
        while (off < b.length) {
          try {
            off += writeSync(this.fd, b, off, b.length - off);
          } catch (err) {
            const e = err as NodeJS.ErrnoException;
            if (e.code === 'EAGAIN' && Date.now() < giveUpAt) {
              Atomics.wait(SLEEP, 0, 0, RETRY_MS);
              continue;
            }
            this.writeFailed(e);
            break;
          }
        }
      }
    }
    this.sealedBytes = 0;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.seal();
  };

  /** Closes the open batch; `start`: begin writing it unless a write is in flight. */
  private seal(start = true): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.used === 0) return;
    if (this.enqueue(this.open.subarray(0, this.used), this.openLines)) this.open = this.spares.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.used = 0;
    this.openLines = 0;
    if (start) this.startWrite();
  }

  /** Queues a sealed batch of `lines` lines, or drops it (false) while too much is waiting. */
  private enqueue(batch: Buffer, lines: number): boolean {
    if (this.sealedBytes + batch.length > this.maxWaitingBytes) {
      if (this.dropped === 0) this.report(`the target is not keeping up (${Math.round(this.sealedBytes / 2 ** 20)} MiB wait to be written): new lines are dropped until it catches up`);
      this.dropped += lines;
      return false;
    }
    this.sealed.push(batch);
    this.sealedBytes += batch.length;
    return true;
  }

  private startWrite(): void {
    if (this.inFlight !== undefined) return;
    if (this.sealed.length === 0) {
      if (this.dropped > 0) {
        this.report(`${this.dropped} lines were dropped while the target did not keep up`);
        this.dropped = 0;
      }
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    if (this.mode === 'non-blocking-pipe') return this.writeHere();
    const batch = this.nextWrite();
    this.inFlight = batch;
    if (batch.length === 1) write(this.fd, batch[0]!, 0, batch[0]!.length, null, (err, n) => this.written(batch, err, n));
    else writev(this.fd, batch, (err, n) => this.written(batch, err, n));
  }

  /**
   * A non-blocking pipe: each piece (at most PIPE_BUF, so the kernel takes all of it or none) is
   * written right here, with no thread hand-over, until the queue is empty or the pipe is full; then
   * again after RETRY_MS. (Sixteen thread-pool writes per batch cost +4 µs per request in lab rounds;
   * these synchronous pieces measured the same as whole 64 KiB thread-pool writes.)
   */
  private writeHere(): void {
    while (this.sealed.length > 0) {
      const [piece] = this.nextWrite() as [Buffer];
      let n: number;
      try {
        n = writeSync(this.fd, piece);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EAGAIN') {
          this.writeFailed(e);
          this.recycle(piece.buffer);
          continue;
        }
        n = 0;
      }
      if (n < piece.length) {
        // Full (EAGAIN), or a line longer than PIPE_BUF only partly taken: the rest waits.
        const rest = piece.subarray(n);
        this.sealed.unshift(rest);
        this.sealedBytes += rest.length;
        this.inFlight = [];
        setTimeout(() => {
          this.inFlight = undefined;
          this.startWrite();
        }, RETRY_MS);
        return;
      }
      this.recycle(piece.buffer);
    }
    this.startWrite();
  }

  private written(batch: Buffer[], err: NodeJS.ErrnoException | null, n: number): void {
    if (err?.code === 'EAGAIN') {
      // Not unref'd: a shutdown waiting in flush() must not end the process before the retry.
      setTimeout(() => this.retry(batch), RETRY_MS);
      return;
    }
    if (err) this.writeFailed(err);
    else {
      // A partial write: the unwritten rest goes first in the next write.
      const rest = unwritten(batch, n);
      if (rest.length > 0) return this.retry(rest);
    }
    this.inFlight = undefined;
    for (const b of batch) this.recycle(b.buffer);
    this.startWrite();
  }

  /**
   * What to write next, taken from the front of `sealed`: everything, or with `atomicBytes` one piece
   * of at most that many bytes that ends at a line end (a longer line goes alone).
   */
  private nextWrite(): Buffer[] {
    const limit = this.atomicBytes;
    if (limit === undefined) {
      this.sealedBytes = 0;
      return this.sealed.splice(0);
    }
    const first = this.sealed[0]!;
    let n = first.length;
    if (n > limit) {
      const cut = first.lastIndexOf(0x0a, limit - 1);
      n = cut >= 0 ? cut + 1 : first.indexOf(0x0a) + 1 || first.length;
    }
    if (n === first.length) this.sealed.shift();
    else this.sealed[0] = first.subarray(n);
    this.sealedBytes -= n;
    return [first.subarray(0, n)];
  }

  /** Keeps a written batch's buffer for reuse once no queued piece still points into it. */
  private recycle(ab: ArrayBufferLike): void {
    if (ab.byteLength !== BATCH_BYTES || this.spares.length >= SPARES) return;
    if (this.sealed.some((b) => b.buffer === ab) || this.spares.some((b) => b.buffer === ab) || this.open.buffer === ab) return;
    this.spares.push(Buffer.from(ab, 0, BATCH_BYTES));
  }

  private retry(rest: Buffer[]): void {
    this.inFlight = undefined;
    this.sealed.unshift(...rest);
    for (const b of rest) this.sealedBytes += b.length;
    this.startWrite();
  }

  private writeFailed(err: NodeJS.ErrnoException): void {
    const code = err.code ?? err.message;
    if (this.reported.has(code)) return;
    this.reported.add(code);
    this.report(`writing failed (${code}); the lines of that batch are lost`);
  }
}

/** For a short blocking sleep in flushSync (Atomics.wait on a value that never changes). */
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** The part of `batch` after its first `n` bytes. */
function unwritten(batch: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of batch) {
    if (skip >= b.length) skip -= b.length;
    else {
      out.push(skip === 0 ? b : b.subarray(skip));
      skip = 0;
    }
  }
  return out;
}
