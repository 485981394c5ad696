/**
 * The driver's snapshot payload: the address book of the peers beside the membership state machine's own
 * snapshot (membership.ts). Kept apart from node.ts because the format is a durable contract (snapshots
 * on disk and on the wire) while the Ready loop is not.
 */
import type { NodeId } from './raft/index.js';
import { checkPeerId, parsePeerAddress } from '../model/validate/index.js';

const SNAPSHOT_FORMAT = 1;

/** Snapshot data = u8 version | u32 n | n bytes of JSON {peers} | membership snapshot bytes. */
export function encodeNodeSnapshot(peers: ReadonlyMap<NodeId, string>, fsm: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify({ peers: Object.fromEntries(peers) }));
  const out = Buffer.alloc(5 + json.length + fsm.length);
  out.writeUInt8(SNAPSHOT_FORMAT, 0);
  out.writeUInt32LE(json.length, 1);
  json.copy(out, 5);
  out.set(fsm, 5 + json.length);
  return out;
}

/** Reads a node snapshot; never throws (a snapshot is applied or refused, issue 13). Bad peer entries are left out. */
export function decodeNodeSnapshot(data: Uint8Array): { ok: true; peers: Map<NodeId, string>; fsm: Uint8Array; dropped: string[] } | { ok: false; message: string } {
  if (data.length === 0) return { ok: true, peers: new Map(), fsm: data, dropped: [] };
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (b.length < 5 || b.readUInt8(0) !== SNAPSHOT_FORMAT) return { ok: false, message: `unsupported node snapshot format ${b.length ? b.readUInt8(0) : 'empty'}` };
  const n = b.readUInt32LE(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.subarray(5, 5 + n).toString('utf8'));
  } catch {
    return { ok: false, message: 'node snapshot peer table is not valid JSON' };
  }
  const table = (parsed as { peers?: unknown } | null)?.peers;
  if (typeof table !== 'object' || table === null) return { ok: false, message: 'node snapshot has no peer table' };
  const peers = new Map<NodeId, string>();
  const dropped: string[] = [];
  for (const [id, addr] of Object.entries(table)) {
    if (checkPeerId(id).ok && parsePeerAddress(addr).ok) peers.set(id, addr as string);
    else dropped.push(`peer ${id}`);
  }
  return { ok: true, peers, fsm: b.subarray(5 + n), dropped };
}
