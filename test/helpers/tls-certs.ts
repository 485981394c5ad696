/**
 * Certificates generated at test time with the `openssl` CLI: a throwaway CA and leaf certificates it
 * signs, with the subjectAltName DNS names a test asks for (EC P-256, valid two days). Clients verify
 * against `ca.cert` (curl --cacert, node `ca:`), so a test sees which certificate it got by whether the
 * name verifies, and by the certificate's serial / SANs.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends CertFiles {
  readonly dir: string;
  /** A leaf for `names` (DNS SANs), files `<base>.crt` / `<base>.key` in the CA's directory. */
  issue(base: string, names: readonly string[]): CertFiles;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestCa(dir: string): TestCa {
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', ca.key, '-out', ca.cert, '-days', '2', '-subj', '/CN=meshgate test CA']);
  let serial = 1;
  return {
    ...ca,
    dir,
    issue(base, names) {
      const files = { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
      const csr = join(dir, `${base}.csr`);
      const ext = join(dir, `${base}.ext`);
      writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.key, '-out', csr, '-subj', `/CN=${names[0] ?? base}`]);
      openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++ * 1000 + Math.floor(Math.random() * 999)), '-days', '2', '-extfile', ext, '-out', files.cert]);
      return files;
    },
  };
}
