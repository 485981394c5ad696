/**
 * Error catalogue of the balance area (style.md: one class per failure, stable `MG_ERR_<AREA>_<PROBLEM>`).
 *
 * Invariant: only factories throw, never `pick`: bad input reaching a factory means the config schema
 * (the first line of defence) let something through, so this is defence in depth, not a user path.
 */
export const MG_ERR_BALANCE_INVALID = 'MG_ERR_BALANCE_INVALID';

/** A balancer factory got input it cannot build from: weight ≤ 0, boundedLoad < 1, duplicate id, … */
export class BalanceInvalidError extends Error {
  readonly code = MG_ERR_BALANCE_INVALID;
  constructor(message: string) {
    super(message);
    this.name = 'BalanceInvalidError';
  }
}
