/**
 * Builds the access-log line function for a format once at start (a list of small field writers),
 * so a request pays only for the fields that were asked for.
 *
 * Values: durations in ms rounded to the µs (`12.345`); `upstreamAddress` is the upstream's
 * host:port (NGINX $upstream_addr); `bytesSent` the response body bytes written to the client
 * (NGINX $body_bytes_sent), `bytesReceived` the request body bytes read; `time` is epoch ms in JSON
 * (pino's own `time`) and ISO 8601 in text. A missing value is left out of JSON and is `-` in text.
 */
import type { AccessLogField } from '../config/access-log.js';
import type { AccessContext, AccessLog } from './log.js';

export type LineFn = (...a: Parameters<AccessLog['write']>) => string;

/** The request being logged, as the field writers read it (one scratch object, set per line). */
interface Row {
  method: string;
  path: string;
  status: number;
  service: string;
  upstream: string | undefined;
  durationMs: number;
  requestId: string;
  attempts: number;
  reason: string;
  ctx: AccessContext | undefined;
}

const us = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * `String(v)` for the numbers a line holds, without V8's double-to-string conversion where it can be
 * avoided: an integer is a fast path already, and a duration rounded to the µs (at most three decimals)
 * is written from its integer count of thousandths. The two durations of the default fields cost 530 of
 * a line's 955 ns through `String()`, 60 this way. The text is the same as `String(v)` (a property test
 * compares them); anything else (negative, huge, more decimals) goes through `String()`.
 */
export function numberText(v: number): string {
  if (Number.isInteger(v)) return `${v}`;
  const n = Math.round(v * 1000);
  if (!(v > 0) || n >= 1e15 || n / 1000 !== v) return String(v);
  const frac = n % 1000;
  const whole = (n - frac) / 1000;
  // frac is 1..999 (an integer v took the first branch); trailing zeros are not written.
  if (frac % 100 === 0) return `${whole}.${frac / 100}`;
  if (frac % 10 === 0) return `${whole}.${frac < 100 ? '0' : ''}${frac / 10}`;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

function header(r: Row, name: string): string | undefined {
  const v = r.ctx?.req?.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** host:port of an upstream URL, remembered for the last URL seen (consecutive lines mostly repeat it). */
let lastUrl = '';
let lastHostPort = '';
function hostPort(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  if (url === lastUrl) return lastHostPort;
  lastUrl = url;
  lastHostPort = stripScheme(url);
  return lastHostPort;
}

function stripScheme(url: string): string {
  const i = url.indexOf('://');
  const rest = i === -1 ? url : url.slice(i + 3);
  return rest.endsWith('/') ? rest.slice(0, -1) : rest;
}

/** Each field's value: a number, a string (client-controlled unless noted), or undefined when absent. */
const VALUE: Record<AccessLogField, (r: Row) => string | number | undefined> = {
  time: () => Date.now(),
  method: (r) => r.method,
  path: (r) => r.path,
  protocol: (r) => (r.ctx?.req?.httpVersion ? `HTTP/${r.ctx.req.httpVersion}` : undefined),
  status: (r) => r.status,
  service: (r) => r.service,
  upstream: (r) => r.upstream,
  upstreamAddress: (r) => hostPort(r.ctx?.upstreamAddress),
  durationMs: (r) => us(r.durationMs),
  upstreamMs: (r) => (r.ctx?.upstreamHeadersMs === undefined ? undefined : us(r.ctx.upstreamHeadersMs)),
  requestId: (r) => r.requestId,
  attempts: (r) => r.attempts,
  reason: (r) => r.reason || undefined,
  clientIp: (r) => r.ctx?.clientIp ?? r.ctx?.req?.socket?.remoteAddress,
  clientPort: (r) => r.ctx?.req?.socket?.remotePort,
  host: (r) => header(r, 'host'),
  userAgent: (r) => header(r, 'user-agent'),
  referer: (r) => header(r, 'referer'),
  bytesReceived: (r) => r.ctx?.bytesReceived ?? 0,
  bytesSent: (r) => r.ctx?.bytesSent ?? 0,
  traceparent: (r) => header(r, 'traceparent'),
};

const row: Row = { method: '', path: '', status: 0, service: '', upstream: undefined, durationMs: 0, requestId: '', attempts: 0, reason: '', ctx: undefined };

function fill(a: Parameters<AccessLog['write']>): Row {
  [row.method, row.path, row.status, row.service, row.upstream, row.durationMs, row.requestId, row.attempts, row.reason, row.ctx] = a;
  return row;
}

/** What JSON.stringify leaves unchanged between its quotes: no quote, backslash, control character
 *  or surrogate (a lone one is escaped; pairs go the slow way too, which writes them unchanged). */
// eslint-disable-next-line no-control-regex
const JSON_PLAIN = /^[^"\\\x00-\x1f\ud800-\udfff]*$/;

/** JSON.stringify(v) for a string; a plain one (nearly every value) is quoted without it, at a third of the cost. */
export function jsonString(v: string): string {
  return JSON_PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
}

/** `{"level":30,"time":…,"node":…,"kind":"access", <fields in order>}` — the JSON shape pino writes. */
export function jsonLine(nodeId: string, fields: readonly AccessLogField[]): LineFn {
  const head = `,"node":${JSON.stringify(nodeId)},"kind":"access"`;
  const writers = fields.filter((f) => f !== 'time').map((f) => {
    const get = VALUE[f];
    const key = `,"${f}":`;
    // Most fields repeat from one line to the next (method, service, upstream, host, client address):
    // the last value's text is kept, so a repeat costs one string comparison.
    let last: string | number | undefined;
    let lastText = '';
    return (r: Row): string => {
      const v = get(r);
      if (v === last) return lastText;
      last = v;
      lastText = v === undefined ? '' : `${key}${typeof v === 'number' ? numberText(v) : jsonString(v)}`;
      return lastText;
    };
  });
  return (...a) => {
    const r = fill(a);
    let out = `{"level":30,"time":${Date.now()}${head}`;
    for (const w of writers) out += w(r);
    return `${out}}\n`;
  };
}

/** A text line from an Envoy-style template: `%field%` is replaced, `%%` is a literal `%`. Strings
 *  are written with control characters, quotes and backslashes escaped (NGINX's `\xHH` escaping). */
export function textLine(template: string): LineFn {
  const parts: Array<string | ((r: Row) => string)> = [];
  let last = 0;
  for (const m of template.matchAll(/%([A-Za-z]*)%/g)) {
    parts.push(template.slice(last, m.index));
    const name = m[1]!;
    if (name === '') parts.push('%');
    else {
      const get = VALUE[name as AccessLogField];
      parts.push(name === 'time' ? () => new Date().toISOString() : (r) => text(get(r)));
    }
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  return (...a) => {
    const r = fill(a);
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(r);
    return `${out}\n`;
  };
}

function text(v: string | number | undefined): string {
  if (v === undefined || v === '') return '-';
  if (typeof v === 'number') return numberText(v);
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** `--pretty`: one short readable line, status coloured only when `colour` (a terminal). */
export function prettyLine(colour: boolean): LineFn {
  const paint = (code: number, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  return (...a) => {
    const r = fill(a);
    const t = new Date().toISOString().slice(11, 23);
    const st = r.status >= 500 ? paint(31, String(r.status)) : r.status >= 400 ? paint(33, String(r.status)) : paint(32, String(r.status));
    const up = r.upstream === undefined ? r.service : `${r.service}→${r.upstream}`;
    const extra = `${r.attempts > 1 ? ` attempts=${r.attempts}` : ''}${r.reason ? ` ${r.reason}` : ''}`;
    return `${t} ${text(r.method)} ${text(r.path)} ${st} ${up} ${us(r.durationMs)}ms ${VALUE.bytesSent(r)}B ${text(VALUE.clientIp(r))} ${r.requestId}${extra}\n`;
  };
}
