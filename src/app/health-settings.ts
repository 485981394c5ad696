/**
 * A service's config as the health module takes it (durations in ms, statuses as ranges). One mapping,
 * used by the peer on start, reload and membership change, and by the property test that shows a config
 * `meshgate check` accepts is one the health module accepts (issue 13).
 */
import type { ServiceConfig } from '../config/schema.js';
import type { ServiceHealthConfig } from '../health/index.js';
import type { ClusterMembership } from '../model/index.js';
import { liveMembers } from '../proxy/routing.js';

export function healthSettingsFor(name: string, svc: ServiceConfig, membership: ClusterMembership | undefined): ServiceHealthConfig {
  return {
    upstreams: liveMembers(name, svc, membership),
    healthCheck: svc.healthCheck && {
      path: svc.healthCheck.path,
      intervalMs: svc.healthCheck.interval,
      timeoutMs: svc.healthCheck.timeout,
      healthyThreshold: svc.healthCheck.healthyThreshold,
      unhealthyThreshold: svc.healthCheck.unhealthyThreshold,
      expectedStatuses: svc.healthCheck.expectedStatus?.map((s) => [s, s] as const),
      tls: svc.upstreamTls?.material,
    },
    outlierDetection: svc.outlierDetection && {
      consecutive5xx: svc.outlierDetection.consecutive5xx,
      consecutiveLocalOriginFailures: svc.outlierDetection.consecutiveLocalOriginFailures,
      baseEjectionTimeMs: svc.outlierDetection.baseEjectionTime,
      maxEjectionTimeMs: svc.outlierDetection.maxEjectionTime,
      maxEjectionPercent: svc.outlierDetection.maxEjectionPercent,
    },
    panicThresholdPercent: svc.panicThreshold,
  };
}
