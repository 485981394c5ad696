/**
 * Logging (pino). The only importer of pino. Two loggers: the operational log, and the access log
 * (one line per request; `node.accessLog`: off, JSON fields, a text template, stdout or a file).
 *
 * The access log writes through an asynchronous sonic-boom destination in batches of 64 KiB,
 * because a synchronous write(2) per request costs more than the rest of the logging (measured in the
 * bench); `flushLogs()` runs on shutdown so no line is lost.
 */
import { openSync } from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { DEFAULT_JSON_FIELDS, DEFAULT_TEMPLATE, type AccessLogSettings } from '../config/access-log.js';
import { jsonLine, prettyLine, textLine } from './access-log-format.js';

export type { Logger };

const destinations: Array<ReturnType<typeof pino.destination>> = [];
/** Lines held before they reach a destination; handed over by flushLogs() before the destinations flush. */
const pendingFlushers: Array<() => void> = [];

/** The operational log: asynchronous, but written as soon as the event loop turns (no batching). */
export function createLogger(opts: { level: LevelWithSilent; nodeId: string; pretty?: boolean }): Logger {
  if (opts.pretty) {
    // One line per entry, colour only on a terminal (piped into a file or `less`, no escape codes).
    const options = { colorize: process.stdout.isTTY === true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,node' };
    return pino({ level: opts.level, base: { node: opts.nodeId }, transport: { target: 'pino-pretty', options } });
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
 * The access log: one line per request in the configured format (access-log-format.ts builds it),
 * batched into 64 KiB writes to stdout or a file. JSON lines keep the shape pino writes (level, time,
 * node, kind, then the chosen fields); only client-controlled strings go through JSON.stringify.
 *
 * The batching is done here, not by sonic-boom's minLength: sonic-boom measures its whole pending
 * buffer on every write() (Buffer.byteLength of a string grown by +=, which flattens it), so a
 * write() per line cost a copy of up to 16 KiB per request. Lines still leave in writes of at least
 * 64 KiB (those handed over while a write is in flight go out together when it completes), and at
 * most 64 KiB of lines wait for more, and for at most ACCESS_LOG_MAX_DELAY_MS.
 *
 * A `file` target is opened synchronously here, so a path that cannot be opened fails the start with
 * its error (the access log is restart-only: a reload keeps the running target).
 */
export function createAccessLog(opts: { nodeId: string; settings?: AccessLogSettings; pretty?: boolean; colour?: boolean }): AccessLog {
  const settings = opts.settings ?? { enabled: true, format: 'json', fields: DEFAULT_JSON_FIELDS, template: DEFAULT_TEMPLATE, file: undefined };
  const line = opts.pretty ? prettyLine(opts.colour ?? false) : settings.format === 'text' ? textLine(settings.template) : jsonLine(opts.nodeId, settings.fields);
  let fd = 1;
  if (settings.file !== undefined) {
    try {
      fd = openSync(settings.file, 'a', 0o640);
    } catch (err) {
      throw new Error(`node.accessLog.file: cannot open ${settings.file}: ${(err as Error).message}`);
    }
  }
  // minLength 0: every hand-over below is already a full batch.
  const dest = pino.destination({ dest: fd, sync: false, minLength: 0 });
  destinations.push(dest);
  let pending = '';
  // Counted in string length, not bytes: Buffer.byteLength scans the line (0.08–0.15 µs of a ~1 µs
  // line), and the count only decides when a batch is full. Equal for ASCII lines, nearly all of them;
  // a line with non-ASCII characters just makes its batch a little larger than 64 KiB.
  let pendingChars = 0;
  let timer: NodeJS.Timeout | undefined;
  const handOver = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pendingChars === 0) return;
    const lines = pending;
    pending = '';
    pendingChars = 0;
    dest.write(lines);
  };
  pendingFlushers.push(handOver);
  return {
    write(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx) {
      const text = line(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx);
      pending += text;
      pendingChars += text.length;
      if (pendingChars >= ACCESS_LOG_MIN_WRITE) handOver();
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
