/**
 * Eligibility of a service's upstreams: merges operator state (active / draining / disabled,
 * DESIGN.md §3), active health (active-checker.ts) and outlier ejection (outlier-detector.ts).
 *
 * Pure: no clock, no timers; `nowMs` comes in as an argument.
 *
 * Definitions (docs/health.md):
 * - available = health is not `unhealthy` (so `unknown` and `healthy` count) and not ejected.
 * - pickable (new requests, new sticky sessions, hash keys) = state `active` and available.
 * - usable (existing sticky pins) = state `active` or `draining`, and available.
 * - panic (Envoy healthy_panic_threshold, default 50%, 0 disables): when fewer than
 *   `panicThresholdPercent` % of the `active` upstreams are available, health is no longer trusted:
 *   pickable = every `active` upstream and usable = every `active`/`draining` one, whatever their
 *   health. Draining upstreams are in neither numerator nor denominator: they take no new requests,
 *   so they neither add capacity for new traffic nor should they hide the collapse of the active
 *   pool; and in panic they still take no new requests — draining is an operator decision that
 *   health signals cannot override. `disabled` is never pickable nor usable.
 * - With no `active` upstream at all there is no panic (nothing to route to; the proxy answers 503).
 * - `version` goes up exactly when the result changes (pickable ids/urls/weights, usable set, or
 *   panic), so the proxy rebuilds its balancer only then.
 */
import type { HealthStatus, UpstreamId, UpstreamSpec } from '../model/index.js';

/** Envoy CommonLbConfig.healthy_panic_threshold default (cluster.proto). */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

export interface HostSignals {
  health(id: UpstreamId): HealthStatus;
  ejected(id: UpstreamId): boolean;
}

export interface EligibilityResult {
  readonly pickable: readonly UpstreamSpec[];
  readonly usableIds: ReadonlySet<UpstreamId>;
  readonly panic: boolean;
  /** Available `active` upstreams. */
  readonly healthy: number;
  /** `active` upstreams. */
  readonly total: number;
}

export function isAvailable(health: HealthStatus, ejected: boolean): boolean {
  return health !== 'unhealthy' && !ejected;
}

export function computeEligibility(specs: readonly UpstreamSpec[], signals: HostSignals, panicThresholdPercent: number): EligibilityResult {
  let total = 0;
  let healthy = 0;
  const available = new Map<UpstreamId, boolean>();
  for (const s of specs) {
    if (s.state === 'disabled') continue;
    const a = isAvailable(signals.health(s.id), signals.ejected(s.id));
    available.set(s.id, a);
    if (s.state === 'active') {
      total++;
      if (a) healthy++;
    }
  }
  // healthy / total < threshold / 100, in integers.
  const panic = total > 0 && panicThresholdPercent > 0 && healthy * 100 < panicThresholdPercent * total;
  const pickable: UpstreamSpec[] = [];
  const usableIds = new Set<UpstreamId>();
  for (const s of specs) {
    if (s.state === 'disabled') continue;
    const ok = panic || available.get(s.id) === true;
    if (!ok) continue;
    usableIds.add(s.id);
    if (s.state === 'active') pickable.push(s);
  }
  return { pickable, usableIds, panic, healthy, total };
}

export interface Eligibility {
  /** For new requests and hash keys. Stable order: the order of the service's specs. */
  readonly pickable: readonly UpstreamSpec[];
  /** For existing sticky pins. */
  usable(id: UpstreamId): boolean;
  readonly panic: boolean;
  /** Goes up when anything above changes. */
  readonly version: number;
  readonly healthy: number;
  readonly total: number;
  /**
   * When `id` last became pickable (ms, caller's clock), for slow start; undefined for upstreams
   * pickable since the service was first set (no slow start at boot).
   */
  eligibleSinceMs(id: UpstreamId): number | undefined;
}

/** Keeps one service's current eligibility and its version. */
export class ServiceEligibility {
  private current: Eligibility;
  private last: EligibilityResult = { pickable: [], usableIds: new Set(), panic: false, healthy: 0, total: 0 };
  private readonly since = new Map<UpstreamId, number | undefined>();
  private initialized = false;

  constructor() {
    this.current = makeEligibility(this.last, 0, this.since);
  }

  get value(): Eligibility {
    return this.current;
  }

  /** Recomputes; says whether anything changed (then the version went up) and whether panic flipped. */
  recompute(specs: readonly UpstreamSpec[], signals: HostSignals, panicThresholdPercent: number, nowMs: number): { changed: boolean; panicChanged: boolean } {
    const next = computeEligibility(specs, signals, panicThresholdPercent);
    const prev = this.current;
    const changed = !this.initialized || !sameResult(this.last, next);
    const panicChanged = this.initialized && prev.panic !== next.panic;
    if (!changed) return { changed: false, panicChanged: false };
    const ids = new Set(next.pickable.map((s) => s.id));
    for (const id of [...this.since.keys()]) if (!ids.has(id)) this.since.delete(id);
    for (const id of ids) if (!this.since.has(id)) this.since.set(id, this.initialized ? nowMs : undefined);
    this.initialized = true;
    this.last = next;
    this.current = makeEligibility(next, prev.version + 1, new Map(this.since)); // each version keeps its own view
    return { changed: true, panicChanged };
  }
}

function makeEligibility(r: EligibilityResult, version: number, since: ReadonlyMap<UpstreamId, number | undefined>): Eligibility {
  const usableIds = r.usableIds;
  const pickable = Object.freeze([...r.pickable]);
  return Object.freeze({
    pickable,
    usable: (id: UpstreamId) => usableIds.has(id),
    panic: r.panic,
    version,
    healthy: r.healthy,
    total: r.total,
    eligibleSinceMs: (id: UpstreamId) => since.get(id),
  });
}

function sameResult(a: EligibilityResult, b: EligibilityResult): boolean {
  if (a.panic !== b.panic || a.healthy !== b.healthy || a.total !== b.total) return false;
  if (a.pickable.length !== b.pickable.length || a.usableIds.size !== b.usableIds.size) return false;
  for (let i = 0; i < a.pickable.length; i++) {
    const x = a.pickable[i]!;
    const y = b.pickable[i]!;
    if (x.id !== y.id || x.url !== y.url || x.weight !== y.weight) return false;
  }
  for (const id of b.usableIds) if (!a.usableIds.has(id)) return false;
  return true;
}
