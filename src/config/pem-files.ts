/**
 * PEM files named by the config (`services.<name>.upstreamTls`): read with a size bound, then parsed
 * with node:crypto and handed to `tls.createSecureContext` exactly as the TLS client will use them, so
 * a file that would fail every handshake fails `meshgate check`, the start and the reload instead.
 *
 * Invariant: nothing here throws for bad input; every problem comes back as a message that names the
 * file (the loader adds the config line that names it).
 */
import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';

/** A CA bundle of every public root (Mozilla's, ~150 certificates) is ~220 KB; 1 MiB is a mistake. */
export const MAX_PEM_BYTES = 1024 * 1024;

export type PemResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string; readonly unreadable?: true };

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Reads a PEM file whole (they are small; see MAX_PEM_BYTES). */
export function readPemFile(path: string): PemResult<string> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    return { ok: false, unreadable: true, message: `${path}: cannot read: ${(err as Error).message}` };
  }
  if (buf.length > MAX_PEM_BYTES) return { ok: false, message: `${path}: ${buf.length} bytes, above the limit of ${MAX_PEM_BYTES} for a PEM file` };
  return { ok: true, value: buf.toString('utf8') };
}

/** One or more PEM certificates, each of which parses (a CA bundle, or a certificate and its chain). */
export function parseCertificates(path: string, text: string): PemResult<X509Certificate[]> {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, message: `${path}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)` };
  const out: X509Certificate[] = [];
  for (let i = 0; i < blocks.length; i++) {
    try {
      out.push(new X509Certificate(blocks[i]!));
    } catch (err) {
      return { ok: false, message: `${path}: certificate ${i + 1} of ${blocks.length} does not parse: ${(err as Error).message}` };
    }
  }
  return { ok: true, value: out };
}

/** PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional key with `Proc-Type: 4,ENCRYPTED`. */
const ENCRYPTED_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;

export function parsePrivateKey(path: string, text: string): PemResult<KeyObject> {
  // Checked first: OpenSSL's own error for a key without its passphrase is "interrupted or cancelled".
  if (ENCRYPTED_KEY.test(text)) return { ok: false, message: `${path}: the key is encrypted; meshgate takes an unencrypted key (openssl pkey -in key.pem -out plain.pem)` };
  try {
    return { ok: true, value: createPrivateKey({ key: text, format: 'pem' }) };
  } catch (err) {
    return { ok: false, message: `${path}: not a PEM private key: ${(err as Error).message}` };
  }
}

/** A certificate (first of its file) and the key that must belong to it. */
export function checkKeyPair(certPath: string, leaf: X509Certificate, keyPath: string, key: KeyObject): string | undefined {
  return leaf.checkPrivateKey(key) ? undefined : `${keyPath}: the key does not match the certificate in ${certPath}`;
}

/** The last word: OpenSSL itself building the context a handshake will use (weak keys, digests). */
export function checkSecureContext(files: string, parts: { ca?: string; cert?: string; key?: string }): string | undefined {
  try {
    createSecureContext(parts);
    return undefined;
  } catch (err) {
    return `${files}: refused by TLS: ${(err as Error).message}`;
  }
}

/** A short digest of everything a TLS client is built from: equal digests, interchangeable clients. */
export function tlsMaterialId(parts: readonly (string | undefined)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}
