/**
 * Config name → factory (DESIGN.md §2 `balancer:`). The proxy calls `createBalancer` off the hot path
 * once per membership or health change and swaps the reference atomically.
 *
 * Invariant: every BalancerName has exactly one factory here (checked by the type of FACTORIES).
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

/** Every balancer name, in the order the docs list them. */
export const BALANCER_NAMES: readonly BalancerName[] = ['ring-hash', 'maglev', 'least-request', 'round-robin', 'random'];

export function isBalancerName(name: string): name is BalancerName {
  return Object.prototype.hasOwnProperty.call(FACTORIES, name);
}

/** True for the balancers that route by hash key (they report `fallback` when the key is missing). */
export function isHashBalancer(name: BalancerName): boolean {
  return name === 'ring-hash' || name === 'maglev';
}

/** Builds the named balancer over the snapshot. Throws BalanceInvalidError on bad input. */
export function createBalancer(name: BalancerName, snapshot: UpstreamSnapshot, opts: BalancerOptions = {}): Balancer {
  if (!isBalancerName(name)) throw new BalanceInvalidError(`unknown balancer ${JSON.stringify(name)}`);
  return FACTORIES[name](snapshot, opts);
}
