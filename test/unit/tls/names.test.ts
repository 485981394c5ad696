import { describe, expect, it } from 'vitest';
import { chooseCertificate, coverage, dnsNamesOf } from '../../../src/tls/names.js';

describe('dnsNamesOf', () => {
  it("reads the DNS entries of node:crypto's subjectAltName text, lower-cased, and nothing else", () => {
    expect(dnsNamesOf('DNS:A.Example.com, DNS:*.example.com, IP Address:127.0.0.1, email:x@y')).toEqual(['a.example.com', '*.example.com']);
    expect(dnsNamesOf(undefined)).toEqual([]);
    expect(dnsNamesOf('DNS:trailing.example.')).toEqual(['trailing.example']);
  });
});

describe('coverage (RFC 6125 §6.4.3)', () => {
  it('a wildcard covers exactly one leftmost label', () => {
    expect(coverage('*.example.com', 'a.example.com')).toBe('wildcard');
    expect(coverage('*.example.com', 'example.com')).toBeUndefined();
    expect(coverage('*.example.com', 'a.b.example.com')).toBeUndefined();
    expect(coverage('*.example.com', '.example.com')).toBeUndefined();
    expect(coverage('a.example.com', 'a.example.com')).toBe('exact');
    expect(coverage('a*.example.com', 'ab.example.com')).toBeUndefined();
  });
});

describe('chooseCertificate', () => {
  const certs = [['default.test'], ['*.example.com'], ['api.example.com', 'other.test']];
  it('an exact name beats a wildcard listed earlier; the first wildcard wins among wildcards', () => {
    expect(chooseCertificate(certs, 'api.example.com')).toBe(2);
    expect(chooseCertificate(certs, 'www.example.com')).toBe(1);
    expect(chooseCertificate([['*.example.com'], ['*.example.com']], 'x.example.com')).toBe(0);
  });
  it('case and a trailing dot do not matter', () => {
    expect(chooseCertificate(certs, 'OTHER.test.')).toBe(2);
  });
  it('no SNI or a name nobody covers gets the first certificate', () => {
    expect(chooseCertificate(certs, undefined)).toBe(0);
    expect(chooseCertificate(certs, '')).toBe(0);
    expect(chooseCertificate(certs, 'unknown.test')).toBe(0);
    expect(chooseCertificate(certs, 'example.com')).toBe(0);
  });
});
