/**
 * Redis topologies (DESIGN.md §12) as plain data, and the pure views of them that status, metrics and
 * the dashboard show: which node is primary for which hash slots, and when a failover happened.
 *
 * `redis:` names exactly one of: a URL (one server), Sentinels + a master group name, or Redis
 * Cluster seed nodes. Everything here is I/O-free; redis-client.ts turns a topology into an ioredis
 * client and feeds its slot tables / master addresses into the functions below.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type RedisTopology =
  | { readonly kind: 'single'; readonly url: string }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly HostPort[] };

export type TopologyKind = RedisTopology['kind'];

/** One primary and what it serves: `all keys` (single, Sentinel) or slot ranges (`0-5460,10923`). */
export interface PrimaryView {
  readonly node: string;
  readonly serves: string;
  /** Cluster only: how many of the 16384 slots it owns. */
  readonly slots?: number;
}

export interface TopologyStatus {
  readonly kind: TopologyKind;
  /** ioredis client status (ready, connecting, reconnecting, …). */
  readonly status: string;
  readonly primaries: readonly PrimaryView[];
  /** Failovers this peer has seen since it started (a replica it knew took over from a primary). */
  readonly failovers: number;
  readonly lastFailover?: { readonly at: string; readonly from: string; readonly to: string };
  /** Last connection-level error (wrong password, CLUSTERDOWN, unreachable primary, …). */
  readonly lastError?: string;
  /** When lastError happened (ISO time): an old one after recovery is history, not the present. */
  readonly lastErrorAt?: string;
}

export const CLUSTER_SLOTS = 16384;

/** `host:port`, the one spelling every view uses. */
export function nodeName(h: HostPort): string {
  return `${h.host}:${h.port}`;
}

/** Compact ranges of a sorted slot list: [0,1,2,5] → "0-2,5". */
export function slotRanges(sorted: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/**
 * A Cluster slot table (index = slot, value = [primary, ...replicas], as ioredis keeps it) as one
 * PrimaryView per primary, busiest first. Slots no node serves are reported as primary `(none)`.
 */
export function primariesOf(table: ReadonlyArray<readonly string[] | undefined>): PrimaryView[] {
  const byNode = new Map<string, number[]>();
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    const owner = table[s]?.[0] ?? '(none)';
    let list = byNode.get(owner);
    if (!list) byNode.set(owner, (list = []));
    list.push(s);
  }
  return [...byNode.entries()]
    .map(([node, slots]) => ({ node, serves: slotRanges(slots), slots: slots.length }))
    .sort((a, b) => b.slots - a.slots || a.node.localeCompare(b.node));
}

/**
 * Failovers between two slot tables: a slot whose new primary was listed as one of its replicas
 * before. A resharding moves slots to another primary (not a former replica) and is not counted.
 * Returns each distinct `from → to` takeover once.
 */
export function failoversBetween(
  before: ReadonlyArray<readonly string[] | undefined>,
  after: ReadonlyArray<readonly string[] | undefined>,
): Array<{ from: string; to: string }> {
  const seen = new Map<string, { from: string; to: string }>();
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    const prev = before[s];
    const next = after[s]?.[0];
    if (!prev || next === undefined || prev[0] === undefined || prev[0] === next) continue;
    if (prev.indexOf(next, 1) > 0) seen.set(`${prev[0]}>${next}`, { from: prev[0], to: next });
  }
  return [...seen.values()];
}

/** CRC16-XMODEM (polynomial 0x1021), the checksum Redis Cluster maps keys to slots with. */
const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/**
 * The Cluster slot of `key` (Redis cluster spec, "Keys distribution model"): CRC16 of the key, or of
 * its hash tag — the text between the first `{` and the next `}` when that is not empty — mod 16384.
 * Keys are our own ASCII names (prefix, tag of a base64url sid or a lock name), so char codes are bytes.
 */
export function slotOf(key: string): number {
  let s = 0;
  let e = key.length;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) {
      s = open + 1;
      e = close;
    }
  }
  let crc = 0;
  for (let i = s; i < e; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >>> 8) ^ key.charCodeAt(i)) & 0xff]!;
  return crc % CLUSTER_SLOTS;
}
