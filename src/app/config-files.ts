/**
 * The files a config names besides itself, read with it: `node.tls.certificates` (tls/certificates.ts).
 * `meshgate check`, the start and every reload go through here, so a pair that would not load fails
 * the check, refuses the start, or rejects the reload (the running pair keeps serving) — each time as a
 * `file:line:column` issue at the pair's `cert` or `key` key, with the certificate or key file named.
 */
import { issueAt, loadConfigFile, type ConfigIssue, type LoadResult } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { loadCertificates, type CertificateSet } from '../tls/certificates.js';

export type CertificatesResult = { ok: true; certificates: CertificateSet | undefined } | { ok: false; issues: ConfigIssue[] };

/** Loads the certificates `config` names; `text` and `file` are the config's, to place issues. */
export function certificatesOf(config: Config, text: string, file: string): CertificatesResult {
  const tls = config.node.tls;
  if (tls === undefined) return { ok: true, certificates: undefined };
  const r = loadCertificates(tls.certificates, tls);
  if (r.ok) return { ok: true, certificates: r.set };
  return {
    ok: false,
    issues: r.problems.map((p) => issueAt(text, file, ['node', 'tls', 'certificates', p.index, p.field], 'MG_ERR_CONFIG_CERTIFICATE', `node.tls.certificates.${p.index}.${p.field}: ${p.message}`)),
  };
}

/** The config file and the files it names, as `meshgate check` and a start read them. */
export function loadConfigWithFiles(file: string): { ok: true; loaded: Extract<LoadResult, { ok: true }>; certificates: CertificateSet | undefined } | { ok: false; issues: ConfigIssue[] } {
  const loaded = loadConfigFile(file);
  if (!loaded.ok) return loaded;
  const certs = certificatesOf(loaded.config, loaded.text, file);
  if (!certs.ok) return certs;
  return { ok: true, loaded, certificates: certs.certificates };
}
