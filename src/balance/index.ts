/**
 * Public surface of src/balance/ (style.md rule 5: other folders import this file only): every
 * load-balancing policy as a pure module behind the Balancer interface, the registry that maps
 * config names to them, and the hash that peers share.
 */
export type {
  Balancer,
  BalancerFactory,
  BalancerName,
  BalancerOptions,
  PickCandidate,
  PickContext,
  PickResult,
  UpstreamLoad,
  UpstreamSnapshot,
} from './balancer.js';
export { BALANCER_NAMES } from './balancer.js';
export { createBalancer, isBalancerName } from './registry.js';
export { BalanceInvalidError, MG_ERR_BALANCE_INVALID } from './errors.js';
export { hash64, hash64Bytes, DEFAULT_HASH_SEED } from './hash.js';
export { boundedLoadCapacity } from './bounded-load.js';
export { RingHashBalancer, createRingHashBalancer, DEFAULT_VNODES_PER_WEIGHT, DEFAULT_MAX_RING_SIZE } from './ring-hash.js';
export { MaglevBalancer, createMaglevBalancer, DEFAULT_MAGLEV_TABLE_SIZE, MAX_MAGLEV_TABLE_SIZE } from './maglev.js';
export { LeastRequestBalancer, createLeastRequestBalancer, DEFAULT_ACTIVE_REQUEST_BIAS } from './least-request.js';
export { RoundRobinBalancer, createRoundRobinBalancer } from './round-robin.js';
export { RandomBalancer, createRandomBalancer } from './random.js';
export { DEFAULT_SLOW_START_AGGRESSION, DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT } from './candidates.js';
export {
  updatePeakEwma,
  peakEwmaAt,
  failureSampleMs,
  DEFAULT_PEAK_EWMA_DECAY_MS,
  DEFAULT_RTT_MS,
  FAILURE_PENALTY_MS,
  type PeakEwmaState,
} from './peak-ewma.js';
