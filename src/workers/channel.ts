/**
 * A worker's side of the IPC channel to its primary (protocol.ts): answers pings and metrics requests,
 * batches passive health outcomes, forwards bus events, carries pin store calls, and hands every
 * routing state to the worker in order.
 *
 * Invariants:
 * - States are handed to `onState` one at a time, in arrival order; the next waits for the previous
 *   one's promise (its routing snapshot built), and each is acked after it.
 * - Passive outcomes are run-length coded per (service, upstream) and flushed at most every
 *   RESULT_FLUSH_MS: a burst of successes costs one run, not one message per request.
 * - The primary going away (its channel disconnects) ends the worker: `onPrimaryGone` runs once.
 */
import {
  RESULT_FLUSH_MS, isProtocolMessage,
  type PinOp, type ResultRun, type RoutingState, type ToPrimary, type ToWorker, type WorkerMetrics, type WorkerStats,
} from './protocol.js';
import { ResultRuns } from './result-runs.js';

export interface ChannelHooks {
  onInit(init: Extract<ToWorker, { t: 'init' }>): Promise<void>;
  onState(state: RoutingState): Promise<void>;
  stats(): WorkerStats;
  metrics(): Promise<WorkerMetrics>;
  onDrain(): void;
  onPrimaryGone(): void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class PrimaryChannel {
  private queue: Promise<void> = Promise.resolve();
  private readonly results = new ResultRuns();
  private flushTimer: NodeJS.Timeout | undefined;
  private pinId = 0;
  private readonly pins = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly hooks: ChannelHooks) {
    process.on('message', this.onMessage);
    process.once('disconnect', () => {
      this.closed = true;
      this.hooks.onPrimaryGone();
    });
    this.send({ t: 'hello' });
  }

  send(m: ToPrimary): void {
    if (this.closed || !process.connected) return;
    try {
      process.send!(m);
    } catch {
      // The channel closed between the check and the send: the disconnect handler ends the worker.
    }
  }

  /** One passive health outcome (outlier detection counts them in the primary, across every worker). */
  record(service: string, upstream: string, result: ResultRun['result']): void {
    this.results.record(service, upstream, result);
    this.flushTimer ??= setTimeout(this.flushResults, RESULT_FLUSH_MS);
  }

  private readonly flushResults = (): void => {
    this.flushTimer = undefined;
    if (this.results.size === 0) return;
    this.send({ t: 'results', runs: this.results.drain() });
  };

  /** A pin store call run by the primary's memory store; rejects after `timeoutMs` (the store's budget). */
  callPin(op: PinOp, args: readonly unknown[], timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('primary channel closed'));
    const id = ++this.pinId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pins.delete(id);
        reject(new Error(`pin store call ${op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pins.set(id, { resolve, reject, timer });
      this.send({ t: 'pin', id, op, args });
    });
  }

  close(): void {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    process.off('message', this.onMessage);
    for (const p of this.pins.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('primary channel closed'));
    }
    this.pins.clear();
  }

  /** Sends the outcomes not yet flushed (before a drain ends the worker). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushResults();
  }

  private readonly onMessage = (raw: unknown): void => {
    if (!isProtocolMessage(raw)) return;
    const m = raw as ToWorker;
    switch (m.t) {
      case 'init':
        this.enqueue(() => this.hooks.onInit(m), m.state.seq);
        return;
      case 'state':
        this.enqueue(() => this.hooks.onState(m.state), m.state.seq);
        return;
      case 'ping':
        this.send({ t: 'pong', n: m.n, stats: this.hooks.stats() });
        return;
      case 'metrics':
        void this.hooks.metrics().then((metrics) => this.send({ t: 'metrics', id: m.id, metrics }), () => this.send({ t: 'metrics', id: m.id, metrics: { registry: [], histograms: {} } }));
        return;
      case 'pin-reply': {
        const p = this.pins.get(m.id);
        if (!p) return; // timed out already
        this.pins.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.value);
        else p.reject(new Error(m.error ?? 'pin store call failed'));
        return;
      }
      case 'drain':
        this.hooks.onDrain();
        return;
    }
  };

  private enqueue(apply: () => Promise<void>, seq: number): void {
    this.queue = this.queue.then(apply).then(
      () => this.send({ t: 'applied', seq }),
      (err: Error) => this.send({ t: 'failed', message: err.message }),
    );
  }
}
