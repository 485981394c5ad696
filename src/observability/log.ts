/**
 * Logging (pino). The only importer of pino. Two loggers: the operational log, and the access log
 * (one line per request; `node.accessLog`: off, JSON fields, a text template, stdout or a file).
 *
 * The access log is written in batches of 64 KiB (line-batches.ts), because a write(2) per request
 * costs more than the rest of the logging (measured in the bench); `flushAccessLogs()` and
 * `flushLogs()` run on shutdown so no line is lost.
 */
import { constants, fstatSync, openSync } from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { DEFAULT_JSON_FIELDS, DEFAULT_TEMPLATE, type AccessLogSettings } from '../config/access-log.js';
import { jsonLine, prettyLine, textLine, type LineFn } from './access-log-format.js';
import { LineBatches, PIPE_BUF } from './line-batches.js';

export type { Logger };

const destinations: Array<ReturnType<typeof pino.destination>> = [];

/** The operational log: asynchronous, but written as soon as the event loop turns (no batching). */
export function createLogger(opts: { level: LevelWithSilent; nodeId: string; pretty?: boolean }): Logger {
  if (opts.pretty) {
    // One line per entry, colour only on a terminal (piped into a file or `less`, no escape codes).
    const options = { colorize: process.stdout.isTTY === true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,node' };
    return pino({ level: opts.level, base: { node: opts.nodeId }, transport: { target: 'pino-pretty', options } });
  }
  // Writes of whole lines, at most PIPE_BUF each: stdout is often a pipe shared with the access log and
  // other workers, and the kernel may interleave a longer write with theirs (line-batches.ts).
  const dest = pino.destination({ dest: 1, sync: false, maxWrite: PIPE_BUF });
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

/** Longest a line waits for company: at low traffic `tail -f` still shows it (NGINX's access_log flush=). */
const ACCESS_LOG_MAX_DELAY_MS = 1000;

/**
 * The access log: one line per request in the configured format (access-log-format.ts builds it),
 * gathered into 64 KiB batches (line-batches.ts) written to stdout or a file. JSON lines keep the
 * shape pino writes (level, time, node, kind, then the chosen fields); only client-controlled
 * strings go through JSON.stringify. A SIGKILL loses at most the open batch (64 KiB, or
 * ACCESS_LOG_MAX_DELAY_MS of lines); SIGTERM loses nothing (flushAccessLogs).
 *
 * A `file` target is opened synchronously here, so a path that cannot be opened fails the start with
 * its error (the access log is restart-only: a reload keeps the running target). A write error
 * (a full disk, stdout closed), and lines dropped behind a target that does not keep up, are
 * reported as process warnings on stderr.
 */
export function createAccessLog(opts: { nodeId: string; settings?: AccessLogSettings; pretty?: boolean; colour?: boolean }): AccessLog {
  const settings = opts.settings ?? { enabled: true, format: 'json', fields: DEFAULT_JSON_FIELDS, template: DEFAULT_TEMPLATE, file: undefined };
  let line: LineFn;
  try {
    line = opts.pretty ? prettyLine(opts.colour ?? false) : settings.format === 'text' ? textLine(settings.template) : jsonLine(opts.nodeId, settings.fields);
  } catch (err) {
    // The line function is generated code (access-log-format.ts): node's --disallow-code-generation-from-strings refuses it.
    if (err instanceof EvalError) throw new Error(`node.accessLog: the line format is compiled at start, which this node refuses (${err.message}); run without --disallow-code-generation-from-strings or with accessLog: false`);
    throw err;
  }
  let fd = 1;
  if (settings.file !== undefined) {
    try {
      fd = openSync(settings.file, 'a', 0o640);
    } catch (err) {
      throw new Error(`node.accessLog.file: cannot open ${settings.file}: ${(err as Error).message}`);
    }
  }
  const target = settings.file ?? 'stdout';
  const report = (problem: string) => process.emitWarning(`access log to ${target}: ${problem}`, { code: 'MESHGATE_ACCESS_LOG' });
  const out = writeTarget(fd);
  const batches = new LineBatches(out.fd, ACCESS_LOG_MAX_DELAY_MS, report, undefined, out.mode);
  accessBatches.push(batches);
  return {
    write(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx) {
      batches.push(line(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx));
    },
  };
}

const accessBatches: LineBatches[] = [];

/**
 * How to write the access log to `fd`. A pipe or socket is shared: the operational log, the other
 * workers and whoever else holds the container's stdout write to it too, and the kernel interleaves a
 * write longer than PIPE_BUF with theirs (seen: a warning line cut in two by another worker's batch).
 * So writes there are pieces of at most PIPE_BUF ending at a line end. A pipe is reopened through
 * /proc with O_NONBLOCK (its own file description: fd 1's flags stay as they are), so those pieces
 * are written synchronously, all or nothing, without blocking. A regular file takes each write whole.
 */
function writeTarget(fd: number): { fd: number; mode: 'file' | 'shared-stream' | 'non-blocking-pipe' } {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return { fd, mode: 'file' };
  }
  if (st.isFIFO()) {
    try {
      return { fd: openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK), mode: 'non-blocking-pipe' };
    } catch {
      return { fd, mode: 'shared-stream' };
    }
  }
  return { fd, mode: st.isSocket() ? 'shared-stream' : 'file' };
}

/** Writes every access-log line made so far, in order; resolves when written or after `maxMs`. */
export async function flushAccessLogs(maxMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, maxMs)));
  await Promise.race([Promise.all(accessBatches.map((b) => b.flush())), late]);
  clearTimeout(timer);
}

/** Flushes buffered log lines; call before exit. */
export function flushLogs(): void {
  for (const b of accessBatches) b.flushSync();
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // Nothing to do: stdout is gone (e.g. the parent closed the pipe).
    }
  }
}
