/** Session keys from headers/cookies: valid keys pass, anything forged/oversized/malformed is "absent"; cookies are well-formed. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FENCE_HEADER, isValidSessionKey, MAX_SESSION_KEY_LENGTH, newSessionKey, sessionCookie, sessionIdFor, sessionKeyFrom } from '../../../src/sticky/index.js';

describe('sessionKeyFrom', () => {
  const cfg = { cookie: 'mg_session' };
  it('reads the configured cookie among others, and a quoted value', () => {
    expect(sessionKeyFrom({ cookie: 'a=1; mg_session=abc-123_X; b=2' }, cfg)).toBe('abc-123_X');
    expect(sessionKeyFrom({ cookie: 'mg_session="quoted"' }, cfg)).toBe('quoted');
    expect(sessionKeyFrom({ cookie: 'other=1' }, cfg)).toBeUndefined();
    expect(sessionKeyFrom({}, cfg)).toBeUndefined();
  });
  it('reads the configured header first (case-insensitive name)', () => {
    expect(sessionKeyFrom({ 'x-session-id': ' tok ', cookie: 'mg_session=c' }, { header: 'X-Session-Id', cookie: 'mg_session' })).toBe('tok');
    expect(sessionKeyFrom({ cookie: 'mg_session=c' }, { header: 'x-session-id', cookie: 'mg_session' })).toBe('c');
  });
  it('treats oversized and malformed keys, and disagreeing header copies, as absent', () => {
    expect(sessionKeyFrom({ cookie: `mg_session=${'a'.repeat(MAX_SESSION_KEY_LENGTH)}` }, cfg)).toHaveLength(MAX_SESSION_KEY_LENGTH);
    expect(sessionKeyFrom({ cookie: `mg_session=${'a'.repeat(MAX_SESSION_KEY_LENGTH + 1)}` }, cfg)).toBeUndefined();
    expect(sessionKeyFrom({ cookie: 'mg_session=a b' }, cfg)).toBeUndefined();
    expect(sessionKeyFrom({ cookie: 'mg_session=<script>' }, cfg)).toBeUndefined();
    expect(sessionKeyFrom({ cookie: 'mg_session=' }, cfg)).toBeUndefined();
    expect(sessionKeyFrom({ cookie: 'mg_session=one; mg_session=two' }, cfg)).toBe('one'); // RFC 6265 §5.4: the first (longest path) wins
    expect(sessionKeyFrom({ 'x-s': ['a', 'b'] }, { header: 'x-s' })).toBeUndefined();
    expect(sessionKeyFrom({ 'x-s': ['a', 'a'] }, { header: 'x-s' })).toBe('a');
  });
  it('never throws and returns only valid keys, whatever the headers (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.string({ maxLength: 200 }), (cookie, header) => {
        const k = sessionKeyFrom({ cookie, 'x-s': header }, { cookie: 'mg_session', header: 'x-s' });
        return k === undefined || isValidSessionKey(k);
      }),
    );
  });
});

describe('keys, ids and cookies', () => {
  it('new keys are valid, 22 chars and distinct', () => {
    const ks = new Set(Array.from({ length: 1000 }, newSessionKey));
    expect(ks.size).toBe(1000);
    for (const k of ks) expect(isValidSessionKey(k) && k.length === 22).toBe(true);
  });
  it('session ids are per service, bounded and carry no raw key', () => {
    const a = sessionIdFor('web', 'secret-key');
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(sessionIdFor('api', 'secret-key')).not.toBe(a);
    expect(sessionIdFor('web', 'secret-key')).toBe(a);
  });
  it('builds HttpOnly SameSite=Lax cookies, Secure behind TLS', () => {
    expect(sessionCookie('mg_session', 'abc', { secure: false })).toBe('mg_session=abc; Path=/; HttpOnly; SameSite=Lax');
    expect(sessionCookie('mg_session', 'abc', { secure: true, maxAgeMs: 60_000 })).toBe('mg_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure');
    expect(() => sessionCookie('bad name', 'abc', { secure: false })).toThrow(TypeError);
    expect(FENCE_HEADER).toBe('x-meshgate-fence');
  });
});
