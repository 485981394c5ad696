/**
 * The one way routing changes: every change (start, reload, membership apply, health change) is an
 * event given to `request()`; the snapshot is rebuilt at most once per event-loop turn, in a callback
 * of its own (setImmediate by default) — never inside the I/O callback that caused the change (an
 * undici response callback ejecting an upstream, a Raft apply) — and swapped in with one assignment.
 *
 * Invariants:
 * - `snapshot` is the pure build (buildRoutingSnapshot) of the inputs as they were at the last flush;
 *   every event requested before a flush is in that flush's batch, exactly once.
 * - Events requested while `prepare` runs (health changes that bringing the health module up to date
 *   caused) join the batch being built instead of scheduling another rebuild.
 * - A failed build changes nothing: the previous snapshot keeps serving and `applied()` reports the error.
 * - Upstream runtimes (stats, pools) live here, keyed by (service, id) and pool options, so a rebuild
 *   keeps them; the runtimes and pools that no snapshot names any more are dropped after the swap.
 */
import type { Config, ServiceConfig } from '../config/schema.js';
import type { ClusterMembership, ServiceName, UpstreamSpec } from '../model/index.js';
import type { Metrics } from '../observability/metrics.js';
import type { Eligibility } from './routing.js';
import { buildRoutingSnapshot, type RoutingSnapshot, type SnapshotResources } from './routing-snapshot.js';
import type { StickyView } from './sticky-view.js';
import { UpstreamPools, type PoolOptions } from './upstream-pools.js';
import { serverNameFor } from './upstream-tls.js';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';
import { UpstreamRuntime } from './upstream-runtime.js';

export type RefreshEvent =
  | { readonly kind: 'start' }
  | { readonly kind: 'reload' }
  | { readonly kind: 'membership' }
  | { readonly kind: 'health'; readonly service: ServiceName };

export interface SequencedEvent {
  readonly seq: number;
  readonly event: RefreshEvent;
}

/** Where a build reads its inputs (the peer's running config, the Raft state machine, the health module). */
export interface RefreshSources {
  config(): Config;
  generation(): number;
  membership(): ClusterMembership | undefined;
  eligibility(service: ServiceName): Eligibility | undefined;
  /** Brings what the inputs depend on up to date before a build (the health module's member lists). */
  prepare?(batch: readonly SequencedEvent[]): void;
  /** The sticky resolver handle for a sticky service's settings. */
  sticky?(service: ServiceName, svc: ServiceConfig): StickyView | undefined;
}

export type RefreshOutcome = { readonly ok: true; readonly snapshot: RoutingSnapshot } | { readonly ok: false; readonly error: Error };

export interface RoutingRefreshOptions {
  readonly pools: UpstreamPools;
  readonly metrics: Metrics;
  readonly sources: RefreshSources;
  /** Runs a callback in a later event-loop turn; default setImmediate. A test passes a fake. */
  readonly defer?: (fn: () => void) => void;
  readonly nowMs?: () => number;
  /** After each swap: the new snapshot, the events it includes, the one it replaced. */
  readonly onApplied?: (snapshot: RoutingSnapshot, batch: readonly SequencedEvent[], previous: RoutingSnapshot | undefined) => void;
  /** A build threw (the previous snapshot keeps serving). */
  readonly onFailed?: (err: Error) => void;
}

export class RoutingRefresh {
  private current: RoutingSnapshot | undefined;
  private seq = 0;
  private pending: SequencedEvent[] = [];
  private scheduled = false;
  private preparing = false;
  private closed = false;
  private waiters: Array<(o: RefreshOutcome) => void> = [];
  private readonly runtimes = new Map<string, UpstreamRuntime>();
  private readonly defer: (fn: () => void) => void;
  private readonly nowMs: () => number;
  private readonly resources: SnapshotResources;

  constructor(private readonly opts: RoutingRefreshOptions) {
    this.defer = opts.defer ?? ((fn) => void setImmediate(fn));
    this.nowMs = opts.nowMs ?? Date.now;
    this.resources = {
      runtime: (service, spec, poolOpts) => this.runtimeFor(service, spec, poolOpts),
      sticky: (service, svc) => opts.sources.sticky?.(service, svc),
    };
  }

  /** The snapshot in effect (undefined before the first build). A request reads it once. */
  get snapshot(): RoutingSnapshot | undefined {
    return this.current;
  }

  /** Records a change; the rebuild that includes it runs once, in a later turn. Returns its sequence number. */
  request(event: RefreshEvent): number {
    const seq = ++this.seq;
    this.pending.push({ seq, event });
    if (!this.scheduled && !this.preparing && !this.closed) {
      this.scheduled = true;
      this.defer(this.deferredFlush);
    }
    return seq;
  }

  /** Resolves once every change requested so far is in the snapshot (or its build failed). */
  applied(): Promise<RefreshOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: new Error('routing refresh closed') });
    if (!this.scheduled && this.pending.length === 0 && this.current !== undefined) return Promise.resolve({ ok: true, snapshot: this.current });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Builds now, in this turn (start, before anything is served). */
  flushNow(): RefreshOutcome {
    return this.flush();
  }

  /** No more rebuilds (shutdown); a pending one is dropped. */
  close(): void {
    this.closed = true;
  }

  /** A deferred flush that finds nothing scheduled (flushNow ran first) does nothing. */
  private readonly deferredFlush = (): void => {
    if (this.scheduled) this.flush();
  };

  private flush(): RefreshOutcome {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    let outcome: RefreshOutcome;
    if (this.closed) {
      outcome = { ok: false, error: new Error('routing refresh closed') };
    } else {
      try {
        this.preparing = true;
        try {
          this.opts.sources.prepare?.(batch);
        } finally {
          this.preparing = false;
        }
        // What prepare itself caused is built now, not one turn later.
        batch.push(...this.pending);
        this.pending = [];
        outcome = { ok: true, snapshot: this.build(batch) };
      } catch (err) {
        outcome = { ok: false, error: err as Error };
        this.opts.onFailed?.(outcome.error);
      }
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(outcome);
    return outcome;
  }

  private build(batch: readonly SequencedEvent[]): RoutingSnapshot {
    const src = this.opts.sources;
    const previous = this.current;
    const snapshot = buildRoutingSnapshot(
      { config: src.config(), generation: src.generation(), membership: src.membership(), eligibility: (s) => src.eligibility(s), nowMs: this.nowMs(), through: batch.length ? batch[batch.length - 1]!.seq : previous?.through ?? 0 },
      previous,
      this.resources,
    );
    this.current = snapshot;
    this.retainNamed(snapshot);
    this.opts.onApplied?.(snapshot, batch, previous);
    return snapshot;
  }

  private runtimeFor(service: ServiceName, spec: UpstreamSpec, poolOpts: PoolOptions): UpstreamRuntime {
    const key = `${service}\u0000${spec.id}`;
    const poolKey = UpstreamPools.keyOf(spec.url, poolOpts);
    let rt = this.runtimes.get(key);
    if (!rt || rt.poolKey !== poolKey) {
      const https = /^https:/i.test(spec.url);
      rt = new UpstreamRuntime(spec, this.opts.pools.get(spec.url, poolOpts), poolKey, this.opts.metrics.bindUpstream(service, spec.id), https ? dispatchServername(spec.url, poolOpts.tls) : undefined);
      // A new member of a running peer starts its slow start now.
      if (this.current !== undefined) rt.eligibleSinceMs = this.nowMs();
      this.runtimes.set(key, rt);
    } else {
      rt.spec = spec;
    }
    return rt;
  }

  /** Drops the runtimes and closes the pools the new snapshot does not name (in-flight requests finish). */
  private retainNamed(snapshot: RoutingSnapshot): void {
    const keepRuntimes = new Set<string>();
    const keepPools = new Set<string>();
    for (const [name, svc] of snapshot.services) {
      for (const [id, rt] of svc.upstreams) {
        keepRuntimes.add(`${name}\u0000${id}`);
        keepPools.add(rt.poolKey);
      }
    }
    for (const key of this.runtimes.keys()) if (!keepRuntimes.has(key)) this.runtimes.delete(key);
    void this.opts.pools.retain(keepPools);
  }
}

/**
 * The fixed name an https request carries to undici (upstream-tls.ts sets the real SNI in its
 * connector): without it undici takes the name from each client's Host header.
 */
function dispatchServername(url: string, material: UpstreamTlsMaterial | undefined): string {
  const host = new URL(url).hostname;
  return serverNameFor(host, material) ?? host;
}
