/**
 * Committed entries (and snapshots) this peer could not apply. Apply is total (issue 13): an entry the
 * state machine refuses is recorded here — with an event, a metric and a log line from the driver — and
 * the log goes on; it never stops the driver, never blocks the entries after it and never prevents a
 * restart. Pure: every peer that applies the same log records the same rejections.
 */
import type { ConfChange } from './raft/index.js';
import { checkPeerId, fail, ok, parsePeerAddress, shown, type Checked } from '../model/validate/index.js';

export type RejectedKind = 'entry' | 'conf-change' | 'snapshot';

export interface RejectedEntry {
  readonly index: number;
  readonly kind: RejectedKind;
  readonly reason: string;
}

/** Enough to see what went wrong in status; the counter keeps the full count. */
const KEEP_RECENT = 20;

export class RejectionLog {
  private readonly last: RejectedEntry[] = [];
  private count = 0;

  record(r: RejectedEntry): void {
    this.count++;
    this.last.push(r);
    if (this.last.length > KEEP_RECENT) this.last.shift();
  }

  get total(): number {
    return this.count;
  }

  recent(): readonly RejectedEntry[] {
    return [...this.last];
  }
}

const CONF_CHANGE_FIELDS = ['kind', 'node', 'address'];
const decoder = new TextDecoder();

/**
 * A committed conf change, decoded and checked with the validators the admin API and the config use
 * (peer id, peer address with port 1–65535). `key` names the waiter (`kind:node`) when the entry was
 * readable enough to tell.
 */
export function checkConfChangeEntry(data: Uint8Array): Checked<ConfChange> & { readonly key?: string } {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch {
    return fail('conf change is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('conf change must be a JSON object');
  const o = v as Record<string, unknown>;
  const key = typeof o.kind === 'string' && typeof o.node === 'string' ? `${o.kind}:${o.node}` : undefined;
  const refuse = (message: string) => ({ ...fail(message), ...(key !== undefined ? { key } : {}) });
  if (o.kind !== 'add-voter' && o.kind !== 'add-learner' && o.kind !== 'remove') return refuse(`unknown conf change kind ${shown(o.kind)}`);
  const unknown = Object.keys(o).filter((k) => !CONF_CHANGE_FIELDS.includes(k));
  if (unknown.length > 0) return refuse(`unknown field(s) in conf change: ${unknown.slice(0, 5).map((k) => shown(k)).join(', ')}`);
  const node = checkPeerId(o.node);
  if (!node.ok) return refuse(node.message);
  if (o.address !== undefined) {
    const a = parsePeerAddress(o.address);
    if (!a.ok) return refuse(`peer ${node.value}: ${a.message}`);
  }
  return ok({ kind: o.kind, node: node.value, ...(o.address !== undefined ? { address: o.address as string } : {}) });
}
