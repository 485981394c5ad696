/**
 * What the data path needs from sticky sessions (src/sticky adapts its resolver to this in app/):
 * given the exchange (its service, headers, balancer pick), the upstream to use and the fence to send.
 * The HTTP path (forward.ts) and the Upgrade path (upgrade.ts) both resolve pins through it.
 */
import type { IncomingMessage } from 'node:http';
import type { ServiceRoute } from './routing.js';

/** The part of a request sticky resolution reads: its service, its headers, the balancer's pick. */
export interface StickyRequest {
  readonly svc: ServiceRoute;
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
