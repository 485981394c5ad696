/**
 * Shared domain types. Imports nothing: every other folder may depend on this one.
 */

export type UpstreamId = string;
export type ServiceName = string;

/** Operator-set state of an upstream (DESIGN.md §3). */
export type UpstreamState = 'active' | 'draining' | 'disabled';

/** Where a member of a service's live set comes from. A cluster entry overrides a file entry with the same id. */
export type UpstreamSource = 'file' | 'cluster';

/** Each peer's own view of an upstream's health; never replicated. */
export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';

/** One member of a service's live set, as the routing snapshot sees it. */
export interface UpstreamSpec {
  readonly id: UpstreamId;
  readonly url: string;
  readonly weight: number;
  readonly state: UpstreamState;
  readonly source: UpstreamSource;
}

/** A cluster-registered upstream (the value the Raft membership state machine stores). */
export interface ClusterUpstream {
  readonly url: string;
  readonly weight: number;
  readonly state: UpstreamState;
}

/** Replicated membership: service → upstream id → registration. */
export type ClusterMembership = ReadonlyMap<ServiceName, ReadonlyMap<UpstreamId, ClusterUpstream>>;
