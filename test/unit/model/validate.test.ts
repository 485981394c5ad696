/**
 * The shared validators (src/model/validate) at their boundaries, and the admin guard's header rules.
 */
import { describe, expect, it } from 'vitest';
import { bearerToken, contentTypeRefusal, crossOriginRefusal, hostRefusal } from '../../../src/admin/guard.js';
import { checkDuration, checkRetryCondition, checkStatusCode, checkUpstreamUrl, checkWeight, parseListenAddress, parsePeerAddress } from '../../../src/model/validate/index.js';

describe('peer and listen addresses', () => {
  it.each(['127.0.0.1:1', '127.0.0.1:65535', 'gw-1.internal:7946', '[::1]:7946', 'localhost:80', 'host.:80'])('accepts %s', (a) => expect(parsePeerAddress(a).ok).toBe(true));
  it.each(['127.0.0.1:99999', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1', ':80', '::1:80', '[::1', 'a b:80', '300.1.1.1:80', '10.1:80', 'a..b:80', '-a:80', '127.0.0.1:-1', '127.0.0.1:1e3', 'x'.repeat(254) + ':1'])('refuses %s', (a) => expect(parsePeerAddress(a).ok).toBe(false));
  it('gives the host without brackets; a listen address may use port 0', () => {
    expect(parsePeerAddress('[fe80::1]:7946')).toEqual({ ok: true, value: { host: 'fe80::1', port: 7946 } });
    expect(parseListenAddress('127.0.0.1:0').ok).toBe(true);
    expect(parsePeerAddress(42).ok).toBe(false);
  });
});

describe('upstream url and weight', () => {
  it.each(['http://127.0.0.1:9001', 'https://api.internal', 'http://[::1]:80/', 'HTTP://h:1'.replace('HTTP', 'http')])('accepts %s', (u) => expect(checkUpstreamUrl(u).ok).toBe(true));
  it.each(['http://127.0.0.1:31003/#x', 'http://h/#', 'http://h/?', 'http://:password@h', 'http://u@h', 'http://h/path', 'ftp://h', 'http:h', ' http://h', 'http://h:0', 'http://h:65536', 'http://bücher.de', 'http://h\\x', 'http://h//', ''])('refuses %j', (u) => expect(checkUpstreamUrl(u).ok).toBe(false));
  it('weights are integers 1..10000', () => {
    expect([1, 10_000].map((w) => checkWeight(w).ok)).toEqual([true, true]);
    expect([0, 10_001, 1.5, '2', NaN, Infinity, null].map((w) => checkWeight(w).ok)).toEqual([false, false, false, false, false, false, false]);
  });
});

describe('durations and status lists', () => {
  it('bounds durations to what a timer can hold and to the field minimum', () => {
    expect(checkDuration('2147483647ms')).toEqual({ ok: true, value: 2_147_483_647 });
    expect(checkDuration('25d').ok).toBe(false);
    expect(checkDuration('600h').ok).toBe(false);
    expect(checkDuration('0ms', { min: 1 }).ok).toBe(false);
    expect(checkDuration('0.4ms', { min: 1 }).ok).toBe(false);
    expect(checkDuration('0ms')).toEqual({ ok: true, value: 0 });
    expect(checkDuration('99999999999999999999h').ok).toBe(false);
  });
  it('takes status codes as numbers or strings', () => {
    expect([503, '503', 'reset'].map((v) => checkRetryCondition(v))).toEqual([{ ok: true, value: '503' }, { ok: true, value: '503' }, { ok: true, value: 'reset' }]);
    expect([500, 503.5, 'teapot'].map((v) => checkRetryCondition(v).ok)).toEqual([false, false, false]);
    expect([200, '204'].map((v) => checkStatusCode(v))).toEqual([{ ok: true, value: 200 }, { ok: true, value: 204 }]);
    expect([99, 600, '2xx'].map((v) => checkStatusCode(v).ok)).toEqual([false, false, false]);
  });
});

describe('admin guard', () => {
  it('allows IP literals, localhost and configured names as Host', () => {
    const rules = { allowedHosts: ['gw-1.internal'] };
    for (const h of [undefined, '127.0.0.1:9901', '[::1]:9901', '10.0.0.5', 'localhost:9901', 'GW-1.internal:9901']) expect(hostRefusal(h, rules)).toBeUndefined();
    for (const h of ['rebind.attacker.example:9901', 'localhost.attacker.example', '127.0.0.1.nip.io', '999.1.1.1']) expect(hostRefusal(h, rules)).toBeDefined();
  });
  it('refuses cross-origin browser mutations, keeps same-origin and non-browser clients', () => {
    expect(crossOriginRefusal({ host: '127.0.0.1:9901' })).toBeUndefined();
    expect(crossOriginRefusal({ host: '127.0.0.1:9901', origin: 'http://127.0.0.1:9901', 'sec-fetch-site': 'same-origin' })).toBeUndefined();
    expect(crossOriginRefusal({ host: '127.0.0.1:9901', 'sec-fetch-site': 'none' })).toBeUndefined();
    expect(crossOriginRefusal({ host: '127.0.0.1:9901', origin: 'http://127.0.0.1:8000' })).toBeDefined();
    expect(crossOriginRefusal({ host: '127.0.0.1:9901', origin: 'null' })).toBeDefined();
    expect(crossOriginRefusal({ host: '127.0.0.1:9901', 'sec-fetch-site': 'same-site' })).toBeDefined();
  });
  it('takes application/json (UTF-8) bodies only, and the bearer scheme in any case', () => {
    expect(contentTypeRefusal('application/json')).toBeUndefined();
    expect(contentTypeRefusal('Application/JSON; charset=UTF-8')).toBeUndefined();
    for (const t of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx']) expect(contentTypeRefusal(t)).toBeDefined();
    expect(['Bearer t', 'bearer t', 'BEARER  t'].map(bearerToken)).toEqual(['t', 't', 't']);
    expect(['Basic t', 'Bearer', 'Bearer a b', 'Bearert'].map(bearerToken)).toEqual([undefined, undefined, undefined, undefined]);
  });
});
