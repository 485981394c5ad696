import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jsonLine, jsonString, numberText, prettyLine, textLine } from '../../../src/observability/access-log-format.js';
import { DEFAULT_JSON_FIELDS } from '../../../src/config/access-log.js';
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
