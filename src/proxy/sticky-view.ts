/**
 * What the data path needs from sticky sessions (src/sticky adapts its resolver to this in app/; a
 * sticky service's ServiceSnapshot carries its handle):
 * given the exchange (its service, headers, balancer pick), the upstream to use and the fence to send.
 * The HTTP path (forward.ts) and the Upgrade path (upgrade.ts) both resolve pins through it.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../observability/log.js';
import type { ServiceSnapshot } from './routing-snapshot.js';

/** The part of a request sticky resolution reads: its service (in the snapshot the request started with), its headers, the balancer's pick. */
export interface StickyRequest {
  readonly svc: ServiceSnapshot;
  readonly req: IncomingMessage;
  pick(): string | undefined;
}

export type StickyDecision =
  | { kind: 'pinned'; upstream: string; fence: number; setCookie?: string | undefined; sessionHeader?: readonly [string, string] | undefined }
  | { kind: 'reject' }
  | { kind: 'none' };

export interface StickyView {
  resolve(ex: StickyRequest): Promise<StickyDecision>;
}

/** A pinned decision as a request path keeps it: the upstream, the fence it forwards, what it sets on the answer. */
export interface Pin {
  readonly upstream: string;
  readonly fence: number;
  readonly setCookie: string | undefined;
  readonly sessionHeader: readonly [string, string] | undefined;
}

/**
 * Resolves the request's pin, then calls `pinned`, or `refuse` with the local answer (503: store down
 * with `onStoreDown: reject`, nothing eligible, or a resolver error) — neither when `active()` says the
 * request was answered or abandoned meanwhile. The one sticky step of both request paths.
 */
export function resolvePin(view: StickyView, ex: StickyRequest, log: Logger, active: () => boolean, pinned: (p: Pin) => void, refuse: (status: 503, reason: string, text: string) => void): void {
  view.resolve(ex).then(
    (r) => {
      if (!active()) return;
      if (r.kind === 'reject') return refuse(503, 'sticky-store-down', 'session store unavailable');
      if (r.kind === 'none') return refuse(503, 'no-healthy-upstream', 'no healthy upstream');
      pinned({ upstream: r.upstream, fence: r.fence, setCookie: r.setCookie, sessionHeader: r.sessionHeader });
    },
    (err: Error) => {
      log.error({ err, service: ex.svc.name }, 'sticky resolve failed');
      if (active()) refuse(503, 'sticky-error', 'session routing failed');
    },
  );
}
