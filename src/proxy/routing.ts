/**
 * What routing reads from outside the proxy: the health module's view (eligibility, passive results)
 * and a service's live members (config ∪ committed cluster membership). The snapshot that combines them
 * is routing-snapshot.ts.
 */
import type { ClusterMembership, UpstreamSpec } from '../model/index.js';
import type { ServiceConfig } from '../config/schema.js';

/** What the passive health check learns from one call: the outlier detector's own type (one definition). */
export type { CallResult } from '../health/index.js';
import type { CallResult } from '../health/index.js';

export interface Eligibility {
  readonly pickable: readonly UpstreamSpec[];
  usable(id: string): boolean;
  readonly panic: boolean;
}

/** The health module as the data path sees it (health/HealthMonitor satisfies it). */
export interface HealthView {
  eligibility(service: string): Eligibility | undefined;
  recordResult(service: string, upstream: string, result: CallResult): void;
}

export type HashSource =
  | { kind: 'header'; name: string }
  | { kind: 'cookie'; name: string }
  | { kind: 'query'; name: string }
  | { kind: 'path' }
  | { kind: 'client-ip' };

export function parseHashOn(s: string): HashSource {
  if (s === 'path') return { kind: 'path' };
  if (s === 'client-ip') return { kind: 'client-ip' };
  const colon = s.indexOf(':');
  const kind = s.slice(0, colon) as 'header' | 'cookie' | 'query';
  const name = s.slice(colon + 1);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** Live members of a service: static upstreams ∪ cluster entries; a cluster entry overrides the same id. */
export function liveMembers(svcName: string, svc: ServiceConfig, cluster: ClusterMembership | undefined): UpstreamSpec[] {
  const byId = new Map<string, UpstreamSpec>();
  for (const u of svc.upstreams) byId.set(u.id, { id: u.id, url: u.url, weight: u.weight, state: u.state, source: 'file' });
  const reg = cluster?.get(svcName);
  if (reg) for (const [id, u] of reg) byId.set(id, { id, url: u.url, weight: u.weight, state: u.state, source: 'cluster' });
  return [...byId.values()];
}
