/**
 * One Cookie reader: a `hashOn: cookie:NAME` hash key and a sticky `cookie: NAME` session key read the
 * same value from the same header, through the proxy's and the sticky layer's own entry points.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cookieValue } from '../../../src/lib/cookie.js';
import { hashKeyOf } from '../../../src/proxy/forward.js';
import { sessionKeyFrom } from '../../../src/sticky/index.js';

const hashKey = (cookie: string | undefined): string | undefined =>
  hashKeyOf({ kind: 'cookie', name: 'sid' }, { headers: { cookie }, url: '/' } as unknown as IncomingMessage, '127.0.0.1');
const sessionKey = (cookie: string | undefined): string | undefined => sessionKeyFrom({ cookie }, { cookie: 'sid' });

describe('cookieValue', () => {
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ['plain', 'sid=abc', 'abc'],
    ['among others, with spaces', ' a=1 ;  sid = abc ; b=2', 'abc'],
    ['quoted (RFC 6265 §4.1.1 DQUOTE form)', 'a=1; sid="abc"', 'abc'],
    ['twice: the first wins (RFC 6265 §5.4, longest path first)', 'sid=first; a=1; sid=second', 'first'],
    ['a name that only ends in the one asked for', 'xsid=no; sid=yes', 'yes'],
    ['a name that only starts with it', 'sidx=no', undefined],
    ['empty value', 'sid=; a=1', undefined],
    ['a part without "="', 'sid; a=1', undefined],
    ['absent', 'a=1; b=2', undefined],
    ['no header', undefined, undefined],
  ];
  for (const [name, header, expected] of cases) {
    it(`reads ${name} the same for hashOn and sticky`, () => {
      expect(cookieValue(header, 'sid')).toBe(expected);
      expect(hashKey(header)).toBe(expected);
      expect(sessionKey(header)).toBe(expected);
    });
  }

  it('reads several Cookie header lines as one list', () => {
    expect(cookieValue(['a=1', 'sid=abc; b=2'], 'sid')).toBe('abc');
    expect(cookieValue(['sid=one', 'sid=two'], 'sid')).toBe('one');
  });
});
