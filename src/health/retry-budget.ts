/**
 * Retry budget, Envoy's shape (circuit_breaker.proto `retry_budget`): concurrent retries of a service
 * may not exceed `budgetPercent` % of its active requests, but the limit never falls below
 * `minRetryConcurrency`, so a quiet service can still retry.
 *
 *   allowed retries in flight = max(minRetryConcurrency, floor(budgetPercent × activeRequests / 100))
 *
 * Why a concurrency budget rather than Linkerd's rate-over-a-window (retryRatio 0.2, min 10/s, ttl
 * 10 s): it needs no clock and no window bookkeeping, and it bounds exactly what hurts an overloaded
 * backend — extra concurrent load — to `budgetPercent` on top of the real traffic.
 *
 * `activeRequests` counts downstream requests being handled (a retry is not a new request);
 * `activeRetries` counts retry attempts in flight. Starts and ends must pair; an unpaired end throws.
 */

export interface RetryBudgetConfig {
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
}

/** Envoy: budget_percent 20%, min_retry_concurrency 3. DESIGN.md's example budgetPercent is also 20. */
export const DEFAULT_RETRY_BUDGET: RetryBudgetConfig = Object.freeze({ budgetPercent: 20, minRetryConcurrency: 3 });

export class RetryBudget {
  private cfg: RetryBudgetConfig;
  private requests = 0;
  private retries = 0;
  /** Retries started / refused by the budget since creation (Envoy's upstream_rq_retry / retry_overflow). */
  retriesStarted = 0;
  retriesRejected = 0;

  constructor(cfg: Partial<RetryBudgetConfig> = {}) {
    this.cfg = resolveRetryBudget(cfg);
  }

  setConfig(cfg: Partial<RetryBudgetConfig>): void {
    this.cfg = resolveRetryBudget(cfg);
  }

  get config(): RetryBudgetConfig {
    return this.cfg;
  }

  onRequestStart(): void {
    this.requests++;
  }

  onRequestEnd(): void {
    if (this.requests <= 0) throw new Error('retry budget: onRequestEnd without onRequestStart');
    this.requests--;
  }

  /** Current cap on concurrent retries. */
  limit(): number {
    return Math.max(this.cfg.minRetryConcurrency, Math.floor((this.cfg.budgetPercent * this.requests) / 100));
  }

  canRetry(): boolean {
    return this.retries < this.limit();
  }

  onRetryStart(): void {
    this.retries++;
    this.retriesStarted++;
  }

  onRetryEnd(): void {
    if (this.retries <= 0) throw new Error('retry budget: onRetryEnd without onRetryStart');
    this.retries--;
  }

  /** canRetry + onRetryStart in one step; counts a refusal. The caller must call onRetryEnd on true. */
  tryStartRetry(): boolean {
    if (!this.canRetry()) {
      this.retriesRejected++;
      return false;
    }
    this.onRetryStart();
    return true;
  }

  get activeRequests(): number {
    return this.requests;
  }

  get activeRetries(): number {
    return this.retries;
  }
}

function resolveRetryBudget(c: Partial<RetryBudgetConfig>): RetryBudgetConfig {
  const out = {
    budgetPercent: c.budgetPercent ?? DEFAULT_RETRY_BUDGET.budgetPercent,
    minRetryConcurrency: c.minRetryConcurrency ?? DEFAULT_RETRY_BUDGET.minRetryConcurrency,
  };
  if (!(out.budgetPercent >= 0 && out.budgetPercent <= 100) || !(out.minRetryConcurrency >= 0)) {
    throw new RangeError('retry budget out of range');
  }
  return out;
}
