/**
 * What the data path needs from sticky sessions (src/sticky adapts its resolver to this in app/):
 * given the exchange (its service, headers, balancer pick), the upstream to use and the fence to send.
 */
import type { Exchange } from './forward.js';

export type StickyDecision =
  | { kind: 'pinned'; upstream: string; fence: number; setCookie?: string | undefined; sessionHeader?: readonly [string, string] | undefined }
  | { kind: 'reject' }
  | { kind: 'none' };

export interface StickyView {
  resolve(ex: Exchange): Promise<StickyDecision>;
}
