/**
 * The TLS client options and the failure classification of https upstreams (proxy/upstream-tls.ts,
 * forward.ts): one definition used by the pools, the Upgrade path and the health probes.
 */
import { describe, expect, it } from 'vitest';
import { classifyError, unavailableAnswer } from '../../../src/proxy/forward.js';
import { isTlsHandshakeError, serverNameFor, upstreamTlsOptions } from '../../../src/proxy/upstream-tls.js';

const material = { ca: 'CA', cert: 'CERT', key: 'KEY', id: 'x' };

describe('upstreamTlsOptions', () => {
  it('always verifies; the URL host is the name unless serverName is set; an IP sends no SNI', () => {
    expect(upstreamTlsOptions('api.internal', undefined)).toEqual({ servername: 'api.internal', rejectUnauthorized: true });
    expect(upstreamTlsOptions('10.0.0.1', undefined)).toEqual({ rejectUnauthorized: true });
    expect(upstreamTlsOptions('[::1]', undefined)).toEqual({ rejectUnauthorized: true });
    expect(upstreamTlsOptions('10.0.0.1', { ...material, serverName: 'api.internal' })).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'api.internal', rejectUnauthorized: true });
    expect(serverNameFor('h.example', { id: 'y', serverName: 'other.example' })).toBe('other.example');
  });
});

describe('a failed TLS handshake', () => {
  it.each(['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO'])(
    '%s is a connect failure answered 502 upstream-tls', (code) => {
      expect(isTlsHandshakeError(code)).toBe(true);
      expect(classifyError(Object.assign(new Error('tls'), { code }))).toBe('connect-failure');
      expect(unavailableAnswer('connect-failure', code)).toEqual({ status: 502, reason: 'upstream-tls', text: 'upstream TLS handshake failed' });
    });

  it.each([['ECONNREFUSED', 'upstream-connect-failure'], ['ECONNRESET', 'upstream-reset'], [undefined, 'upstream-connect-failure']])('%s keeps its own reason', (code, reason) => {
    expect(isTlsHandshakeError(code)).toBe(false);
    expect(unavailableAnswer(code === 'ECONNRESET' ? 'reset' : 'connect-failure', code).reason).toBe(reason);
  });
});
