/**
 * What every balancer factory does first: validate the snapshot and options, and put the candidates
 * in one canonical order; plus slow start (Envoy), which the non-hash balancers share.
 *
 * Invariants:
 * - Candidates come out sorted by id in UTF-16 code-unit order (never locale order), so a structure
 *   built from the same membership is identical on every peer whatever order the list arrived in.
 * - Every weight that leaves here is finite and > 0; ids are unique.
 */
import type { BalancerOptions, PickCandidate, UpstreamSnapshot } from './balancer.js';
import { BalanceInvalidError } from './errors.js';

/** Envoy slow start defaults (slow_start_config): min_weight_percent 10%, aggression 1.0 (linear). */
export const DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT = 10;
export const DEFAULT_SLOW_START_AGGRESSION = 1;

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Validated, id-sorted copy of the snapshot's candidates. Throws BalanceInvalidError on bad input. */
export function validateCandidates(snapshot: UpstreamSnapshot): PickCandidate[] {
  const list = [...snapshot.candidates].sort((a, b) => compareIds(a.id, b.id));
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (typeof c.id !== 'string' || c.id.length === 0) throw new BalanceInvalidError('upstream id must be a non-empty string');
    if (!(Number.isFinite(c.weight) && c.weight > 0)) {
      throw new BalanceInvalidError(`upstream ${c.id}: weight must be a finite number > 0, got ${String(c.weight)}`);
    }
    if (i > 0 && list[i - 1]!.id === c.id) throw new BalanceInvalidError(`upstream ${c.id} appears twice in the snapshot`);
  }
  return list;
}

function checkNumber(value: number | undefined, name: string, ok: (v: number) => boolean, rule: string): void {
  if (value !== undefined && !(Number.isFinite(value) && ok(value))) {
    throw new BalanceInvalidError(`${name} must be ${rule}, got ${String(value)}`);
  }
}

/** Validates the options every balancer shares; algorithm-specific ones are checked by their factory. */
export function validateOptions(opts: BalancerOptions): void {
  checkNumber(opts.boundedLoad, 'boundedLoad', (v) => v >= 1, 'a number ≥ 1');
  checkNumber(opts.activeRequestBias, 'activeRequestBias', (v) => v >= 0, 'a number ≥ 0');
  checkNumber(opts.slowStartMs, 'slowStartMs', (v) => v >= 0, 'a number ≥ 0');
  checkNumber(opts.slowStartAggression, 'slowStartAggression', (v) => v > 0, 'a number > 0');
  checkNumber(opts.slowStartMinWeightPercent, 'slowStartMinWeightPercent', (v) => v > 0 && v <= 100, 'in (0, 100]');
  checkNumber(opts.defaultRttMs, 'defaultRttMs', (v) => v > 0, 'a number > 0');
  checkNumber(opts.vnodesPerWeight, 'vnodesPerWeight', (v) => v >= 1, 'a number ≥ 1');
  checkNumber(opts.maxRingSize, 'maxRingSize', (v) => Number.isInteger(v) && v >= 1, 'an integer ≥ 1');
  checkNumber(opts.minRingSize, 'minRingSize', (v) => Number.isInteger(v) && v >= 1, 'an integer ≥ 1');
}

/**
 * Slow start (Envoy slow_start page): a candidate that became eligible `elapsed` ms ago, inside the
 * window, gets weight × max(minWeightPercent/100, (elapsed/window)^(1/aggression)). Outside the
 * window, without `eligibleSinceMs` or without `nowMs` it keeps its weight. Precomputed per balancer.
 */
export class SlowStart {
  readonly active: boolean;
  private readonly windowMs: number;
  private readonly minFactor: number;
  private readonly invAggression: number;
  /** Latest eligibleSinceMs of any candidate: after it + window, nobody is ramping any more. */
  private readonly rampEndsMs: number;

  constructor(candidates: readonly PickCandidate[], opts: BalancerOptions) {
    this.windowMs = opts.slowStartMs ?? 0;
    this.minFactor = (opts.slowStartMinWeightPercent ?? DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT) / 100;
    this.invAggression = 1 / (opts.slowStartAggression ?? DEFAULT_SLOW_START_AGGRESSION);
    let latest = -Infinity;
    for (const c of candidates) if (c.eligibleSinceMs !== undefined && c.eligibleSinceMs > latest) latest = c.eligibleSinceMs;
    this.rampEndsMs = latest + this.windowMs;
    this.active = this.windowMs > 0 && latest > -Infinity;
  }

  /** True when some candidate may be ramping at `nowMs` (so static weights do not apply). */
  isRamping(nowMs: number | undefined): boolean {
    return this.active && nowMs !== undefined && nowMs < this.rampEndsMs;
  }

  /** The candidate's effective weight at `nowMs`. */
  weight(c: PickCandidate, nowMs: number | undefined): number {
    if (!this.active || nowMs === undefined || c.eligibleSinceMs === undefined) return c.weight;
    const elapsed = nowMs - c.eligibleSinceMs;
    if (elapsed >= this.windowMs) return c.weight;
    const timeFactor = Math.max(elapsed, 0) / this.windowMs;
    return c.weight * Math.max(this.minFactor, Math.pow(timeFactor, this.invAggression));
  }
}
