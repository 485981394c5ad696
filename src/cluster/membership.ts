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
import { checkServiceName, checkUpstreamFields, checkUpstreamId, MAX_WEIGHT, shown } from '../model/validate/index.js';

/**
 * Enough for every admin client of a fleet (each peer's admin API uses a handful of client ids) with
 * ample headroom; 4096 sessions × ~200 bytes keeps the snapshot under ~1 MB.
 */
export const MAX_CLIENT_SESSIONS = 4096;
/** Client ids come from the x-meshgate-client header (app/cluster-part.ts allows 64 characters). */
const MAX_CLIENT_ID_LENGTH = 256;
export { MAX_WEIGHT };
const COMMAND_FIELDS: Record<string, readonly string[]> = {
  'put-upstream': ['op', 'service', 'id', 'url', 'weight', 'state', 'clientId', 'seq'],
  'delete-upstream': ['op', 'service', 'id', 'clientId', 'seq'],
};

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

/**
 * Checks a command with the same validators as the config schema and the admin API (model/validate), so
 * an entry the admin API let through always applies. Unknown fields are refused (an entry written by a
 * newer version with a field this one does not understand is rejected, not half-applied). Returns a
 * message for the first problem, or undefined when valid.
 */
export function validateCommand(c: unknown): string | undefined {
  if (!isObject(c)) return 'command must be a JSON object';
  const fields = typeof c.op === 'string' ? COMMAND_FIELDS[c.op] : undefined;
  if (fields === undefined || !Object.hasOwn(COMMAND_FIELDS, c.op as string)) return `unknown op ${shown(c.op)}`;
  const unknown = Object.keys(c).filter((k) => !fields.includes(k));
  if (unknown.length > 0) return `unknown field(s) in ${c.op as string}: ${unknown.slice(0, 5).map((k) => shown(k)).join(', ')}`;
  const service = checkServiceName(c.service);
  if (!service.ok) return service.message;
  const id = checkUpstreamId(c.id);
  if (!id.ok) return id.message;
  if (c.clientId !== undefined || c.seq !== undefined) {
    if (typeof c.clientId !== 'string' || c.clientId.length === 0 || c.clientId.length > MAX_CLIENT_ID_LENGTH) return 'clientId must be a non-empty string';
    if (typeof c.seq !== 'number' || !Number.isSafeInteger(c.seq) || c.seq < 0) return 'seq must be a non-negative integer when clientId is set';
  }
  if (c.op === 'put-upstream') {
    const fieldsOk = checkUpstreamFields(c, ['op', 'service', 'id', 'clientId', 'seq']);
    if (!fieldsOk.ok) return fieldsOk.message;
  }
  return undefined;
}

/** A registration as a snapshot stores it, checked like a put (a snapshot from another version may hold anything). */
function readRegistration(u: unknown): ClusterUpstream | undefined {
  const r = checkUpstreamFields(u);
  if (!r.ok || r.value.weight === undefined || r.value.state === undefined) return undefined;
  return Object.freeze({ url: r.value.url, weight: r.value.weight, state: r.value.state });
}

export class MembershipStateMachine {
  private services = new Map<ServiceName, Map<UpstreamId, ClusterUpstream>>();
  private sessions = new Map<string, Session>();
  private applied = 0;

  /** Index of the last entry applied (or restored from a snapshot). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Read-only view for the routing snapshot build (which copies what it keeps). Not a copy: do not hold it across applies if you need a frozen view. */
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

  /**
   * Replaces the whole state with a snapshot's. Never throws: an unreadable snapshot (bad JSON, another
   * format version) leaves the state as it was and says why; registrations or sessions that do not pass
   * today's checks are left out and listed in `dropped`, so every peer restoring the same bytes agrees.
   */
  restore(bytes: Uint8Array): RestoreResult {
    if (bytes.length === 0) {
      // The bootstrap snapshot of a brand-new cluster carries no application state.
      this.services = new Map();
      this.sessions = new Map();
      this.applied = 0;
      return { ok: true, dropped: [] };
    }
    let v: unknown;
    try {
      v = JSON.parse(decoder.decode(bytes));
    } catch {
      return { ok: false, message: 'membership snapshot is not valid JSON', dropped: [] };
    }
    if (!isObject(v) || v.v !== 1) return { ok: false, message: `membership snapshot version ${shown(isObject(v) ? v.v : v)} is not supported (this version reads 1)`, dropped: [] };
    if (!Array.isArray(v.services) || !Array.isArray(v.sessions) || typeof v.applied !== 'number') {
      return { ok: false, message: 'membership snapshot is missing services, sessions or applied', dropped: [] };
    }
    const dropped: string[] = [];
    const services = new Map<ServiceName, Map<UpstreamId, ClusterUpstream>>();
    for (const entry of v.services as unknown[]) {
      const [name, ups] = Array.isArray(entry) ? (entry as unknown[]) : [];
      if (!checkServiceName(name).ok || !Array.isArray(ups)) {
        dropped.push(`service ${shown(name)}`);
        continue;
      }
      const m = new Map<UpstreamId, ClusterUpstream>();
      for (const pair of ups as unknown[]) {
        const [id, u] = Array.isArray(pair) ? (pair as unknown[]) : [];
        const reg = checkUpstreamId(id).ok ? readRegistration(u) : undefined;
        if (reg === undefined) dropped.push(`upstream ${shown(name)}/${shown(id)}`);
        else m.set(id as string, reg);
      }
      if (m.size > 0) services.set(name as string, m);
    }
    const sessions = new Map<string, Session>();
    for (const entry of v.sessions as unknown[]) {
      const [id, seq, index, result] = Array.isArray(entry) ? (entry as unknown[]) : [];
      if (typeof id !== 'string' || typeof seq !== 'number' || typeof index !== 'number' || !isObject(result) || typeof result.ok !== 'boolean') {
        dropped.push(`session ${shown(id)}`);
        continue;
      }
      sessions.set(id, { seq, index, result: result as unknown as ApplyResult });
    }
    this.services = services;
    this.sessions = sessions;
    this.applied = v.applied;
    return { ok: true, dropped };
  }
}

export type RestoreResult = { readonly ok: true; readonly dropped: readonly string[] } | { readonly ok: false; readonly message: string; readonly dropped: readonly string[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
