import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jsonLine, jsonString, numberText, prettyLine, textLine } from '../../../src/observability/access-log-format.js';
import { ACCESS_LOG_FIELDS, DEFAULT_JSON_FIELDS } from '../../../src/config/access-log.js';
import { parseConfigText } from '../../../src/config/load.js';

const ctx = {
  req: { headers: { host: 'shop.example', 'user-agent': 'curl/8.5.0', referer: 'https://x/"q"', traceparent: '00-abc-def-01' }, httpVersion: '1.1', socket: { remoteAddress: '::ffff:10.1.2.3', remotePort: 51234 } },
  clientIp: '10.1.2.3',
  bytesSent: 512,
  bytesReceived: 17,
  upstreamAddress: 'http://10.0.0.5:9001',
  upstreamHeadersMs: 3.14159265,
};
const args = ['GET', '/cart?id=1', 200, 'web', 'web-1', 40.55878900000016, 'rid-1', 2, '', ctx] as const;

describe('access-log line formats', () => {
  it('JSON: the default fields, durations rounded to the µs, absent values left out', () => {
    const line = jsonLine('gw-1', DEFAULT_JSON_FIELDS)(...args);
    expect(line.endsWith('}\n')).toBe(true);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(o).toMatchObject({ level: 30, node: 'gw-1', kind: 'access', method: 'GET', path: '/cart?id=1', status: 200, service: 'web', upstream: 'web-1', durationMs: 40.559, requestId: 'rid-1', attempts: 2, clientIp: '10.1.2.3', host: 'shop.example', userAgent: 'curl/8.5.0', bytesReceived: 17, bytesSent: 512, upstreamAddress: '10.0.0.5:9001', upstreamMs: 3.142 });
    expect(o).not.toHaveProperty('reason');
    expect(line).toContain('"durationMs":40.559,');
    const bare = JSON.parse(jsonLine('gw-1', DEFAULT_JSON_FIELDS)('GET', '/', 503, 'web', undefined, 1, 'r', 1, 'no-healthy-upstream')) as Record<string, unknown>;
    expect(bare).toMatchObject({ reason: 'no-healthy-upstream', bytesSent: 0 });
    expect(bare).not.toHaveProperty('upstream');
    expect(bare).not.toHaveProperty('userAgent');
  });

  it('numbers are written exactly as String() writes them: durations rounded to the µs, integers, any double', () => {
    const asLogged = (ms: number) => Math.round(ms * 1000) / 1000;
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 ** 13 }), (n) => numberText(n / 1000) === String(n / 1000)), { numRuns: 20_000 });
    fc.assert(fc.property(fc.double({ min: 0, max: 1e9, noNaN: true }), (ms) => numberText(asLogged(ms)) === String(asLogged(ms))), { numRuns: 20_000 });
    fc.assert(fc.property(fc.double(), (v) => numberText(v) === String(v)), { numRuns: 20_000 });
    for (const v of [0, -0, 0.001, 0.01, 0.1, 0.999, 1.005, 40.559, 1e15 / 1000 + 0.5, 1e21, -1.5, NaN, Infinity, -Infinity, 2 ** 53]) expect(numberText(v)).toBe(String(v));
  });

  it('JSON: a chosen field set, in its order', () => {
    const line = jsonLine('gw-1', ['time', 'clientIp', 'status', 'traceparent'])(...args);
    expect(Object.keys(JSON.parse(line) as object)).toEqual(['level', 'time', 'node', 'kind', 'clientIp', 'status', 'traceparent']);
  });

  it('JSON: strings are written exactly as JSON.stringify writes them, and a repeated value is not stale', () => {
    const tricky = ['', 'plain', 'a"b', 'back\\slash', 'tab\there', '\u0000\u001f', '\u007f', 'é ü 中', '😀', '\ud800 lone', 'x\udfff', '</script>', '\u2028'];
    for (const s of tricky) expect(jsonString(s)).toBe(JSON.stringify(s));
    // One line function writes many lines: each must show its own values, hostile or repeated.
    const line = jsonLine('gw-1', ['path', 'upstream']);
    const paths = ['/a', '/a', '/"q"', '/"q"', '/a', '/\n'];
    const ups = ['u1', undefined, undefined, 'u1', 'u2', 'u2'];
    paths.forEach((path, i) => {
      const o = JSON.parse(line('GET', path, 200, 'web', ups[i], 1, 'r', 1, '')) as Record<string, unknown>;
      expect(o.path).toBe(path);
      expect(o.upstream).toBe(ups[i]);
    });
  });

  it('JSON (generated per field set): any field subset and any values, line after line, is exactly what JSON.stringify writes', () => {
    const fields = ACCESS_LOG_FIELDS.filter((f) => f !== 'time');
    const str = fc.string({ unit: 'binary', maxLength: 12 });
    const opt = <T,>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'M"X'), path: str, status: fc.integer({ min: 0, max: 599 }), service: str, upstream: opt(str),
      durationMs: fc.double({ min: 0, max: 1e7, noNaN: true }), requestId: str, attempts: fc.nat(5), reason: fc.constantFrom('', 'upstream-timeout', 'a"b'),
      host: opt(str), ua: opt(fc.oneof(str, fc.array(str, { minLength: 1, maxLength: 2 }))), clientIp: opt(str), remote: opt(str), port: opt(fc.nat(65535)),
      version: opt(fc.constantFrom('1.1', '2.0')), bytesSent: opt(fc.nat()), bytesReceived: opt(fc.nat()), url: opt(fc.constantFrom('http://10.0.0.1:80', 'https://h:8443/', 'x')), up: opt(fc.double({ min: 0, max: 1e5, noNaN: true })),
    });
    const rounded = (ms: number) => Math.round(ms * 1000) / 1000;
    fc.assert(fc.property(fc.subarray(fields, { minLength: 1 }), fc.array(request, { minLength: 1, maxLength: 6 }), (chosen, reqs) => {
      const line = jsonLine('n"1', chosen);
      for (const r of reqs) {
        const c = { req: { headers: { host: r.host, 'user-agent': r.ua }, httpVersion: r.version, socket: { remoteAddress: r.remote, remotePort: r.port } }, clientIp: r.clientIp, bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, upstreamAddress: r.url, upstreamHeadersMs: r.up };
        const text = line(r.method, r.path, r.status, r.service, r.upstream, r.durationMs, r.requestId, r.attempts, r.reason, c);
        const time = (JSON.parse(text) as { time: number }).time;
        const value: Record<string, unknown> = {
          method: r.method, path: r.path, protocol: r.version ? `HTTP/${r.version}` : undefined, status: r.status, service: r.service, upstream: r.upstream,
          upstreamAddress: r.url === undefined ? undefined : r.url.replace(/^[a-z]+:\/\//, '').replace(/\/$/, ''), durationMs: rounded(r.durationMs),
          upstreamMs: r.up === undefined ? undefined : rounded(r.up), requestId: r.requestId, attempts: r.attempts, reason: r.reason || undefined,
          clientIp: r.clientIp ?? r.remote, clientPort: r.port, host: r.host, userAgent: Array.isArray(r.ua) ? r.ua.join(', ') : r.ua, referer: undefined,
          bytesReceived: r.bytesReceived ?? 0, bytesSent: r.bytesSent ?? 0, traceparent: undefined,
        };
        const want = { level: 30, time, node: 'n"1', kind: 'access', ...Object.fromEntries(chosen.map((f) => [f, value[f]])) };
        expect(text).toBe(`${JSON.stringify(want)}\n`);
      }
    }), { numRuns: 3000 });
  });

  it('text: Envoy-style placeholders, %% a literal, "-" for absent values, quotes and control characters escaped', () => {
    const line = textLine('%clientIp% "%method% %path% %protocol%" %status% %bytesSent% "%referer%" %reason% %durationMs%ms 100%%')(...args);
    expect(line).toBe('10.1.2.3 "GET /cart?id=1 HTTP/1.1" 200 512 "https://x/\\x22q\\x22" - 40.559ms 100%\n');
    const hostile = textLine('%path%')('GET', '/a\nb\x1b[31m', 200, 'web', undefined, 1, 'r', 1, '');
    expect(hostile).toBe('/a\\x0ab\\x1b[31m\n');
    expect(textLine('[%time%]')(...args)).toMatch(/^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]\n$/);
  });

  it('pretty: one line per request, colour only when asked', () => {
    const plain = prettyLine(false)(...args);
    expect(plain.split('\n')).toHaveLength(2);
    expect(plain).toMatch(/^\d\d:\d\d:\d\d\.\d{3} GET \/cart\?id=1 200 web→web-1 40\.559ms 512B 10\.1\.2\.3 rid-1 attempts=2\n$/);
    expect(plain).not.toContain('\x1b');
    expect(prettyLine(true)(...args)).toContain('\x1b[32m200\x1b[0m');
  });

  it('the config refuses an unknown placeholder (with a hint) and fields with the text format', () => {
    const base = (al: string) => `node: { id: a, listen: 127.0.0.1:1, accessLog: ${al} }\nroutes: [{ service: web }]\nservices: { web: { upstreams: [{ id: a, url: http://127.0.0.1:2 }] } }\n`;
    const errs = (al: string) => {
      const r = parseConfigText(base(al), 'c.yaml');
      return r.ok ? [] : r.issues.map((i) => i.message);
    };
    expect(errs('{ format: text, template: "%clientIP% %stauts%" }').join('\n')).toContain('unknown placeholder %stauts%; did you mean "status"?');
    expect(errs('{ format: text, fields: [status] }').join('\n')).toContain('fields choose the JSON format');
    expect(errs('{ fields: [status, colour] }').join('\n')).toMatch(/node\.accessLog/);
    expect(errs('{ formt: json }').join('\n')).toContain('did you mean "format"?');
    const ok = parseConfigText(base('false'), 'c.yaml');
    expect(ok.ok && ok.config.node.accessLog.enabled).toBe(false);
  });
});
