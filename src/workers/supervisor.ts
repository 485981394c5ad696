/**
 * The primary's side of `node.workers: N` (DESIGN.md §10, docs/workers.md): forks the data-plane
 * workers with node:cluster, hands each the routing state, keeps them alive, and answers for them.
 *
 * Why node:cluster and not SO_REUSEPORT: Node 20 (the machines' runtime) has no `reusePort` on
 * net.Server. Why SCHED_NONE (every worker accepts on the one shared socket, as NGINX's workers do
 * without accept_mutex) and not node:cluster's Linux default round-robin (the primary accepts and
 * hands each connection over IPC): measured in bench/macro/proxies-workers.ts, round-robin cost the
 * primary ~100 µs of CPU per connection and took `Connection: close` to 0.38–0.43× of one worker's
 * efficiency, against 0.78–0.91× with SCHED_NONE; keep-alive was equal (0.78–0.95× both). The price is
 * a less even split (49/51 to 60/40 of requests measured); a stopped worker also stops taking new
 * connections, where round-robin kept handing it some. NODE_CLUSTER_SCHED_POLICY=rr (Node's own
 * variable) brings round-robin back.
 *
 * Invariants:
 * - A worker gets `init` (the complete state) exactly once, when it says hello, then every later
 *   broadcast in order; so its acks are monotonic and `synced()` can compare sequence numbers.
 * - A worker that exits while the peer is not stopping is replaced after a backoff (100 ms doubling to
 *   10 s while replacements keep dying young; reset once one lives STABLE_MS). One that stops answering
 *   pings for HANG_AFTER_MS (SIGSTOP, a busy loop) is SIGKILLed and replaced.
 * - Every timer is cleared by `stop()`; `stop()` resolves once every worker has exited (SIGKILL after
 *   the drain deadline), so no process and no listener outlives the primary's stop.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../observability/log.js';
import {
  HANG_AFTER_MS, PING_INTERVAL_MS, isProtocolMessage,
  type PinOp, type ResultRun, type RoutingState, type ToPrimary, type ToWorker, type WorkerMetrics, type WorkerStats,
} from './protocol.js';

/** A replacement that lives this long resets the restart backoff. */
const STABLE_MS = 10_000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker's answer to a metrics request that takes longer is left out of that scrape. */
const METRICS_TIMEOUT_MS = 2_000;
/** A worker that has not started serving within this is killed and replaced (a loaded machine starts slowly). */
const START_TIMEOUT_MS = 30_000;

export type WorkerState = 'starting' | 'ready' | 'draining';

export interface WorkerView {
  readonly index: number;
  readonly pid: number | undefined;
  readonly state: WorkerState;
  readonly restarts: number;
  readonly requests: number;
  readonly inFlight: number;
  readonly websockets: number;
  readonly startedAt: string;
}

export interface SupervisorHooks {
  /** The complete routing state now (sent as `init` to a worker coming online). */
  fullState(): RoutingState;
  /** Passive health outcomes from a worker. */
  onResults(runs: readonly ResultRun[]): void;
  /** A bus event a worker raised (breaker open, sticky store up/down…). */
  onEvent(type: string, data: unknown): void;
  /** A pin store call of a worker (no `redis:`): the primary's memory store answers. */
  onPin(op: PinOp, args: readonly unknown[]): Promise<unknown>;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  state: WorkerState;
  restarts: number;
  /** Replacements that died young, in a row (drives the backoff). */
  quickDeaths: number;
  startedAtMs: number;
  ackedSeq: number;
  /** The worker has had its init (every later broadcast goes to it). */
  inited: boolean;
  /** The last seq this worker was sent (init or broadcast). */
  sentSeq: number;
  lastPongMs: number;
  stats: WorkerStats;
  ports: { data: number; tls: number } | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  onReady: Array<() => void>;
}

const NO_STATS: WorkerStats = { requests: 0, inFlight: 0, websockets: 0, draining: false, upstreams: [], services: [], sticky: {} };

export class WorkerSupervisor {
  private readonly slots: Slot[] = [];
  private seq = 0;
  private stopping = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private pingN = 0;
  private metricsId = 0;
  private readonly metricsWaits = new Map<number, { left: Set<number>; got: WorkerMetrics[]; done: (m: WorkerMetrics[]) => void }>();
  private syncWaits: Array<{ seq: number; resolve: () => void }> = [];
  private startFailed: ((err: Error) => void) | undefined;

  constructor(
    private readonly count: number,
    private readonly hooks: SupervisorHooks,
    private readonly log: Logger,
    private readonly opts: { readonly pretty: boolean; readonly now?: () => number } = { pretty: false },
  ) {
    // Structured clone over IPC: the membership's Maps cross as Maps.
    // Before the first fork: the policy is fixed then. Node's own variable, when set, wins.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ serialization: 'advanced' });
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** Forks every worker; resolves once each listens, with the ports they bound (the same for all). */
  async start(): Promise<{ dataPort: number; tlsPort: number }> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.count; i++) {
      const slot: Slot = {
        index: i, worker: undefined, state: 'starting', restarts: 0, quickDeaths: 0, startedAtMs: 0, ackedSeq: 0, sentSeq: 0, inited: false,
        lastPongMs: 0, stats: NO_STATS, ports: undefined, restartTimer: undefined, onReady: [],
      };
      this.slots.push(slot);
      ready.push(new Promise((resolve) => slot.onReady.push(resolve)));
      this.fork(slot);
    }
    // Pings from the start: a worker that hangs while starting is replaced too.
    this.heartbeat = setInterval(() => this.beat(), PING_INTERVAL_MS);
    // A worker that cannot start (its listener's port taken) fails the peer's start, as a single process would.
    await Promise.race([Promise.all(ready), new Promise<never>((_, reject) => (this.startFailed = reject))]);
    this.startFailed = undefined;
    const first = this.slots[0]!.ports!;
    return { dataPort: first.data, tlsPort: first.tls };
  }

  /** The sequence number the next state will carry. */
  nextSeq(): number {
    return ++this.seq;
  }

  get currentSeq(): number {
    return this.seq;
  }

  /** Sends a state (built with `nextSeq()`) to every worker that has had its init. */
  broadcast(state: RoutingState): void {
    for (const s of this.slots) {
      if (s.worker === undefined || !s.inited) continue; // its init (later) carries this state
      s.sentSeq = state.seq;
      this.send(s, { t: 'state', state });
    }
  }

  /** Resolves once every live worker routes with every state broadcast so far (a dead one is not waited for). */
  synced(): Promise<void> {
    const seq = this.seq;
    if (this.allAcked(seq)) return Promise.resolve();
    return new Promise((resolve) => this.syncWaits.push({ seq, resolve }));
  }

  private allAcked(seq: number): boolean {
    return this.slots.every((s) => s.worker === undefined || !s.inited || s.ackedSeq >= Math.min(seq, s.sentSeq));
  }

  private settleSyncs(): void {
    if (this.syncWaits.length === 0) return;
    const waiting = this.syncWaits;
    this.syncWaits = [];
    for (const w of waiting) {
      if (this.allAcked(w.seq)) w.resolve();
      else this.syncWaits.push(w);
    }
  }

  /** Every worker's metrics (those that answer within METRICS_TIMEOUT_MS). */
  metrics(): Promise<WorkerMetrics[]> {
    const live = this.slots.filter((s) => s.worker !== undefined && s.state !== 'starting');
    if (live.length === 0) return Promise.resolve([]);
    const id = ++this.metricsId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), METRICS_TIMEOUT_MS);
      const finish = () => {
        clearTimeout(timer);
        const w = this.metricsWaits.get(id);
        this.metricsWaits.delete(id);
        resolve(w?.got ?? []);
      };
      this.metricsWaits.set(id, { left: new Set(live.map((s) => s.index)), got: [], done: finish });
      for (const s of live) this.send(s, { t: 'metrics', id });
    });
  }

  /** What /api/v1/status lists. */
  views(): WorkerView[] {
    return this.slots.map((s) => ({
      index: s.index,
      pid: s.worker?.process.pid,
      state: s.worker === undefined ? 'starting' : s.state,
      restarts: s.restarts,
      requests: s.stats.requests,
      inFlight: s.stats.inFlight,
      websockets: s.stats.websockets,
      startedAt: new Date(s.startedAtMs).toISOString(),
    }));
  }

  /** The last stats of every live worker (for the status page's per-upstream sums). */
  stats(): WorkerStats[] {
    return this.slots.filter((s) => s.worker !== undefined).map((s) => s.stats);
  }

  /** At least one worker serves. */
  get anyReady(): boolean {
    return this.slots.some((s) => s.worker !== undefined && s.state === 'ready');
  }

  /** Drains every worker (each finishes its in-flight requests up to its drain timeout) and waits for every exit. */
  async stop(drainTimeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.slots) if (s.restartTimer) clearTimeout(s.restartTimer);
    const alive = this.slots.filter((s) => s.worker !== undefined);
    const exits = alive.map((s) => new Promise<void>((resolve) => (s.worker!.isDead() ? resolve() : s.worker!.once('exit', () => resolve()))));
    for (const s of alive) {
      s.state = 'draining';
      this.send(s, { t: 'drain' });
    }
    // A worker that cannot finish its drain in time (hung, stopped) is killed: no process outlives the peer.
    const deadline = setTimeout(() => {
      for (const s of alive) if (s.worker && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
    }, drainTimeoutMs + 2_000);
    await Promise.all(exits);
    clearTimeout(deadline);
    for (const w of this.syncWaits) w.resolve();
    this.syncWaits = [];
    for (const w of this.metricsWaits.values()) w.done(w.got);
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    const worker = cluster.fork({ MESHGATE_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAtMs = this.now();
    slot.lastPongMs = this.now();
    slot.ackedSeq = -1;
    slot.sentSeq = 0;
    slot.inited = false;
    slot.stats = NO_STATS;
    worker.on('message', (m: unknown) => {
      if (isProtocolMessage(m)) this.onMessage(slot, m as ToPrimary);
    });
    worker.on('error', (err) => this.log.warn({ worker: slot.index, err }, 'worker channel error'));
    worker.on('exit', (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onMessage(slot: Slot, m: ToPrimary): void {
    switch (m.t) {
      case 'hello': {
        const state = this.hooks.fullState();
        slot.inited = true;
        slot.sentSeq = state.seq;
        this.send(slot, { t: 'init', index: slot.index, count: this.count, pretty: this.opts.pretty, state });
        return;
      }
      case 'ready':
        slot.state = 'ready';
        slot.ports = { data: m.dataPort, tls: m.tlsPort };
        for (const f of slot.onReady.splice(0)) f();
        this.log.info({ worker: slot.index, pid: slot.worker?.process.pid }, 'worker serving');
        return;
      case 'applied':
        slot.ackedSeq = Math.max(slot.ackedSeq, m.seq);
        this.settleSyncs();
        return;
      case 'pong':
        slot.lastPongMs = this.now();
        slot.stats = m.stats;
        return;
      case 'metrics': {
        const w = this.metricsWaits.get(m.id);
        if (!w) return;
        w.got.push(m.metrics);
        w.left.delete(slot.index);
        if (w.left.size === 0) w.done(w.got);
        return;
      }
      case 'results':
        this.hooks.onResults(m.runs);
        return;
      case 'event':
        this.hooks.onEvent(m.type, m.data);
        return;
      case 'pin':
        this.hooks.onPin(m.op, m.args).then(
          (value) => this.send(slot, { t: 'pin-reply', id: m.id, ok: true, value }),
          (err: Error) => this.send(slot, { t: 'pin-reply', id: m.id, ok: false, error: err.message }),
        );
        return;
      case 'failed':
        this.log.error({ worker: slot.index, reason: m.message }, 'worker failed');
        this.startFailed?.(new Error(`worker ${slot.index}: ${m.message}`));
        return;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    this.settleSyncs();
    for (const [id, w] of this.metricsWaits) {
      if (w.left.delete(slot.index) && w.left.size === 0) {
        this.metricsWaits.delete(id);
        w.done(w.got);
      }
    }
    if (this.stopping) return;
    const lived = this.now() - slot.startedAtMs;
    slot.quickDeaths = lived >= STABLE_MS ? 0 : slot.quickDeaths + 1;
    const delay = slot.quickDeaths === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (slot.quickDeaths - 1));
    slot.restarts++;
    this.log.warn({ worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: delay, restarts: slot.restarts }, 'worker exited; replacing it');
    slot.restartTimer = setTimeout(() => {
      if (!this.stopping) this.fork(slot);
    }, delay);
  }

  /** Pings every worker; one silent for HANG_AFTER_MS is killed (its exit replaces it). */
  private beat(): void {
    const now = this.now();
    const n = ++this.pingN;
    for (const s of this.slots) {
      if (s.worker === undefined || s.state === 'draining') continue;
      if (now - s.lastPongMs > (s.state === 'starting' ? START_TIMEOUT_MS : HANG_AFTER_MS)) {
        this.log.error({ worker: s.index, pid: s.worker.process.pid, silentMs: now - s.lastPongMs }, 'worker stopped answering; killing it');
        s.worker.process.kill('SIGKILL');
        continue;
      }
      this.send(s, { t: 'ping', n });
    }
  }

  private send(slot: Slot, m: ToWorker): void {
    const w = slot.worker;
    if (w === undefined || !w.isConnected()) return;
    try {
      w.send(m);
    } catch (err) {
      // The channel closed under us (the worker is exiting); its exit event takes it from here.
      this.log.debug({ worker: slot.index, err }, 'worker send failed');
    }
  }
}
