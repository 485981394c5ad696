/**
 * Logging (pino). The only importer of pino. Two loggers: the operational log, and the access log
 * (one line per request) which can be switched off with `node.accessLog: false`.
 *
 * The access log writes through an asynchronous sonic-boom destination in batches of 64 KiB,
 * because a synchronous write(2) per request costs more than the rest of the logging (measured in the
 * bench); `flushLogs()` runs on shutdown so no line is lost.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const destinations: Array<ReturnType<typeof pino.destination>> = [];
/** Lines held before they reach a destination; handed over by flushLogs() before the destinations flush. */
const pendingFlushers: Array<() => void> = [];

/** The operational log: asynchronous, but written as soon as the event loop turns (no batching). */
export function createLogger(opts: { level: LevelWithSilent; nodeId: string; pretty?: boolean }): Logger {
  if (opts.pretty) {
    return pino({ level: opts.level, base: { node: opts.nodeId }, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  const dest = pino.destination({ dest: 1, sync: false });
  destinations.push(dest);
  return pino({ level: opts.level, base: { node: opts.nodeId } }, dest);
}

/** One access-log line per request (positional arguments: no record object per request). `ctx` is
 *  the request's own state object (no allocation), read only by the fields a format asks for. */
export interface AccessLog {
  write(method: string, path: string, status: number, service: string, upstream: string | undefined, durationMs: number, requestId: string, attempts: number, reason: string, ctx?: AccessContext): void;
}

/** What a finished request can tell the access log beyond the positional fields (all optional). */
export interface AccessContext {
  readonly req?: { readonly headers: Readonly<Record<string, string | string[] | undefined>>; readonly httpVersion?: string; readonly socket?: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined } };
  readonly clientIp?: string;
  /** Response body bytes written to the client. */
  readonly bytesSent?: number;
  /** Request body bytes read from the client. */
  readonly bytesReceived?: number;
  /** The upstream's URL (host:port) of the last attempt. */
  readonly upstreamAddress?: string | undefined;
  /** ms from request start to the upstream's response headers (last attempt). */
  readonly upstreamHeadersMs?: number | undefined;
}

/**
 * Bytes of access-log lines gathered before they are written (NGINX's `access_log … buffer=64k`).
 * Against 4 KiB: 1.05 vs 1.65 µs of CPU per line, writes included (one write per ~350 lines, not ~20).
 * A SIGKILL loses at most this much, or ACCESS_LOG_MAX_DELAY_MS of lines; SIGTERM loses nothing.
 */
const ACCESS_LOG_MIN_WRITE = 65536;
/** Longest a line waits for company: at low traffic `tail -f` still shows it (NGINX's access_log flush=). */
const ACCESS_LOG_MAX_DELAY_MS = 1000;

/**
 * The access log: the same JSON shape pino writes (level, time, node, kind, then the fields), built
 * by hand and batched into 64 KiB writes. Building the line directly costs a fraction of a generic
 * logger call, and the access log runs once per request (its cost is in the bench table). Only
 * client-controlled strings go through JSON.stringify; the rest are known-safe.
 *
 * The batching is done here, not by sonic-boom's minLength: sonic-boom measures its whole pending
 * buffer on every write() (Buffer.byteLength of a string grown by +=, which flattens it), so a
 * write() per line cost a copy of up to 16 KiB per request. Lines still leave in writes of at least
 * 64 KiB (those handed over while a write is in flight go out together when it completes), and at
 * most 64 KiB of lines wait for more, and for at most ACCESS_LOG_MAX_DELAY_MS.
 */
export function createAccessLog(opts: { nodeId: string; pretty?: Logger }): AccessLog {
  if (opts.pretty) {
    const child = opts.pretty.child({ kind: 'access' });
    return {
      write: (method, path, status, service, upstream, durationMs, requestId, attempts, reason) =>
        child.info({ method, path, status, service, upstream, durationMs, requestId, attempts, reason: reason || undefined }),
    };
  }
  // minLength 0: every hand-over below is already a full batch.
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  destinations.push(dest);
  let pending = '';
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const handOver = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pendingBytes === 0) return;
    const lines = pending;
    pending = '';
    pendingBytes = 0;
    dest.write(lines);
  };
  pendingFlushers.push(handOver);
  const prefix = `{"level":30,"time":`;
  const nodePart = `,"node":${JSON.stringify(opts.nodeId)},"kind":"access","method":`;
  return {
    write(method, path, status, service, upstream, durationMs, requestId, attempts, reason) {
      const line =
        `${prefix}${Date.now()}${nodePart}${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status},"service":${JSON.stringify(service)}` +
        `${upstream === undefined ? '' : `,"upstream":${JSON.stringify(upstream)}`},"durationMs":${Math.round(durationMs * 1000) / 1000},"requestId":${JSON.stringify(requestId)},"attempts":${attempts}` +
        `${reason ? `,"reason":${JSON.stringify(reason)}` : ''}}\n`;
      pending += line;
      pendingBytes += Buffer.byteLength(line);
      if (pendingBytes >= ACCESS_LOG_MIN_WRITE) handOver();
      else if (!timer) timer = setTimeout(handOver, ACCESS_LOG_MAX_DELAY_MS).unref();
    },
  };
}

/** Flushes buffered log lines; call before exit. */
export function flushLogs(): void {
  for (const f of pendingFlushers) f();
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // Nothing to do: stdout is gone (e.g. the parent closed the pipe).
    }
  }
}

export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
