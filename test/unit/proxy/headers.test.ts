import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, upstreamRequestHeaders } from '../../../src/proxy/headers.js';

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
      'x-forwarded-for', '10.0.0.1', 'x-forwarded-proto', 'http', 'x-request-id', 'rid', 'x-forwarded-host', 'h.example',
    ]);
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
