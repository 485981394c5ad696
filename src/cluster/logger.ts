/**
 * The logging surface the cluster modules need. pino may only be imported by observability/ (style.md
 * rule 3), so the composition root passes a pino child logger in; its `(obj, msg)` methods fit this shape.
 * Default: silent, so unit tests and tools need no logger.
 */
export interface ClusterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const noopLogger: ClusterLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
