/**
 * `upstreamTls` files through the loader (config/upstream-tls.ts, pem-files.ts), with certificates
 * made by openssl at test time: good files become the material the TLS clients use; every bad file
 * is one issue at the line of the key naming it, with the file's path, and the config is refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIssue, parseConfigText } from '../../../src/config/load.js';
import { makeUpstreamCerts, type UpstreamCerts } from '../../helpers/upstream-certs.js';
import { tempDir } from '../../helpers/meshgate.js';

let certs: UpstreamCerts;
let configFile: string;

beforeAll(() => {
  certs = makeUpstreamCerts(tempDir('meshgate-unit-certs-'));
  configFile = join(certs.dir, 'config.yaml');
});

function yaml(tls: string): string {
  return `node:
  id: gw-1
  listen: 127.0.0.1:8080
services:
  api:
    upstreamTls: ${tls}
    upstreams:
      - { id: a1, url: https://127.0.0.1:8443 }
routes:
  - { match: { pathPrefix: / }, service: api }
`;
}

function load(tls: string) {
  return parseConfigText(yaml(tls), configFile, {});
}

/** `line:column` (1-based) of `needle` inside the upstreamTls line (line 6 of yaml()). */
function at(tls: string, needle: string): string {
  return `6:${'    upstreamTls: '.length + tls.indexOf(needle) + 1}`;
}

function issues(tls: string): string[] {
  const r = load(tls);
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe('upstreamTls files', () => {
  it('reads ca, cert and key, relative paths from the config file directory', () => {
    const r = load('{ ca: ca.crt, serverName: api.internal, cert: ./client.crt, key: client.key }');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const m = r.config.services.api!.upstreamTls!.material!;
    expect(m.ca).toBe(readFileSync(certs.ca, 'utf8'));
    expect(m.cert).toBe(readFileSync(certs.clientCert, 'utf8'));
    expect(m.key).toBe(readFileSync(certs.clientKey, 'utf8'));
    expect(m.serverName).toBe('api.internal');
    expect(Object.isFrozen(m)).toBe(true);
  });

  it('gives the material an id that is stable for the same files and changes with any of them', () => {
    const id = (tls: string) => { const r = load(tls); return r.ok ? r.config.services.api!.upstreamTls!.material!.id : r.issues[0]!.message; };
    expect(id('{ ca: ca.crt }')).toBe(id(`{ ca: ${certs.ca} }`));
    expect(id('{ ca: ca.crt }')).not.toBe(id('{ ca: other-ca.crt }'));
    expect(id('{ ca: ca.crt }')).not.toBe(id('{ ca: ca.crt, serverName: api.internal }'));
    expect(id('{}')).not.toBe(id('{ ca: ca.crt }'));
  });

  it('a CA file that does not parse: the line of `ca`, and the file', () => {
    expect(issues('{ ca: garbage.pem }')).toEqual([`${configFile}:${at('{ ca: garbage.pem }', 'garbage')}: services.api.upstreamTls.ca: ${certs.garbage}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)`]);
    const broken = join(certs.dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n');
    expect(issues('{ ca: broken.pem }')[0]).toMatch(new RegExp(`services\\.api\\.upstreamTls\\.ca: ${broken}: certificate 1 of 1 does not parse`));
    const empty = join(certs.dir, 'empty.pem');
    writeFileSync(empty, '');
    expect(issues('{ ca: empty.pem }')[0]).toContain(`${empty}: no PEM certificate`);
  });

  it('a missing file is MG_ERR_CONFIG_READ naming it', () => {
    const r = load('{ ca: nowhere.pem }');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]!.code).toBe('MG_ERR_CONFIG_READ');
    expect(r.issues[0]!.message).toContain(join(certs.dir, 'nowhere.pem'));
  });

  it('a key that is not the certificate\'s, a key that is no key, an encrypted key', () => {
    expect(issues('{ cert: client.crt, key: server.key }')).toEqual([expect.stringContaining(`services.api.upstreamTls.key: ${certs.serverKey}: the key does not match the certificate in ${certs.clientCert}`)]);
    expect(issues('{ cert: client.crt, key: client.crt }')[0]).toContain(`${certs.clientCert}: not a PEM private key`);
    const encrypted = join(certs.dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', certs.clientKey, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    expect(issues('{ cert: client.crt, key: encrypted.key }')[0]).toContain(`${encrypted}: the key is encrypted`);
  });

  it('is read again on every load: a file changed in place is what the next load sees', () => {
    const ca = join(certs.dir, 'rotating.pem');
    copyFileSync(certs.ca, ca);
    expect(load('{ ca: rotating.pem }').ok).toBe(true);
    writeFileSync(ca, 'garbage');
    expect(issues('{ ca: rotating.pem }')[0]).toContain(`${ca}: no PEM certificate`);
  });

  it('shape errors come from the validator with their position', () => {
    expect(issues('{ cert: client.crt }')).toEqual([`${configFile}:${at('{ cert: client.crt }', 'client')}: services.api.upstreamTls.cert: upstreamTls needs both cert and key for mutual TLS, or neither (key is missing)`]);
    expect(issues('{ serverName: 127.0.0.1 }')[0]).toMatch(/services\.api\.upstreamTls\.serverName: serverName must be a DNS name/);
    expect(issues('{ caa: ca.crt }')[0]).toMatch(/unknown key "caa" in services\.api\.upstreamTls; did you mean "ca"\?/);
  });
});
