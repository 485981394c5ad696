/**
 * What changed between two membership views, as the changes a listener would have seen entry by entry.
 * The driver needs it after installing a snapshot: the routing layer is told about changes, never handed a
 * whole new view, so a snapshot must read to it like the entries it replaced.
 */
import type { MembershipChange } from './membership.js';
import type { ClusterMembership } from '../model/index.js';

/** A frozen, comparable copy of a view (the state machine's view is live: take this before a restore). */
export type FlatMembership = ReadonlyMap<string, string>;

export function membershipDiff(was: FlatMembership, after: ClusterMembership, valueOf: (service: string, upstream: string) => MembershipChange['value']): MembershipChange[] {
  const now = flattenMembership(after);
  const changes: MembershipChange[] = [];
  for (const [k, v] of now) {
    if (was.get(k) !== v) {
      const [service, upstream] = JSON.parse(k) as [string, string];
      changes.push({ service, upstream, change: 'put', value: valueOf(service, upstream) });
    }
  }
  for (const k of was.keys()) {
    if (!now.has(k)) {
      const [service, upstream] = JSON.parse(k) as [string, string];
      changes.push({ service, upstream, change: 'delete' });
    }
  }
  return changes;
}

/** One comparable string per (service, upstream), so equal upstream records compare equal. */
export function flattenMembership(m: ClusterMembership): Map<string, string> {
  const out = new Map<string, string>();
  for (const [svc, ups] of m) for (const [id, u] of ups) out.set(JSON.stringify([svc, id]), JSON.stringify(u));
  return out;
}
