/**
 * An upstream registration: {url, weight, state} under an id (DESIGN.md §2, §3). The config schema,
 * the admin API (PUT …/upstreams/{id}) and the membership state machine all check it here, so a value
 * one layer accepts is never refused by a deeper one (or by undici's Pool, which takes origins only).
 */
import type { UpstreamState } from '../index.js';
import { checkUpstreamId } from './names.js';
import { fail, ok, shown, type Checked } from './result.js';

/** Weights are relative; 10,000:1 is already beyond what a ring or table expresses meaningfully. */
export const MAX_WEIGHT = 10_000;
export const UPSTREAM_STATES: readonly UpstreamState[] = ['active', 'draining', 'disabled'];
/** Far above any real origin; keeps a hostile entry from bloating every peer's log and status. */
const MAX_URL_LENGTH = 2048;
const URL_RULE = 'expected an origin URL such as http://127.0.0.1:9001 (http or https, no path, query, fragment or credentials)';

/** An origin URL: http(s), a host, an optional port 1–65535, nothing else (a lone trailing "/" is allowed). */
export function checkUpstreamUrl(v: unknown): Checked<string> {
  if (typeof v !== 'string') return fail(`url must be a string: ${URL_RULE}`);
  if (v.length > MAX_URL_LENGTH) return fail(`url is longer than ${MAX_URL_LENGTH} characters`);
  // WHATWG URL parsing strips or percent-encodes these silently; a stored URL must mean what it shows.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u{10ffff}#?@\\]/u.test(v)) return fail(`url ${shown(v)}: ${URL_RULE}`);
  if (!/^https?:\/\//i.test(v)) return fail(`url ${shown(v)}: the scheme must be http:// or https://`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return fail(`url ${shown(v)} is not a valid URL: ${URL_RULE}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return fail(`url ${shown(v)}: the scheme must be http or https`);
  if (u.hostname === '') return fail(`url ${shown(v)} has no host`);
  if (u.username !== '' || u.password !== '') return fail(`url ${shown(v)}: credentials are not allowed in an upstream URL`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '') return fail(`url ${shown(v)}: ${URL_RULE}`);
  if (u.port === '0') return fail(`url ${shown(v)}: port 0 cannot be connected to`);
  // "http://host" and "http://host/" are the one origin; anything else after the authority was refused above.
  const rest = v.slice(v.indexOf('//') + 2);
  if (rest.indexOf('/') !== -1 && rest.indexOf('/') !== rest.length - 1) return fail(`url ${shown(v)}: ${URL_RULE}`);
  return ok(v);
}

/** An integer in 1..MAX_WEIGHT. YAML and JSON both give numbers; a string is refused, not coerced. */
export function checkWeight(v: unknown): Checked<number> {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_WEIGHT) return fail(`weight must be an integer in 1..${MAX_WEIGHT}, got ${shown(v)}`);
  return ok(v);
}

export function checkUpstreamState(v: unknown): Checked<UpstreamState> {
  if (typeof v !== 'string' || !(UPSTREAM_STATES as readonly string[]).includes(v)) return fail(`state must be one of ${UPSTREAM_STATES.join(', ')}, got ${shown(v)}`);
  return ok(v as UpstreamState);
}

export interface UpstreamFields {
  readonly url: string;
  readonly weight?: number;
  readonly state?: UpstreamState;
}

const FIELDS = ['url', 'weight', 'state'];

/** A refusal that says which field is wrong (the config loader turns it into a line and column). */
export type FieldChecked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string; readonly field?: string; readonly unknownKeys?: readonly string[] };

/** The body of PUT …/upstreams/{id} (and the fields of a put-upstream command): {url, weight?, state?}, nothing else. */
export function checkUpstreamFields(v: unknown, extraKeys: readonly string[] = []): FieldChecked<UpstreamFields> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('expected an object {url, weight?, state?}');
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !FIELDS.includes(k) && !extraKeys.includes(k));
  if (unknown.length > 0) return { ok: false, message: `unknown field(s): ${unknown.slice(0, 5).map((k) => shown(k)).join(', ')}`, unknownKeys: unknown };
  const url = checkUpstreamUrl(o.url);
  if (!url.ok) return { ...url, field: 'url' };
  const out: { url: string; weight?: number; state?: UpstreamState } = { url: url.value };
  if (o.weight !== undefined) {
    const w = checkWeight(o.weight);
    if (!w.ok) return { ...w, field: 'weight' };
    out.weight = w.value;
  }
  if (o.state !== undefined) {
    const s = checkUpstreamState(o.state);
    if (!s.ok) return { ...s, field: 'state' };
    out.state = s.value;
  }
  return ok(out);
}

export interface UpstreamEntry {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly state: UpstreamState;
}

/** A static upstream of config.yaml: {id, url, weight?, state?} with defaults weight 1, state active. */
export function checkUpstreamEntry(v: unknown): FieldChecked<UpstreamEntry> {
  const f = checkUpstreamFields(v, ['id']);
  const id = checkUpstreamId((v as { id?: unknown } | null)?.id);
  if (!f.ok && (f.unknownKeys !== undefined || f.field === undefined)) return f;
  if (!id.ok) return { ...id, field: 'id' };
  if (!f.ok) return f;
  return ok({ id: id.value, url: f.value.url, weight: f.value.weight ?? 1, state: f.value.state ?? 'active' });
}
