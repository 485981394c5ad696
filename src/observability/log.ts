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

let destination: ReturnType<typeof pino.destination> | undefined;

export function createLogger(opts: { level: LevelWithSilent; nodeId: string; pretty?: boolean }): Logger {
  if (opts.pretty) {
    return pino({ level: opts.level, base: { node: opts.nodeId }, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  destination ??= pino.destination({ dest: 1, sync: false, minLength: 4096 });
  return pino({ level: opts.level, base: { node: opts.nodeId } }, destination);
}

/** Flushes buffered log lines; call before exit. */
export function flushLogs(): void {
  try {
    destination?.flushSync();
  } catch {
    // Nothing to do: stdout is gone (e.g. the parent closed the pipe).
  }
}

export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
