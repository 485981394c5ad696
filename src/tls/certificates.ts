/**
 * Reads `node.tls.certificates` from disk and checks each pair before anything serves it: the cert file
 * holds a PEM certificate (a chain: the leaf first), the key file a PEM private key, the key is the
 * certificate's, and OpenSSL builds a context from them. Each problem names the file, and the caller
 * (app/config-files.ts) turns it into a config issue at the pair's line — a pair that fails is refused
 * like any bad config and whatever served before keeps serving.
 *
 * The contexts carry the listener's TLS policy (DESIGN.md §9): `minVersion` (TLS 1.0/1.1 never: the
 * schema allows TLSv1.2 or TLSv1.3 only, and Node's maximum is TLS 1.3), renegotiation refused
 * (SSL_OP_NO_RENEGOTIATION; TLS 1.3 has none), no compression (SSL_OP_NO_COMPRESSION, CRIME), and Node's
 * default cipher list for that minimum. Session resumption stays on (Node's default session tickets).
 */
import { createPrivateKey, X509Certificate, constants, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { readPemFile } from '../config/pem-files.js';
import { chooseCertificate, dnsNamesOf } from './names.js';

export interface TlsPolicy {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** A problem with pair `index`, about its `field` file. */
export interface CertificateProblem {
  readonly index: number;
  readonly field: 'cert' | 'key';
  readonly message: string;
}

export interface LoadedCertificate {
  readonly files: CertificateFiles;
  /** subjectAltName DNS names, lower-cased. */
  readonly names: readonly string[];
  readonly notAfter: string;
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
}

/** The certificates a listener serves, in config order (the first is the default). */
export class CertificateSet {
  private readonly names: ReadonlyArray<readonly string[]>;

  constructor(readonly certificates: readonly LoadedCertificate[]) {
    this.names = certificates.map((c) => c.names);
  }

  /** The one served when the client sends no SNI or a name no certificate covers. */
  get default(): LoadedCertificate {
    return this.certificates[0]!;
  }

  forServerName(serverName: string | undefined): LoadedCertificate {
    return this.certificates[chooseCertificate(this.names, serverName)]!;
  }

  /** Every file a change to which should reload the certificates. */
  get files(): string[] {
    return this.certificates.flatMap((c) => [c.files.cert, c.files.key]);
  }
}

export const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION;

export type LoadCertificatesResult = { ok: true; set: CertificateSet } | { ok: false; problems: CertificateProblem[] };

export function loadCertificates(pairs: readonly CertificateFiles[], policy: TlsPolicy): LoadCertificatesResult {
  const loaded: LoadedCertificate[] = [];
  const problems: CertificateProblem[] = [];
  pairs.forEach((files, index) => {
    const r = loadPair(files, policy);
    if ('problem' in r) problems.push({ index, ...r.problem });
    else loaded.push(r.loaded);
  });
  return problems.length ? { ok: false, problems } : { ok: true, set: new CertificateSet(loaded) };
}

type PairResult = { loaded: LoadedCertificate } | { problem: { field: 'cert' | 'key'; message: string } };

function loadPair(files: CertificateFiles, policy: TlsPolicy): PairResult {
  const certPem = readPem(files.cert);
  if (typeof certPem !== 'string') return { problem: { field: 'cert', message: certPem.error } };
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    return { problem: { field: 'cert', message: `${files.cert} does not hold a PEM certificate (${(err as Error).message})` } };
  }
  const keyPem = readPem(files.key);
  if (typeof keyPem !== 'string') return { problem: { field: 'key', message: keyPem.error } };
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    return { problem: { field: 'key', message: `${files.key} does not hold a PEM private key (${(err as Error).message})` } };
  }
  if (!x509.checkPrivateKey(key)) {
    return { problem: { field: 'key', message: `${files.key} is not the private key of ${files.cert} (subject ${x509.subject.replace(/\n/g, ', ')})` } };
  }
  const options: SecureContextOptions = { cert: certPem, key: keyPem, minVersion: policy.minVersion, secureOptions: SECURE_OPTIONS };
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    return { problem: { field: 'cert', message: `${files.cert} with ${files.key}: OpenSSL refused the pair (${(err as Error).message})` } };
  }
  return { loaded: { files, names: dnsNamesOf(x509.subjectAltName), notAfter: x509.validTo, options, context } };
}

/** Reads through the one PEM reader (config/pem-files.ts: its size cap, node:fs kept in config/). */
function readPem(file: string): string | { error: string } {
  const r = readPemFile(file);
  if (!r.ok) return { error: r.message };
  if (r.value.trim() === '') return { error: `${file} is empty` };
  return r.value;
}
