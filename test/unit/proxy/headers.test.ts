import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, hostProblem, http1HeadersOf, protoOf, upstreamRequestHeaders } from '../../../src/proxy/headers.js';

const b = (...xs: string[]): Buffer[] => xs.map((x) => Buffer.from(x, 'latin1'));

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and adds the request id when the upstream sent none', () => {
    const out = clientResponseHeaders(b('Content-Type', 'text/plain', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'X-A', '1'), 'rid-1');
    expect(out).toEqual(['Content-Type', 'text/plain', 'X-A', '1', 'x-request-id', 'rid-1']);
  });

  it('drops the headers a Connection header names, across repeated Connection headers, in any case', () => {
    const out = clientResponseHeaders(b('connection', 'X-Drop-A', 'X-Drop-A', 'a', 'x-keep', 'k', 'CONNECTION', ' close , x-drop-b', 'x-drop-b', 'b'), 'rid');
    expect(out).toEqual(['x-keep', 'k', 'x-request-id', 'rid']);
  });

  it("keeps the upstream's x-request-id, unless a Connection header names it", () => {
    expect(clientResponseHeaders(b('X-Request-Id', 'up-id'), 'rid')).toEqual(['X-Request-Id', 'up-id']);
    expect(clientResponseHeaders(b('Connection', 'x-request-id', 'X-Request-Id', 'up-id'), 'rid')).toEqual(['x-request-id', 'rid']);
  });

  it('passes values through as latin1 and appends the sticky cookie and session header', () => {
    const out = clientResponseHeaders(b('X-Bytes', 'caf\xe9'), 'rid', 'mg=1; Path=/', ['x-session', 's1']);
    expect(out).toEqual(['X-Bytes', 'caf\xe9', 'x-request-id', 'rid', 'set-cookie', 'mg=1; Path=/', 'x-session', 's1']);
  });
});

describe('upstreamRequestHeaders', () => {
  const info = { clientIp: '10.0.0.1', proto: 'http' as const, requestId: 'rid' };

  it('drops hop-by-hop, owned and Connection-named headers, then sets x-forwarded-* and the request id', () => {
    const raw = ['Host', 'h.example', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'X-Forwarded-For', '6.6.6.6', 'X-Request-Id', 'client', 'Accept', '*/*', 'TE', 'trailers'];
    expect(upstreamRequestHeaders(raw, 'keep-alive, X-Hop', info)).toEqual([
      'Host', 'h.example', 'Accept', '*/*',
      'x-forwarded-for', '10.0.0.1', 'x-forwarded-proto', 'http', 'x-request-id', 'rid', 'x-real-ip', '10.0.0.1', 'x-forwarded-host', 'h.example',
    ]);
  });

  it('never drops Host, even when Connection names it', () => {
    const out = upstreamRequestHeaders(['Host', 'a.example', 'Connection', 'host, x-y', 'X-Y', '1'], 'host, x-y', info);
    expect(out.slice(0, 2)).toEqual(['Host', 'a.example']);
    expect(out).not.toContain('X-Y');
  });

  it("replaces the client's X-Real-IP, drops its Forwarded, Expect and x-meshgate-fence", () => {
    const raw = ['Host', 'h', 'X-Real-IP', '6.6.6.6', 'Forwarded', 'for=6.6.6.6', 'Expect', '100-continue', 'X-Meshgate-Fence', '999', 'X-Keep', 'k'];
    const out = upstreamRequestHeaders(raw, undefined, { ...info, fence: 7 });
    const pairs = new Map<string, string[]>();
    for (let i = 0; i < out.length; i += 2) pairs.set(out[i]!.toLowerCase(), [...(pairs.get(out[i]!.toLowerCase()) ?? []), out[i + 1]!]);
    expect(pairs.get('x-real-ip')).toEqual(['10.0.0.1']);
    expect(pairs.get('x-meshgate-fence')).toEqual(['7']);
    expect(pairs.has('forwarded')).toBe(false);
    expect(pairs.has('expect')).toBe(false);
    expect(pairs.get('x-keep')).toEqual(['k']);
  });

  it('treats a Connection of just keep-alive or close as naming no header', () => {
    for (const connection of ['keep-alive', 'Keep-Alive', ' close ', 'CLOSE']) {
      expect(upstreamRequestHeaders(['Close', 'x', 'Keep', 'y'], connection, info).slice(0, 4)).toEqual(['Close', 'x', 'Keep', 'y']);
    }
  });

  it('adds the fence when a sticky pin carries one', () => {
    expect(upstreamRequestHeaders([], undefined, { ...info, fence: 7 })).toContain('x-meshgate-fence');
  });
});

describe('hostProblem (RFC 9112 §3.2)', () => {
  it('accepts names, ports, IPv4 and IP-literals', () => {
    for (const h of ['a', 'api.example.com', 'a:8080', '127.0.0.1:80', '[::1]:8080', '[2001:db8::1]', 'xn--bcher-kva.example', '']) expect(hostProblem(['Host', h]), h).toBeUndefined();
  });
  it('refuses a missing (HTTP/1.1 only), duplicated or invalid Host', () => {
    expect(hostProblem(['Accept', '*/*'])).toBe('missing-host');
    expect(hostProblem(['Accept', '*/*'], false)).toBeUndefined();
    expect(hostProblem(['Host', 'a', 'host', 'b'])).toBe('duplicate-host');
    expect(hostProblem(['Host', 'a', 'HOST', 'a'])).toBe('duplicate-host');
    for (const h of ['a/b@c', 'a b', 'a@b', 'a:80x', 'a/b', 'a?b', '[::1', 'a#b', 'a\\b']) expect(hostProblem(['Host', h]), h).toBe('invalid-host');
  });
});

describe('http1HeadersOf (an HTTP/2 request as the HTTP/1.1 one it stands for)', () => {
  it('drops pseudo-headers, puts :authority first as host, joins split cookies', () => {
    const raw = [':method', 'GET', ':path', '/a', ':scheme', 'https', ':authority', 'a.test:8443', 'accept', '*/*', 'cookie', 'a=1', 'cookie', 'b=2', 'x-a', '1'];
    expect(http1HeadersOf(raw)).toEqual(['host', 'a.test:8443', 'accept', '*/*', 'x-a', '1', 'cookie', 'a=1; b=2']);
  });
  it('a Host equal to :authority is folded into it; a different one is kept, so the pair is refused as duplicate-host', () => {
    expect(http1HeadersOf([':authority', 'a.test', 'host', 'a.test'])).toEqual(['host', 'a.test']);
    const two = http1HeadersOf([':authority', 'a.test', 'host', 'evil.test']);
    expect(hostProblem(two)).toBe('duplicate-host');
  });
  it('without :authority the client Host (if any) stands', () => {
    expect(http1HeadersOf([':method', 'GET', 'host', 'h.test'])).toEqual(['host', 'h.test']);
    expect(hostProblem(http1HeadersOf([':method', 'GET', ':path', '/']))).toBe('missing-host');
  });
  it('the upstream never gets a pseudo-header, and X-Forwarded-Proto is the one given', () => {
    const up = upstreamRequestHeaders(http1HeadersOf([':method', 'GET', ':authority', 'a.test', ':path', '/', 'x-forwarded-proto', 'http']), undefined, { clientIp: '1.2.3.4', proto: 'https', requestId: 'r' });
    expect(up.filter((_, i) => i % 2 === 0 && up[i]!.startsWith(':'))).toEqual([]);
    expect(up.filter((v, i) => i % 2 === 1 && up[i - 1] === 'x-forwarded-proto')).toEqual(['https']);
  });
  it('protoOf reads the socket: a TLS socket (or an h2 stream standing for one) is https', () => {
    expect(protoOf({ encrypted: true })).toBe('https');
    expect(protoOf({})).toBe('http');
    expect(protoOf(undefined)).toBe('http');
  });
});
