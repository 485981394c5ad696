/**
 * Logging (pino). The only importer of pino. Two loggers: the operational log, and the access log
 * (one line per request) which can be switched off with `node.accessLog: false`.
 *
 * The access log writes through an asynchronous sonic-boom destination with a 4 KiB minimum write,
 * because a synchronous write(2) per request costs more than the rest of the logging (measured in the
 * bench); `flushLogs()` runs on shutdown so no line is lost.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const destinations: Array<ReturnType<typeof pino.destination>> = [];

/** The operational log: asynchronous, but written as soon as the event loop turns (no batching). */
export function createLogger(opts: { level: LevelWithSilent; nodeId: string; pretty?: boolean }): Logger {
  if (opts.pretty) {
    return pino({ level: opts.level, base: { node: opts.nodeId }, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  const dest = pino.destination({ dest: 1, sync: false });
  destinations.push(dest);
  return pino({ level: opts.level, base: { node: opts.nodeId } }, dest);
}

/** The access log: batched into 4 KiB writes (one line per request would be one write(2) each). */
export function createAccessLogger(opts: { nodeId: string }): Logger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  destinations.push(dest);
  return pino({ level: 'info', base: { node: opts.nodeId, kind: 'access' } }, dest);
}

/** Flushes buffered log lines; call before exit. */
export function flushLogs(): void {
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
