/**
 * One log line for every state change on the event bus (HAProxy's `Server api/app-4 is DOWN …`):
 * the operator who reads only the log sees what the dashboard and the SSE stream see. Each line
 * carries the event's own fields (the SSE `data`) plus `event: <type>`; the level is what an
 * operator expects: warn when something is lost (down, ejected, panic, no leader, quorum lost,
 * store down, breaker open), info when it comes back or is routine (up, restored, leader elected,
 * membership written, reload accepted), error for a rejected reload.
 *
 * Pure mapping (describe) plus one subscription (logStateChanges), so the mapping is testable and
 * the test can check that every event type has a line.
 */
import type { BusEvent, EventBus, EventMap, EventName } from './events.js';
import type { Logger } from './log.js';

export type Level = 'info' | 'warn' | 'error';

type Describers = { [K in EventName]: (d: EventMap[K]) => [Level, string] };

/** Every event type must have an entry (the type checker enforces it). */
const DESCRIBE: Describers = {
  'health:changed': (d) =>
    d.to === 'unhealthy'
      ? ['warn', `upstream ${d.service}/${d.upstream} is DOWN: ${d.reason}`]
      : ['info', `upstream ${d.service}/${d.upstream} is ${d.to === 'healthy' ? 'UP' : d.to}: ${d.reason}`],
  'outlier:ejected': (d) => ['warn', `upstream ${d.service}/${d.upstream} ejected until ${new Date(d.untilMs).toISOString()} (ejection ${d.timesEjected}): ${d.reason}`],
  'outlier:restored': (d) => ['info', `upstream ${d.service}/${d.upstream} back from ejection${d.reason ? ` (${d.reason})` : ''}`],
  'panic:changed': (d) =>
    d.panic
      ? ['warn', `service ${d.service} in panic mode: ${d.healthy} of ${d.total} upstreams healthy, routing to all of them`]
      : ['info', `service ${d.service} left panic mode: ${d.healthy} of ${d.total} upstreams healthy`],
  'config:reloaded': (d) =>
    d.restartRequired.length
      ? ['warn', `config reloaded (generation ${d.generation}, ${d.source}); changed keys that need a restart keep their running values: ${d.restartRequired.join(', ')}`]
      : ['info', `config reloaded (generation ${d.generation}, ${d.source})`],
  'config:rejected': (d) => ['error', `config rejected (${d.source}), the previous config keeps serving: ${d.errors.join('; ')}`],
  'membership:changed': (d) => ['info', `membership: ${d.change} ${d.service}/${d.upstream} (raft index ${d.index})`],
  'raft:leader': (d) => (d.leader === undefined ? ['warn', `raft: no leader (term ${d.term})`] : ['info', `raft: leader is ${d.leader} (term ${d.term})`]),
  'raft:role': (d) => ['info', `raft: this peer is now ${d.role} (term ${d.term})`],
  'raft:quorum': (d) => (d.hasQuorum ? ['info', 'raft: quorum regained'] : ['warn', 'raft: quorum lost; routing continues on the last known membership, membership writes fail']),
  'sticky:store': (d) => (d.up ? ['info', `sticky store UP: ${d.reason}`] : ['warn', `sticky store DOWN: ${d.reason}`]),
  'raft:entry-rejected': (d) => ['warn', `raft: committed ${d.kind} at index ${d.index} refused and skipped (the log goes on): ${d.reason}`],
  'breaker:open': (d) => ['warn', `circuit breaker open for ${d.upstream ? `${d.service}/${d.upstream}` : d.service}: ${d.kind} reached`],
};

/** The level and message of one event's log line. */
export function describe(ev: BusEvent): [Level, string] {
  return (DESCRIBE[ev.type] as (d: unknown) => [Level, string])(ev.data);
}

export const LOGGED_EVENTS = Object.keys(DESCRIBE) as EventName[];

/** Subscribes `log` to every state change on `bus`; returns the unsubscribe function. */
export function logStateChanges(bus: EventBus, log: Logger): () => void {
  return bus.subscribe((ev) => {
    const [level, msg] = describe(ev);
    log[level]({ event: ev.type, ...ev.data }, msg);
  });
}
