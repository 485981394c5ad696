/**
 * The access-log call is the one place the data path reports a finished client request (status,
 * service, duration with retries and body). The client-side request metrics listen there too, so
 * the data path has one hook, whether the access log is on or off.
 */
import type { AccessContext, AccessLog } from './log.js';
import type { Metrics } from './metrics.js';

function countProtocol(metrics: Metrics, ctx: AccessContext | undefined): void {
  const req = ctx?.req;
  metrics.countProtocol(req?.httpVersion, (req?.socket as { encrypted?: unknown } | undefined)?.encrypted === true);
}

export function withRequestMetrics(metrics: Metrics, inner: AccessLog | undefined): AccessLog {
  if (inner === undefined) {
    return {
      write: (_m, _p, status, service, _u, durationMs, _r, _a, _reason, ctx) => {
        metrics.observeRequest(service, status, durationMs);
        countProtocol(metrics, ctx);
      },
    };
  }
  return {
    write(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx) {
      metrics.observeRequest(service, status, durationMs);
      countProtocol(metrics, ctx);
      inner.write(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx);
    },
  };
}
