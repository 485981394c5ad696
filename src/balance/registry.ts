/**
 * Config name → factory (DESIGN.md §2 `balancer:`). The proxy calls `createBalancer` off the hot path
 * once per membership or health change and swaps the reference atomically.
 *
 * Invariant: every name of BALANCER_NAMES has exactly one factory here (checked by the type of FACTORIES).
 */
import type { Balancer, BalancerFactory, BalancerName, BalancerOptions, UpstreamSnapshot } from './balancer.js';
import { BalanceInvalidError } from './errors.js';
import { createLeastRequestBalancer } from './least-request.js';
import { createMaglevBalancer } from './maglev.js';
import { createRandomBalancer } from './random.js';
import { createRingHashBalancer } from './ring-hash.js';
import { createRoundRobinBalancer } from './round-robin.js';

const FACTORIES: Readonly<Record<BalancerName, BalancerFactory>> = {
  'ring-hash': createRingHashBalancer,
  maglev: createMaglevBalancer,
  'least-request': createLeastRequestBalancer,
  'round-robin': createRoundRobinBalancer,
  random: createRandomBalancer,
};

export function isBalancerName(name: string): name is BalancerName {
  return Object.prototype.hasOwnProperty.call(FACTORIES, name);
}

/** Builds the named balancer over the snapshot. Throws BalanceInvalidError on bad input. */
export function createBalancer(name: BalancerName, snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): Balancer {
  if (!isBalancerName(name)) throw new BalanceInvalidError(`unknown balancer ${JSON.stringify(name)}`);
  return FACTORIES[name](snapshot, opts);
}
