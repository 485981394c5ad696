/**
 * The shape rules of `services.<name>.upstreamTls` (model/validate/upstream-tls.ts); what the files
 * hold is tested in test/unit/config/upstream-tls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { checkUpstreamTls, checkUpstreamFields } from '../../../src/model/validate/index.js';
import { validateCommand } from '../../../src/cluster/membership.js';

describe('checkUpstreamTls', () => {
  it.each([
    [{}],
    [{ ca: './ca.pem' }],
    [{ serverName: 'api.internal' }],
    [{ ca: '/etc/ca.pem', serverName: 'a.b', cert: 'c.pem', key: 'k.pem' }],
    [{ cert: 'c.pem', key: 'k.pem' }],
  ])('accepts %j', (v) => expect(checkUpstreamTls(v)).toEqual({ ok: true, value: v }));

  it.each([
    // The issue points at the key that is there (the missing one has no line to point at).
    [{ cert: 'c.pem' }, 'cert', /both cert and key.*key is missing/],
    [{ key: 'k.pem' }, 'key', /both cert and key.*cert is missing/],
    [{ ca: '' }, 'ca', /file path/],
    [{ ca: 3 }, 'ca', /file path/],
    [{ ca: 'a\u0000b' }, 'ca', /file path/],
    [{ serverName: '10.0.0.1' }, 'serverName', /IP address/],
    [{ serverName: 'a b' }, 'serverName', /DNS name/],
    [{ serverName: '-x.internal' }, 'serverName', /DNS name/],
    [{ serverName: 'x'.repeat(254) }, 'serverName', /DNS name/],
  ])('refuses %j at field %s', (v, field, message) => {
    const r = checkUpstreamTls(v);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.field).toBe(field);
    expect(r.message).toMatch(message);
  });

  it('names unknown keys (a typo is never ignored), and refuses a non-object', () => {
    expect(checkUpstreamTls({ ca: 'x', caFile: 'y' })).toMatchObject({ ok: false, unknownKeys: ['caFile'] });
    expect(checkUpstreamTls({ material: {} })).toMatchObject({ ok: false, unknownKeys: ['material'] });
    expect(checkUpstreamTls('ca.pem').ok).toBe(false);
    expect(checkUpstreamTls(null).ok).toBe(false);
  });
});

describe('https upstream URLs at every front door', () => {
  it('are accepted by the admin body check and by the membership state machine', () => {
    expect(checkUpstreamFields({ url: 'https://10.0.0.1:8443' }).ok).toBe(true);
    expect(validateCommand({ op: 'put-upstream', service: 'api', id: 'a1', url: 'https://api.internal:8443', weight: 1, state: 'active' })).toBeUndefined();
  });
});
