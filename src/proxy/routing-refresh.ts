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
 * - With `tables` (issue 14): a deferred rebuild that needs a ring-hash or Maglev table costing at
 *   least `tables.minCost` entries does not build it on the event loop. That build is thrown away, the
 *   tables are made by the builder (a thread), and the same batch — with whatever arrived meanwhile —
 *   is built again once they are ready, now finding them: the swap waits, the snapshot served until
 *   then is the previous one (consistent, just older), and `applied()` resolves only after the swap.
 *   `flushNow` (start) builds everything in this turn.
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
import type { Balancer, PickCandidate } from '../balance/balancer.js';
import { balancerFromTable, tableCost, tableJob, type TableJob } from '../balance/table-build.js';
import { balancerOptionsOf } from './routing-snapshot.js';
import type { TableBuilder } from './table-builds.js';

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
  /** Big ring-hash / Maglev tables built off the event loop (default: every table built in the rebuild). */
  readonly tables?: { readonly builder: TableBuilder; readonly minCost: number };
}

/** ~100 upstreams of weight 1 (100 k ring points): the smallest build that takes more than a few ms here. */
export const OFF_THREAD_MIN_COST = 100_000;

/** Stands in for a balancer still being built: its snapshot is never swapped in, so it is never asked. */
const NOT_BUILT: Balancer = Object.freeze({ name: 'round-robin' as const, pick: () => undefined });
/** Table rounds one batch may wait through before the rest of its tables are built inline. */
const MAX_TABLE_ROUNDS = 2;

export class RoutingRefresh {
  private current: RoutingSnapshot | undefined;
  private seq = 0;
  private pending: SequencedEvent[] = [];
  private scheduled = false;
  private preparing = false;
  private closed = false;
  private waiters: Array<(o: RefreshOutcome) => void> = [];
  /** Events of a rebuild waiting for its tables (built again, with newer events, once they are ready). */
  private held: SequencedEvent[] = [];
  private buildingTables = false;
  /** Balancers made from finished tables, by their inputs' key, until the rebuild that asked takes them. */
  private readonly ready = new Map<string, Balancer>();
  /** Tables the builder failed to make: built inline by the next rebuild. */
  private readonly failed = new Set<string>();
  /** Rounds the held batch has waited for tables; past MAX_TABLE_ROUNDS it is built inline (a 1 kHz flap must not hold it for ever). */
  private tableRounds = 0;
  /**
   * The clock reading of a held batch's first build, kept for its later rounds: slow start stamps a
   * newly pickable upstream with the build's time, and that stamp is part of the balancer's inputs, so
   * a fresh reading per round would ask for a new table every round.
   */
  private heldNowMs: number | undefined;
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
    if (!this.scheduled && !this.preparing && !this.closed && !this.buildingTables) {
      this.scheduled = true;
      this.defer(this.deferredFlush);
    }
    return seq;
  }

  /** Resolves once every change requested so far is in the snapshot (or its build failed). */
  applied(): Promise<RefreshOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: new Error('routing refresh closed') });
    if (!this.scheduled && !this.buildingTables && this.pending.length === 0 && this.current !== undefined) return Promise.resolve({ ok: true, snapshot: this.current });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Builds now, in this turn (start, before anything is served). */
  flushNow(): RefreshOutcome {
    return this.flush(true)!;
  }

  /** No more rebuilds (shutdown); a pending one is dropped. */
  close(): void {
    this.closed = true;
  }

  /** A deferred flush that finds nothing scheduled (flushNow ran first) does nothing. */
  private readonly deferredFlush = (): void => {
    if (this.scheduled) this.flush(false);
  };

  /** Undefined when the rebuild waits for tables (its batch is held; waiters keep waiting). */
  private flush(inline: boolean): RefreshOutcome | undefined {
    this.scheduled = false;
    const batch = this.held.length ? [...this.held, ...this.pending] : this.pending;
    this.held = [];
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
        const jobs = new Map<string, TableJob>();
        const snapshot = this.build(batch, inline || this.tableRounds >= MAX_TABLE_ROUNDS ? undefined : jobs);
        if (snapshot === undefined) {
          this.awaitTables(batch, jobs);
          return undefined;
        }
        outcome = { ok: true, snapshot };
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

  /**
   * The pure build; with `jobs`, the big tables it lacks are listed there instead of built, and it
   * returns undefined (nothing swapped) when any was.
   */
  private build(batch: readonly SequencedEvent[], jobs?: Map<string, TableJob>): RoutingSnapshot | undefined {
    const src = this.opts.sources;
    const previous = this.current;
    const resources: SnapshotResources = { ...this.resources, balancer: (svc, candidates, prev, key) => this.tableBalancer(svc, candidates, prev, key, jobs) };
    const nowMs = this.heldNowMs ?? this.nowMs();
    const snapshot = buildRoutingSnapshot(
      { config: src.config(), generation: src.generation(), membership: src.membership(), eligibility: (s) => src.eligibility(s), nowMs, through: batch.length ? batch[batch.length - 1]!.seq : previous?.through ?? 0 },
      previous,
      resources,
    );
    if (jobs !== undefined && jobs.size > 0) {
      this.heldNowMs = nowMs;
      return undefined;
    }
    this.heldNowMs = undefined;
    this.ready.clear();
    this.failed.clear();
    this.tableRounds = 0;
    this.current = snapshot;
    this.retainNamed(snapshot);
    this.opts.onApplied?.(snapshot, batch, previous);
    return snapshot;
  }

  /** A balancer whose table was made off the loop; or, for a big one not made yet, a job (and a stand-in). */
  private tableBalancer(svc: ServiceConfig, candidates: readonly PickCandidate[], previous: Balancer | undefined, key: string, jobs: Map<string, TableJob> | undefined): Balancer | undefined {
    const made = this.ready.get(key);
    if (made !== undefined) return made;
    const tables = this.opts.tables;
    if (jobs === undefined || tables === undefined || this.failed.has(key) || (svc.balancer !== 'ring-hash' && svc.balancer !== 'maglev')) return undefined;
    const opts = balancerOptionsOf(svc);
    if (tableCost(svc.balancer, candidates, opts) < tables.minCost) return undefined;
    jobs.set(key, tableJob(svc.balancer, candidates, opts, previous));
    return NOT_BUILT;
  }

  /** Builds the listed tables off the loop, then the held batch again (in a later turn, as any rebuild). */
  private awaitTables(batch: SequencedEvent[], jobs: ReadonlyMap<string, TableJob>): void {
    this.held = batch;
    this.buildingTables = true;
    this.tableRounds++;
    const builder = this.opts.tables!.builder;
    void Promise.all([...jobs].map(async ([key, job]) => {
      try {
        this.ready.set(key, balancerFromTable(job, await builder.build(job)));
      } catch {
        // The job failed where it ran: the next build makes this balancer inline and reports its error, if any.
        this.failed.add(key);
      }
    })).then(() => {
      this.buildingTables = false;
      if (this.closed) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w({ ok: false, error: new Error('routing refresh closed') });
        return;
      }
      this.scheduled = true;
      this.defer(this.deferredFlush);
    });
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
