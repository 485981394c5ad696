/**
 * Which certificate answers a TLS ClientHello's server name (SNI). Pure: no I/O.
 *
 * Each certificate is chosen by its own names (its subjectAltName DNS entries), not by names written in
 * the config, so a certificate can never be served for a name it does not cover. The rules:
 * - names compare case-insensitively, a trailing dot ignored (RFC 6066 §3: the SNI has none; DNS may);
 * - a wildcard is a whole leftmost label `*` and covers exactly one label (`*.example.com` covers
 *   `a.example.com`, not `example.com` nor `a.b.example.com`; RFC 6125 §6.4.3, what browsers accept);
 * - an exact name beats a wildcard, whatever the certificates' order; among equals the first listed wins;
 * - a name nobody covers, or no SNI at all, gets the first certificate (nginx's `default_server`
 *   certificate, Caddy's and HAProxy's first `crt`), so a client that sends none still completes.
 * The common name is not consulted: browsers stopped reading it in 2017 (Chrome 58), and RFC 6125 §6.4.4
 * allows it only when there is no subjectAltName.
 */

/** The DNS names of a certificate, from node:crypto's `X509Certificate.subjectAltName` text
 *  (`DNS:a.example.com, DNS:*.example.com, IP Address:127.0.0.1`); lower-cased. */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(/,\s*/)) {
    if (!part.startsWith('DNS:')) continue;
    const name = normalise(part.slice(4).replace(/^"|"$/g, ''));
    if (name) out.push(name);
  }
  return out;
}

function normalise(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** How `pattern` covers `host` (both normalised): exactly, through a one-label wildcard, or not. */
export function coverage(pattern: string, host: string): 'exact' | 'wildcard' | undefined {
  if (pattern === host) return 'exact';
  if (!pattern.startsWith('*.')) return undefined;
  const dot = host.indexOf('.');
  if (dot <= 0) return undefined;
  return host.slice(dot + 1) === pattern.slice(2) ? 'wildcard' : undefined;
}

/**
 * The index of the certificate for `serverName` among certificates with `names` (in config order):
 * the first that covers it exactly, else the first that covers it by wildcard, else 0.
 */
export function chooseCertificate(names: ReadonlyArray<readonly string[]>, serverName: string | undefined): number {
  if (!serverName) return 0;
  const host = normalise(serverName);
  let wildcard = -1;
  for (let i = 0; i < names.length; i++) {
    for (const n of names[i]!) {
      const c = coverage(n, host);
      if (c === 'exact') return i;
      if (c === 'wildcard' && wildcard === -1) wildcard = i;
    }
  }
  return wildcard === -1 ? 0 : wildcard;
}
