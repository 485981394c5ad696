/**
 * The one reader of a request's Cookie header: `hashOn: cookie:NAME` (proxy/) and a sticky service's
 * `cookie: NAME` (sticky/) must see the same value for the same header, or a hash key and a session
 * key would disagree about which cookie the client sent.
 *
 * RFC 6265 §5.4: a user agent sends `name=value` pairs joined by "; ", cookies with longer paths first,
 * so when one name appears twice the first is the most specific one the client holds: the first wins.
 * §4.1.1: a value may be wrapped in DQUOTEs, which are not part of it. Whitespace around names and
 * values is dropped (§5.2 step 5 for what servers receive from lenient clients). Several Cookie header
 * lines (HTTP/2 allows them; Node joins HTTP/1.1 ones with "; ") are read as one list.
 */

/** Bound on the Cookie header we scan (bytes); Node already caps all headers at 16 KiB by default. */
const MAX_COOKIE_HEADER_SCAN = 16 * 1024;

/** Value of the first cookie called `name` (an empty value counts as absent), or undefined. */
export function cookieValue(header: string | readonly string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = (typeof header === 'string' ? header : header.join('; ')).slice(0, MAX_COOKIE_HEADER_SCAN);
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v === '' ? undefined : v;
  }
  return undefined;
}
