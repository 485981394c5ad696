/**
 * Per-service state that must outlive a reload: the retry budget and the concurrency-limit counts (`circuitBreaker:`)
 * (in-flight requests started under the old routing are still counted after the swap).
 */
import { ConcurrencyLimits } from '../health/concurrency-limits.js';
import { RetryBudget } from '../health/retry-budget.js';
import type { ServiceConfig } from '../config/schema.js';

export interface ServiceState {
  readonly budget: RetryBudget;
  readonly limits: ConcurrencyLimits;
  /** Requests in flight to this service's upstreams from this peer (bounded loads read it). */
  inFlight: number;
}

export class ServiceStates {
  private readonly states = new Map<string, ServiceState>();

  /**
   * `share`: the data-plane processes of the peer (node.workers). Each holds 1/share of every limit
   * (at least 1), so the peer as a whole never has more than the configured limit in flight — the
   * limit holds across the peer without a shared counter on the request path (docs/workers.md).
   */
  constructor(
    private readonly onBreakerOpen?: (service: string, kind: 'max-in-flight' | 'max-pending', upstream: string | undefined) => void,
    private readonly share = 1,
  ) {}

  /** Creates or updates the state of each configured service (limits follow the config). */
  configure(services: Readonly<Record<string, ServiceConfig>>): void {
    for (const [name, svc] of Object.entries(services)) {
      const part = (n: number) => Math.max(1, Math.floor(n / this.share));
      const limits = { maxInFlightPerUpstream: part(svc.circuitBreaker.maxInFlight), maxPending: part(svc.circuitBreaker.maxPending) };
      const budget = { budgetPercent: svc.retries.budgetPercent };
      const found = this.states.get(name);
      if (found) {
        found.limits.setLimits(limits);
        found.budget.setConfig(budget);
      } else {
        this.states.set(name, {
          budget: new RetryBudget(budget),
          limits: new ConcurrencyLimits(name, limits, (kind, up) => this.onBreakerOpen?.(name, kind, up)),
          inFlight: 0,
        });
      }
    }
  }

  get(service: string): ServiceState {
    const s = this.states.get(service);
    if (!s) throw new Error(`no state for service ${service}`);
    return s;
  }
}
