/**
 * Error catalogue of the sticky module: one class per failure, each with a stable code
 * (`MG_ERR_<AREA>_<PROBLEM>`, style.md "Errors"). The data path never sees these as throws: the
 * resolver turns store errors into fallbacks and counts them. The lock facility throws them to its
 * caller, who can tell "someone else holds it" from "Redis is unreachable" from "you lost it"
 * (node-redlock #185 conflated the three).
 */

export type StickyErrorCode =
  | 'MG_ERR_STICKY_STORE_UNAVAILABLE'
  | 'MG_ERR_STICKY_STORE_TIMEOUT'
  | 'MG_ERR_STICKY_STORE_BAD_DATA'
  | 'MG_ERR_LOCK_CONTENDED'
  | 'MG_ERR_LOCK_UNAVAILABLE'
  | 'MG_ERR_LOCK_LOST'
  | 'MG_ERR_LOCK_BAD_ARGUMENT';

export abstract class StickyError extends Error {
  abstract readonly code: StickyErrorCode;
}

/** The store could not be asked: connection down, not ready, closed, or an error reply. */
export class StoreUnavailableError extends StickyError {
  readonly code = 'MG_ERR_STICKY_STORE_UNAVAILABLE' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store did not answer within the budget. The command may still run later (a "ghost write"). */
export class StoreTimeoutError extends StickyError {
  readonly code = 'MG_ERR_STICKY_STORE_TIMEOUT' as const;
  constructor(budgetMs: number) {
    super(`store did not answer within ${budgetMs} ms`);
    this.name = 'StoreTimeoutError';
  }
}

/** The store answered with something that is not a pin (wrong type, garbage fields, foreign data). */
export class StoreDataError extends StickyError {
  readonly code = 'MG_ERR_STICKY_STORE_BAD_DATA' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreDataError';
  }
}

/** The lock is held by someone else and stayed so through every retry. */
export class LockContendedError extends StickyError {
  readonly code = 'MG_ERR_LOCK_CONTENDED' as const;
  constructor(readonly lockName: string, readonly attempts: number) {
    super(`lock "${lockName}" is held by another owner (${attempts} attempts)`);
    this.name = 'LockContendedError';
  }
}

/** The lock store could not be reached; acquire fails fast instead of waiting out retries. */
export class LockUnavailableError extends StickyError {
  readonly code = 'MG_ERR_LOCK_UNAVAILABLE' as const;
  constructor(readonly lockName: string, options?: { cause?: unknown }) {
    super(`lock store unavailable for "${lockName}"`, options);
    this.name = 'LockUnavailableError';
  }
}

/** A held lock could not be extended before its lease ran out, or another owner has it now. */
export class LockLostError extends StickyError {
  readonly code = 'MG_ERR_LOCK_LOST' as const;
  constructor(readonly lockName: string, reason: string, options?: { cause?: unknown }) {
    super(`lock "${lockName}" lost: ${reason}`, options);
    this.name = 'LockLostError';
  }
}

/** A caller passed an unusable lock name or TTL (a programming error, reported at once). */
export class LockArgumentError extends StickyError {
  readonly code = 'MG_ERR_LOCK_BAD_ARGUMENT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'LockArgumentError';
  }
}
