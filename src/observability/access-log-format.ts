/**
 * Builds the access-log line function for a format once at start, as generated code: one straight
 * function per field set (or template) that reads only the fields asked for, with no call per field.
 * Against a list of closures (a megamorphic call and a scratch-object store per field): 583–623 →
 * 456–462 ns per line of the default fields, timed alone (docs/benchmarks.md, access log, 4 Dec).
 *
 * The generated code is made only from the constants below (FIELDS) and from config text passed
 * through JSON.stringify (the node id, a template's literal parts), never from a request.
 *
 * Values: durations in ms rounded to the µs (`12.345`); `upstreamAddress` is the upstream's
 * host:port (NGINX $upstream_addr); `bytesSent` the response body bytes written to the client
 * (NGINX $body_bytes_sent), `bytesReceived` the request body bytes read; `time` is epoch ms in JSON
 * (pino's own `time`) and ISO 8601 in text. A missing value is left out of JSON and is `-` in text.
 */
import type { AccessLogField } from '../config/access-log.js';
import type { AccessLog } from './log.js';

export type LineFn = (...a: Parameters<AccessLog['write']>) => string;

/** The line function's parameters, in AccessLog.write's order: the names FIELDS' expressions use. */
const PARAMS = 'method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx';

/**
 * Each field's value as an expression over PARAMS and HELPERS: a number, a string (client-controlled
 * unless noted), or undefined when absent. `repeats`: the value is usually the same as on the line
 * before (method, service, host, client address…), so its written text is kept and a repeat costs
 * one string comparison instead of an escape check.
 */
const FIELDS: Record<Exclude<AccessLogField, 'time'>, { expr: string; number?: true; repeats?: true }> = {
  method: { expr: 'method', repeats: true },
  path: { expr: 'path', repeats: true },
  protocol: { expr: "(ctx?.req?.httpVersion ? 'HTTP/' + ctx.req.httpVersion : undefined)", repeats: true },
  status: { expr: 'status', number: true },
  service: { expr: 'service', repeats: true },
  upstream: { expr: 'upstream', repeats: true },
  upstreamAddress: { expr: 'hostPort(ctx?.upstreamAddress)', repeats: true },
  durationMs: { expr: 'us(durationMs)', number: true },
  upstreamMs: { expr: '(ctx?.upstreamHeadersMs === undefined ? undefined : us(ctx.upstreamHeadersMs))', number: true },
  requestId: { expr: 'requestId' },
  attempts: { expr: 'attempts', number: true },
  reason: { expr: '(reason || undefined)', repeats: true },
  clientIp: { expr: '(ctx?.clientIp ?? ctx?.req?.socket?.remoteAddress)', repeats: true },
  clientPort: { expr: 'ctx?.req?.socket?.remotePort', number: true },
  host: { expr: "header(ctx?.req?.headers.host)", repeats: true },
  userAgent: { expr: "header(ctx?.req?.headers['user-agent'])", repeats: true },
  referer: { expr: 'header(ctx?.req?.headers.referer)', repeats: true },
  bytesReceived: { expr: '(ctx?.bytesReceived ?? 0)', number: true },
  bytesSent: { expr: '(ctx?.bytesSent ?? 0)', number: true },
  traceparent: { expr: 'header(ctx?.req?.headers.traceparent)' },
};

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

/** A header's value as one string (a repeated header joined with ", "). */
function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/** host:port of an upstream URL, kept per URL (a peer has few upstreams; the map is cleared if it grows). */
const hostPorts = new Map<string, string>();
function hostPort(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let v = hostPorts.get(url);
  if (v === undefined) {
    if (hostPorts.size >= 4096) hostPorts.clear();
    v = stripScheme(url);
    hostPorts.set(url, v);
  }
  return v;
}

function stripScheme(url: string): string {
  const i = url.indexOf('://');
  const rest = i === -1 ? url : url.slice(i + 3);
  return rest.endsWith('/') ? rest.slice(0, -1) : rest;
}

/** Epoch ms as text, converted once per millisecond (Date.now() is a double: V8's slow number path). */
let epochMs = -1;
let epochText = '';
function epochNow(): string {
  const now = Date.now();
  if (now !== epochMs) {
    epochMs = now;
    epochText = `${now}`;
  }
  return epochText;
}

/** ISO 8601 time, made once per millisecond. */
let isoMs = -1;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/** What JSON.stringify leaves unchanged between its quotes: no quote, backslash, control character
 *  or surrogate (a lone one is escaped; pairs go the slow way too, which writes them unchanged). */
// eslint-disable-next-line no-control-regex
const JSON_PLAIN = /^[^"\\\x00-\x1f\ud800-\udfff]*$/;

/** JSON.stringify(v) for a string; a plain one (nearly every value) is quoted without it, at a third of the cost. */
export function jsonString(v: string): string {
  return JSON_PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
}

/** What generated code may call. */
const HELPERS = { numberText, jsonString, text, header, hostPort, us, epochNow, isoNow };

/** Runs generated `body` (which returns the line function) with HELPERS in scope. */
function compile(body: string): LineFn {
  // Built from FIELDS and JSON.stringify'd config text only (see the top of this file).
  const make = new Function('h', `const { ${Object.keys(HELPERS).join(', ')} } = h;\n${body}`) as (h: typeof HELPERS) => LineFn;
  return make(HELPERS);
}

/**
 * Code that sets `v` to field `i`'s text (`lead` + its value, escaped by `esc`), or '' when absent
 * (`absent`). For a `repeats` field, the text of the last value is kept in `l<i>` / `t<i>`.
 */
function fieldCode(f: Exclude<AccessLogField, 'time'>, i: number, lead: string, esc: string, absent: string): { state: string; code: string } {
  const def = FIELDS[f];
  const write = `${JSON.stringify(lead)} + ${def.number ? 'numberText' : esc}(x)`;
  if (!def.repeats) return { state: '', code: `x = ${def.expr}; v = x === undefined ? ${absent} : ${write};` };
  return {
    state: `let l${i}, t${i} = ${absent};`,
    code: `x = ${def.expr}; if (x !== l${i}) { l${i} = x; t${i} = x === undefined ? ${absent} : ${write}; } v = t${i};`,
  };
}

/** `{"level":30,"time":…,"node":…,"kind":"access", <fields in order>}` — the JSON shape pino writes. */
export function jsonLine(nodeId: string, fields: readonly AccessLogField[]): LineFn {
  const head = `,"node":${JSON.stringify(nodeId)},"kind":"access"`;
  const parts = fields.filter((f): f is Exclude<AccessLogField, 'time'> => f !== 'time').map((f, i) => fieldCode(f, i, `,"${f}":`, 'jsonString', "''"));
  return compile(`${parts.map((p) => p.state).join('\n')}
return function line(${PARAMS}) {
  let x, v, out = '{"level":30,"time":' + epochNow() + ${JSON.stringify(head)};
  ${parts.map((p) => `${p.code} out += v;`).join('\n  ')}
  return out + '}\\n';
};`);
}

/** A text line from an Envoy-style template: `%field%` is replaced, `%%` is a literal `%`. Strings
 *  are written with control characters, quotes and backslashes escaped (NGINX's `\xHH` escaping). */
export function textLine(template: string): LineFn {
  const states: string[] = [];
  const codes: string[] = [];
  let literal = '';
  let last = 0;
  const emitLiteral = () => {
    if (literal !== '') codes.push(`out += ${JSON.stringify(literal)};`);
    literal = '';
  };
  for (const m of template.matchAll(/%([A-Za-z]*)%/g)) {
    literal += template.slice(last, m.index);
    const name = m[1]!;
    last = m.index + m[0].length;
    if (name === '') {
      literal += '%';
      continue;
    }
    emitLiteral();
    if (name === 'time') codes.push('out += isoNow();');
    else {
      const p = fieldCode(name as Exclude<AccessLogField, 'time'>, codes.length, '', 'text', "'-'");
      states.push(p.state);
      codes.push(`${p.code} out += v;`);
    }
  }
  literal += template.slice(last);
  emitLiteral();
  return compile(`${states.join('\n')}
return function line(${PARAMS}) {
  let x, v, out = '';
  ${codes.join('\n  ')}
  return out + '\\n';
};`);
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
  // The two context fields come from the same definitions as every other format's.
  const tail = textLine('%bytesSent%B %clientIp%');
  return (method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx) => {
    const t = new Date().toISOString().slice(11, 23);
    const st = status >= 500 ? paint(31, String(status)) : status >= 400 ? paint(33, String(status)) : paint(32, String(status));
    const up = upstream === undefined ? service : `${service}→${upstream}`;
    const extra = `${attempts > 1 ? ` attempts=${attempts}` : ''}${reason ? ` ${reason}` : ''}`;
    const bytesAndClient = tail(method, path, status, service, upstream, durationMs, requestId, attempts, reason, ctx).slice(0, -1);
    return `${t} ${text(method)} ${text(path)} ${st} ${up} ${us(durationMs)}ms ${bytesAndClient} ${requestId}${extra}\n`;
  };
}
