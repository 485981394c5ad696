/**
 * Reads the files of every `services.<name>.upstreamTls` block (DESIGN.md §9) into the material the
 * TLS clients are built from. Called by the loader on every load (start, reload, `meshgate check`), so
 * a changed file is picked up by the next reload and a broken one is refused like any bad config.
 *
 * Relative paths are resolved against the directory of the config file, not the working directory:
 * `meshgate check /etc/meshgate/config.yaml` and the peer started by systemd from `/` read the same files.
 */
import { dirname, resolve } from 'node:path';
import type { UpstreamTlsMaterial, UpstreamTlsSettings } from '../model/validate/index.js';
import { checkKeyPair, checkSecureContext, parseCertificates, parsePrivateKey, readPemFile, tlsMaterialId, type PemResult } from './pem-files.js';

export interface TlsFileProblem {
  /** Config path of the key that names the file (for the line and column). */
  readonly path: (string | number)[];
  readonly message: string;
  readonly unreadable: boolean;
}

export function loadUpstreamTls(
  services: Readonly<Record<string, { upstreamTls?: UpstreamTlsSettings | undefined }>>,
  configFile: string,
): { materials: Map<string, UpstreamTlsMaterial>; problems: TlsFileProblem[] } {
  const base = dirname(resolve(configFile));
  const materials = new Map<string, UpstreamTlsMaterial>();
  const problems: TlsFileProblem[] = [];
  for (const [name, svc] of Object.entries(services)) {
    const t = svc.upstreamTls;
    if (t === undefined) continue;
    const at = (field: string) => ['services', name, 'upstreamTls', field];
    const failed = (field: string, r: { message: string; unreadable?: true }) => problems.push({ path: at(field), message: r.message, unreadable: r.unreadable === true });
    const read = (field: 'ca' | 'cert' | 'key'): { file: string; text: string } | undefined => {
      const p = t[field];
      if (p === undefined) return undefined;
      const file = resolve(base, p);
      const r = readPemFile(file);
      if (!r.ok) return void failed(field, r);
      return { file, text: r.value };
    };
    const before = problems.length;
    const ca = read('ca');
    const cert = read('cert');
    const key = read('key');
    if (ca) check(parseCertificates(ca.file, ca.text), (r) => failed('ca', r));
    const leaf = cert && check(parseCertificates(cert.file, cert.text), (r) => failed('cert', r))?.[0];
    const pkey = key && check(parsePrivateKey(key.file, key.text), (r) => failed('key', r));
    if (leaf && pkey) {
      const mismatch = checkKeyPair(cert.file, leaf, key.file, pkey);
      if (mismatch) failed('key', { message: mismatch });
    }
    if (problems.length > before) continue;
    const files = [ca, cert, key].filter((f) => f !== undefined).map((f) => f.file).join(', ');
    const refused = checkSecureContext(files, { ca: ca?.text, cert: cert?.text, key: key?.text });
    if (refused) {
      failed(t.ca !== undefined ? 'ca' : 'cert', { message: refused });
      continue;
    }
    materials.set(name, {
      ...(t.serverName !== undefined ? { serverName: t.serverName } : {}),
      ...(ca ? { ca: ca.text } : {}),
      ...(cert && key ? { cert: cert.text, key: key.text } : {}),
      id: tlsMaterialId([t.serverName, ca?.text, cert?.text, key?.text]),
    });
  }
  return { materials, problems };
}

function check<T>(r: PemResult<T>, onFail: (r: { message: string }) => void): T | undefined {
  if (r.ok) return r.value;
  onFail(r);
  return undefined;
}
