/**
 * The replicated state machine of the Raft group: service → upstream id → {url, weight, state}
 * (DESIGN.md §3). Pure: no I/O, no clock, no randomness (ESLint enforces it), so every peer that applies the
 * same committed entries in the same order reaches the same state and the same results.
 *
 * Commands (UTF-8 JSON in the entry, wrapped in a proposal envelope `{"p": proposalId, "c": command}` so
 * the proposing peer can match the applied entry to its waiting caller):
 *   {op:"put-upstream", service, id, url, weight?, state?, clientId?, seq?}
 *   {op:"delete-upstream", service, id, clientId?, seq?}
 *
 * Invariants:
 * - Exactly-once for retried writes (Raft thesis §6.3, R-D4): a command with (clientId, seq) whose seq was
 *   already applied for that client returns the recorded result and changes nothing; an older seq is
 *   refused as stale. The per-client table is part of the snapshot, so de-duplication survives restarts
 *   and snapshot installs.
 * - A malformed command never throws: it yields a deterministic `{ok:false}` result on every peer, because a
 *   bad entry that is committed must not stop the cluster from applying the log.
 * - The client table is bounded (MAX_CLIENT_SESSIONS); the session applied longest ago is evicted. The
 *   choice depends only on applied indexes, so every peer evicts the same one.
 */
import type { ClusterMembership, ClusterUpstream, ServiceName, UpstreamId, UpstreamState } from '../model/index.js';

/**
 * Enough for every admin client of a fleet (each peer's admin API uses a handful of client ids) with
 * ample headroom; 4096 sessions × ~200 bytes keeps the snapshot under ~1 MB.
 */
export const MAX_CLIENT_SESSIONS = 4096;
/** Ids and service names are path segments in the admin API; 256 bytes is far above any real name. */
const MAX_NAME_LENGTH = 256;
/** Weights are relative; a million-to-one ratio is beyond what any balancer can express meaningfully. */
export const MAX_WEIGHT = 1_000_000;
const STATES: readonly UpstreamState[] = ['active', 'draining', 'disabled'];

export type MembershipCommand =
  | {
      readonly op: 'put-upstream';
      readonly service: ServiceName;
      readonly id: UpstreamId;
      readonly url: string;
      readonly weight?: number;
      readonly state?: UpstreamState;
      readonly clientId?: string;
      readonly seq?: number;
    }
  | {
      readonly op: 'delete-upstream';
      readonly service: ServiceName;
      readonly id: UpstreamId;
      readonly clientId?: string;
      readonly seq?: number;
    };

export type MembershipErrorCode = 'MG_ERR_MEMBERSHIP_INVALID' | 'MG_ERR_MEMBERSHIP_NOT_FOUND' | 'MG_ERR_MEMBERSHIP_STALE_SEQ';

export interface MembershipChange {
  readonly service: ServiceName;
  readonly upstream: UpstreamId;
  readonly change: 'put' | 'delete';
  /** The registration after a put. */
  readonly value?: ClusterUpstream;
}

export type ApplyResult =
  | { readonly ok: true; readonly change: MembershipChange; readonly created?: boolean; readonly duplicate?: boolean }
  | { readonly ok: false; readonly code: MembershipErrorCode; readonly message: string; readonly duplicate?: boolean };

interface Session {
  seq: number;
  index: number;
  result: ApplyResult;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Wraps a command with the proposing peer's proposal id (the entry's data). */
export function encodeProposal(proposalId: string, command: MembershipCommand): Uint8Array {
  return encoder.encode(JSON.stringify({ p: proposalId, c: command }));
}

/** Reads an entry's data back: the proposal id (if any) and the raw command (validated by apply). */
export function decodeProposal(data: Uint8Array): { proposalId: string | undefined; command: unknown } {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch {
    return { proposalId: undefined, command: undefined };
  }
  if (isObject(v) && 'c' in v) return { proposalId: typeof v.p === 'string' ? v.p : undefined, command: v.c };
  return { proposalId: undefined, command: v };
}

/** Checks a command's shape; returns a message for the first problem, or undefined when valid. */
export function validateCommand(c: unknown): string | undefined {
  if (!isObject(c)) return 'command must be a JSON object';
  if (c.op !== 'put-upstream' && c.op !== 'delete-upstream') return `unknown op ${JSON.stringify(c.op)}`;
  for (const k of ['service', 'id'] as const) {
    const v = c[k];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME_LENGTH) return `${k} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`;
  }
  if (c.clientId !== undefined || c.seq !== undefined) {
    if (typeof c.clientId !== 'string' || c.clientId.length === 0 || c.clientId.length > MAX_NAME_LENGTH) return 'clientId must be a non-empty string';
    if (typeof c.seq !== 'number' || !Number.isSafeInteger(c.seq) || c.seq < 0) return 'seq must be a non-negative integer when clientId is set';
  }
  if (c.op === 'put-upstream') {
    if (typeof c.url !== 'string') return 'url must be a string';
    let u: URL;
    try {
      u = new URL(c.url);
    } catch {
      return `url ${JSON.stringify(c.url)} is not a valid URL`;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `url must be http or https, got ${u.protocol}`;
    if (c.weight !== undefined && (typeof c.weight !== 'number' || !Number.isFinite(c.weight) || c.weight <= 0 || c.weight > MAX_WEIGHT)) {
      return `weight must be a number in (0, ${MAX_WEIGHT}]`;
    }
    if (c.state !== undefined && !STATES.includes(c.state as UpstreamState)) return `state must be one of ${STATES.join(', ')}`;
  }
  return undefined;
}

export class MembershipStateMachine {
  private services = new Map<ServiceName, Map<UpstreamId, ClusterUpstream>>();
  private sessions = new Map<string, Session>();
  private applied = 0;

  /** Index of the last entry applied (or restored from a snapshot). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Read-only view for the routing table. Not a copy: do not hold it across applies if you need a frozen view. */
  view(): ClusterMembership {
    return this.services;
  }

  get(service: ServiceName, id: UpstreamId): ClusterUpstream | undefined {
    return this.services.get(service)?.get(id);
  }

  /** Applies one committed entry's command at `index`. Never throws on bad input. */
  apply(index: number, command: unknown): ApplyResult {
    if (index <= this.applied) throw new Error(`membership: entry ${index} applied twice (applied ${this.applied})`);
    this.applied = index;
    const problem = validateCommand(command);
    if (problem !== undefined) return { ok: false, code: 'MG_ERR_MEMBERSHIP_INVALID', message: problem };
    const c = command as MembershipCommand;

    if (c.clientId !== undefined && c.seq !== undefined) {
      const s = this.sessions.get(c.clientId);
      if (s && c.seq === s.seq) return { ...s.result, duplicate: true };
      if (s && c.seq < s.seq) {
        return { ok: false, code: 'MG_ERR_MEMBERSHIP_STALE_SEQ', message: `seq ${c.seq} is older than ${s.seq}, the last one applied for client ${c.clientId}`, duplicate: true };
      }
      const result = this.execute(c);
      this.sessions.delete(c.clientId); // re-insert so iteration order stays "least recently applied first"
      this.sessions.set(c.clientId, { seq: c.seq, index, result });
      if (this.sessions.size > MAX_CLIENT_SESSIONS) this.evictOldestSession();
      return result;
    }
    return this.execute(c);
  }

  private execute(c: MembershipCommand): ApplyResult {
    if (c.op === 'put-upstream') {
      let svc = this.services.get(c.service);
      if (!svc) {
        svc = new Map();
        this.services.set(c.service, svc);
      }
      const prev = svc.get(c.id);
      const value: ClusterUpstream = Object.freeze({
        url: c.url,
        weight: c.weight ?? prev?.weight ?? 1,
        state: c.state ?? prev?.state ?? 'active',
      });
      svc.set(c.id, value);
      return { ok: true, created: prev === undefined, change: { service: c.service, upstream: c.id, change: 'put', value } };
    }
    const svc = this.services.get(c.service);
    if (!svc || !svc.has(c.id)) {
      return { ok: false, code: 'MG_ERR_MEMBERSHIP_NOT_FOUND', message: `upstream ${c.id} is not registered in the cluster for service ${c.service}` };
    }
    svc.delete(c.id);
    if (svc.size === 0) this.services.delete(c.service);
    return { ok: true, change: { service: c.service, upstream: c.id, change: 'delete' } };
  }

  private evictOldestSession(): void {
    // Sessions are kept in apply order (delete + set on every apply), so the first one is the oldest.
    const first = this.sessions.keys().next();
    if (!first.done) this.sessions.delete(first.value);
  }

  /** Marks an index as applied without a command (leader no-op, conf change). */
  skip(index: number): void {
    if (index > this.applied) this.applied = index;
  }

  /** Full state as bytes (JSON, versioned). */
  snapshot(): Uint8Array {
    const services: [string, [string, ClusterUpstream][]][] = [];
    for (const [name, ups] of this.services) services.push([name, [...ups]]);
    const sessions: [string, number, number, ApplyResult][] = [];
    for (const [id, s] of this.sessions) sessions.push([id, s.seq, s.index, s.result]);
    return encoder.encode(JSON.stringify({ v: 1, applied: this.applied, services, sessions }));
  }

  /** Replaces the whole state with a snapshot's. Throws on an unreadable snapshot (caller fails closed). */
  restore(bytes: Uint8Array): void {
    if (bytes.length === 0) {
      // The bootstrap snapshot of a brand-new cluster carries no application state.
      this.services = new Map();
      this.sessions = new Map();
      this.applied = 0;
      return;
    }
    const v = JSON.parse(decoder.decode(bytes)) as {
      v: number;
      applied: number;
      services: [string, [string, ClusterUpstream][]][];
      sessions: [string, number, number, ApplyResult][];
    };
    if (v.v !== 1) throw new Error(`membership snapshot version ${String(v.v)} is not supported`);
    const services = new Map<ServiceName, Map<UpstreamId, ClusterUpstream>>();
    for (const [name, ups] of v.services) services.set(name, new Map(ups.map(([id, u]) => [id, Object.freeze({ url: u.url, weight: u.weight, state: u.state })])));
    const sessions = new Map<string, Session>();
    for (const [id, seq, index, result] of v.sessions) sessions.set(id, { seq, index, result });
    this.services = services;
    this.sessions = sessions;
    this.applied = v.applied;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
