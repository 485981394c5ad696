/**
 * The primary's view of its data-plane workers (`node.workers > 1`, DESIGN.md §10): what the peer
 * sends them (the routing snapshot's inputs, as deltas after each rebuild of the primary's own
 * snapshot), what it takes back (passive health outcomes into the one HealthMonitor, bus events, pin
 * store calls), and how status and readiness read them. Process management is
 * workers/supervisor.ts.
 */
import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import type { CallResult, HealthMonitor } from '../health/index.js';
import type { ClusterMembership } from '../model/index.js';
import type { EventBus } from '../observability/events.js';
import type { Logger } from '../observability/log.js';
import type { SequencedEvent } from '../proxy/routing-refresh.js';
import type { RoutingSnapshot } from '../proxy/routing-snapshot.js';
import type { Eligibility } from '../proxy/routing.js';
import { servePinCall, type PinStore } from '../sticky/index.js';
import type { CertificateSet } from '../tls/certificates.js';
import type { CertificateWire, EligibilityWire, RoutingState, WorkerMetrics } from '../workers/protocol.js';
import { WorkerSupervisor, type WorkerView } from '../workers/supervisor.js';

/** `node.workers` as a count: `auto` is one per CPU core (so 1, a single process, on a 1-core machine). */
export function workerCountOf(setting: number | 'auto', cores = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, cores) : setting;
}

/** What the fleet reads from the peer (all live: a reload changes them). */
export interface FleetParts {
  config(): Config;
  generation(): number;
  certificates(): CertificateSet | undefined;
  membership(): ClusterMembership | undefined;
  routing(): RoutingSnapshot | undefined;
  readonly health: HealthMonitor;
  readonly bus: EventBus;
  pinStore(): PinStore;
}

export class WorkerFleet {
  private readonly supervisor: WorkerSupervisor;
  private sentGeneration = 0;
  private readonly sentEligibility = new Map<string, Eligibility>();

  constructor(readonly count: number, private readonly parts: FleetParts, log: Logger, pretty: boolean) {
    this.supervisor = new WorkerSupervisor(count, {
      fullState: () => this.fullState(),
      onResults: (runs) => {
        for (const r of runs) for (let i = 0; i < r.n; i++) parts.health.recordResult(r.service, r.upstream, r.result as CallResult);
      },
      onEvent: (type, data) => parts.bus.emit(type as never, data as never),
      onPin: (op, args) => servePinCall(parts.pinStore(), op, args),
    }, log, { pretty });
  }

  start(): Promise<{ dataPort: number; tlsPort: number }> {
    return this.supervisor.start();
  }

  /** After each rebuild of the primary's snapshot: what changed, to every worker. */
  broadcast(snapshot: RoutingSnapshot, batch: readonly SequencedEvent[]): void {
    const generation = this.parts.generation();
    const newConfig = generation !== this.sentGeneration;
    this.sentGeneration = generation;
    const membershipChanged = batch.some((e) => e.event.kind === 'membership' || e.event.kind === 'start');
    const eligibility: Array<[string, EligibilityWire]> = [];
    for (const [name, svc] of snapshot.services) {
      const e = this.parts.health.eligibility(name);
      if (!newConfig && !membershipChanged && this.sentEligibility.get(name) === e) continue;
      this.sentEligibility.set(name, e);
      eligibility.push([name, wireOf(e, svc.members.map((m) => m.id))]);
    }
    if (!newConfig && !membershipChanged && eligibility.length === 0) return;
    const state: RoutingState = {
      seq: this.supervisor.nextSeq(),
      generation,
      eligibility,
      ...(newConfig ? this.configPart() : {}),
      ...(membershipChanged ? { membership: this.parts.membership() ?? null } : {}),
    };
    this.supervisor.broadcast(state);
  }

  /** Resolves once every live worker routes with every state sent so far. */
  synced(): Promise<void> {
    return this.supervisor.synced();
  }

  metrics(): Promise<WorkerMetrics[]> {
    return this.supervisor.metrics();
  }

  views(): WorkerView[] {
    return this.supervisor.views();
  }

  get serving(): boolean {
    return this.supervisor.anyReady;
  }

  /** The data plane of the whole peer for the status page (the workers' last heartbeat, ≤ 1 s old). */
  totals(): { serving: boolean; inFlight: number; websockets: number } {
    let inFlight = 0;
    let websockets = 0;
    for (const s of this.supervisor.stats()) {
      inFlight += s.inFlight;
      websockets += s.websockets;
    }
    return { serving: this.serving, inFlight, websockets };
  }

  /** Per (service, upstream): the workers' counters summed, their latency percentiles at the worst worker's. */
  upstreamTotals(): Map<string, { inFlight: number; requests: number; failures: number; responses5xx: number; p50?: number; p99?: number }> {
    const by = new Map<string, { inFlight: number; requests: number; failures: number; responses5xx: number; p50?: number; p99?: number }>();
    for (const s of this.supervisor.stats()) {
      for (const [service, id, inFlight, requests, failures, r5xx, p50, p99] of s.upstreams) {
        const key = `${service}\u0000${id}`;
        const t = by.get(key) ?? { inFlight: 0, requests: 0, failures: 0, responses5xx: 0 };
        t.inFlight += inFlight;
        t.requests += requests;
        t.failures += failures;
        t.responses5xx += r5xx;
        if (p50 !== undefined) t.p50 = Math.max(t.p50 ?? 0, p50);
        if (p99 !== undefined) t.p99 = Math.max(t.p99 ?? 0, p99);
        by.set(key, t);
      }
    }
    return by;
  }

  /** Per service, the workers' client-side traffic summed (the dashboard's time series). */
  serviceTraffic(service: string, own: { requests: number; errors5xx: number; le: readonly number[]; buckets: number[] }) {
    const buckets = [...own.buckets];
    let requests = own.requests;
    let errors5xx = own.errors5xx;
    for (const s of this.supervisor.stats()) {
      for (const [name, n, e, b] of s.services) {
        if (name !== service) continue;
        requests += n;
        errors5xx += e;
        b.forEach((v, i) => (buckets[i] = (buckets[i] ?? 0) + v));
      }
    }
    return { requests, errors5xx, le: own.le, buckets };
  }

  /** Per sticky service, the workers' resolver stats merged (counts summed, latencies at the worst worker's). */
  stickyServices(): Record<string, unknown> {
    const by: Record<string, unknown[]> = {};
    for (const s of this.supervisor.stats()) for (const [name, st] of Object.entries(s.sticky)) (by[name] ??= []).push(st);
    const out: Record<string, unknown> = {};
    for (const [name, list] of Object.entries(by)) out[name] = mergeStats(list);
    return out;
  }

  stop(drainTimeoutMs: number): Promise<void> {
    return this.supervisor.stop(drainTimeoutMs);
  }

  private fullState(): RoutingState {
    const snapshot = this.parts.routing();
    const eligibility: Array<[string, EligibilityWire]> = [];
    for (const [name, svc] of snapshot?.services ?? []) eligibility.push([name, wireOf(this.parts.health.eligibility(name), svc.members.map((m) => m.id))]);
    return { seq: this.supervisor.currentSeq, generation: this.parts.generation(), eligibility, ...this.configPart(), membership: this.parts.membership() ?? null };
  }

  private configPart(): { config: Config; certificates?: CertificateWire[] } {
    const certs = this.parts.certificates();
    return {
      config: this.parts.config(),
      ...(certs ? { certificates: certs.certificates.map((c) => ({ files: c.files, names: c.names, notAfter: c.notAfter, options: { ...c.options } as Record<string, unknown> })) } : {}),
    };
  }
}

/** Counters add up; percentiles and maxima take the worst; a breaker state other than closed wins. */
function mergeStats(list: readonly unknown[], key = ''): unknown {
  const first = list[0];
  if (typeof first === 'number') {
    const nums = list.filter((v): v is number => typeof v === 'number');
    return key === 'p50' || key === 'p99' || key === 'max' ? Math.max(...nums) : nums.reduce((a, b) => a + b, 0);
  }
  if (typeof first === 'string') return list.find((v) => v !== 'closed') ?? first;
  if (typeof first !== 'object' || first === null) return first;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(first)) out[k] = mergeStats(list.map((v) => (v as Record<string, unknown>)[k]), k);
  return out;
}

function wireOf(e: Eligibility & { version?: number; healthy?: number; total?: number }, members: readonly string[]): EligibilityWire {
  return {
    pickable: e.pickable,
    usable: members.filter((id) => e.usable(id)),
    panic: e.panic,
    version: e.version ?? 0,
    healthy: e.healthy ?? 0,
    total: e.total ?? 0,
  };
}
