/**
 * TLS to a service's upstreams (`services.<name>.upstreamTls`, DESIGN.md §9): the shape of the block
 * as written. Pure: what the files hold is checked where they are read (config/pem-files.ts); here
 * only what can be told from the YAML itself.
 *
 * Rules: keys ca, serverName, cert, key only; paths are non-empty strings; serverName is a DNS name
 * (RFC 6066 §3: SNI carries no IP literal); cert and key come together (mutual TLS) or not at all.
 */
import { isHostName, isIPv4 } from './address.js';
import { fail, ok, shown } from './result.js';
import type { FieldChecked } from './upstream.js';

/** PEM text read from the files, as the data path, the Upgrade path and the health probes use it. */
export interface UpstreamTlsMaterial {
  /** Sent as SNI and verified against the certificate; undefined: the upstream URL's host. */
  readonly serverName?: string;
  /** Trusted CA certificates; undefined: the system's trust store. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** Changes whenever any field above does: pools and probe agents are keyed by it. */
  readonly id: string;
}

export interface UpstreamTlsSettings {
  /** File paths as written (relative ones are resolved against the config file's directory). */
  readonly ca?: string;
  readonly serverName?: string;
  readonly cert?: string;
  readonly key?: string;
  /** Filled by the config loader from the files; absent only in a config never loaded from disk. */
  readonly material?: UpstreamTlsMaterial;
}

const KEYS = ['ca', 'serverName', 'cert', 'key'];
/** PATH_MAX on Linux; a longer value is a mistake, not a path. */
const MAX_PATH = 4096;

function checkPath(field: string, v: unknown): FieldChecked<string> {
  // eslint-disable-next-line no-control-regex
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PATH || /\u0000/.test(v)) return { ok: false, field, message: `${field} must be a file path, got ${shown(v)}` };
  return ok(v);
}

export function checkServerName(v: unknown): FieldChecked<string> {
  if (typeof v !== 'string' || !isHostName(v) || isIPv4(v)) return { ok: false, field: 'serverName', message: `serverName must be a DNS name such as api.internal (SNI cannot carry an IP address), got ${shown(v)}` };
  return ok(v);
}

export function checkUpstreamTls(v: unknown): FieldChecked<UpstreamTlsSettings> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('upstreamTls must be an object {ca?, serverName?, cert?, key?}');
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !KEYS.includes(k));
  if (unknown.length > 0) return { ok: false, message: `unknown field(s): ${unknown.slice(0, 5).map((k) => shown(k)).join(', ')}`, unknownKeys: unknown };
  const out: { ca?: string; serverName?: string; cert?: string; key?: string } = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    if (o[k] === undefined) continue;
    const p = checkPath(k, o[k]);
    if (!p.ok) return p;
    out[k] = p.value;
  }
  if (o.serverName !== undefined) {
    const n = checkServerName(o.serverName);
    if (!n.ok) return n;
    out.serverName = n.value;
  }
  if ((out.cert === undefined) !== (out.key === undefined)) {
    const missing = out.cert === undefined ? 'cert' : 'key';
    return { ok: false, field: out.cert === undefined ? 'key' : 'cert', message: `upstreamTls needs both cert and key for mutual TLS, or neither (${missing} is missing)` };
  }
  return ok(out);
}
