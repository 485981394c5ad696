/**
 * One typed event bus for everything an operator watches live: health transitions, ejections, reloads,
 * membership and leader changes. The admin API streams it as Server-Sent Events and the dashboard
 * renders it. Names are `<area>:<event>` (undici diagnostics-channel style).
 *
 * Invariant: emit never throws into the emitter and never blocks; a listener that throws is removed
 * from the path of others (its error is swallowed after being counted), because the data path emits.
 */
import type { HealthStatus, ServiceName, UpstreamId } from '../model/index.js';

export interface EventMap {
  'health:changed': { service: ServiceName; upstream: UpstreamId; from: HealthStatus; to: HealthStatus; reason: string };
  'outlier:ejected': { service: ServiceName; upstream: UpstreamId; untilMs: number; timesEjected: number; reason: string };
  'outlier:restored': { service: ServiceName; upstream: UpstreamId; reason?: string };
  'panic:changed': { service: ServiceName; panic: boolean; healthy: number; total: number };
  'config:reloaded': { generation: number; source: string; restartRequired: string[] };
  'config:rejected': { source: string; errors: string[] };
  'membership:changed': { service: ServiceName; upstream: UpstreamId; change: 'put' | 'delete'; index: number };
  'raft:leader': { leader: string | undefined; term: number };
  'raft:role': { role: string; term: number };
  'raft:quorum': { hasQuorum: boolean };
  'raft:entry-rejected': { index: number; kind: 'entry' | 'conf-change' | 'snapshot'; reason: string };
  'sticky:store': { up: boolean; reason: string };
  'breaker:open': { service: ServiceName; upstream?: UpstreamId; kind: 'max-in-flight' | 'max-pending' };
}

export type EventName = keyof EventMap;
export interface BusEvent<K extends EventName = EventName> {
  readonly type: K;
  readonly at: number;
  readonly data: EventMap[K];
}

type AnyListener = (ev: BusEvent) => void;

export class EventBus {
  private readonly listeners = new Set<AnyListener>();
  private listenerErrors = 0;

  emit<K extends EventName>(type: K, data: EventMap[K]): void {
    if (this.listeners.size === 0) return;
    const ev: BusEvent<K> = { type, at: Date.now(), data };
    for (const l of this.listeners) {
      try {
        l(ev as BusEvent);
      } catch {
        this.listenerErrors++;
      }
    }
  }

  /** Subscribe to every event; returns the unsubscribe function. */
  subscribe(listener: AnyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  get errorCount(): number {
    return this.listenerErrors;
  }
}
