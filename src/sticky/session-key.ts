/**
 * Session keys: reading them from a request, minting new ones, hashing them into store ids, and the
 * Set-Cookie line for a new session.
 *
 * Invariants:
 * - A key is accepted only if it is 1..MAX_SESSION_KEY_LENGTH characters from SESSION_KEY_CHARSET.
 *   Anything else (oversized, control characters, quotes, several different values) is treated as
 *   absent, so the client simply gets a new session; nothing here throws on client input.
 * - The raw key never reaches the store: `sessionIdFor` hashes (service, key) with SHA-256 and keeps
 *   22 base64url characters (132 bits), so keys are bounded, carry no client data, and the same
 *   cookie used on two services gives two independent pins.
 * - Minted keys carry 128 random bits from the OS CSPRNG (OWASP Session Management Cheat Sheet asks
 *   for at least 64 bits of entropy); they are not secrets that grant anything, only routing handles.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { cookieValue } from '../lib/cookie.js';

/**
 * Longest key accepted (characters). 128 fits every common session id format (UUIDs 36, base64 of
 * 32–64 random bytes ≤ 88, JWT-less opaque tokens) while bounding what one request can make us hash.
 */
export const MAX_SESSION_KEY_LENGTH = 128;

/** base64 / base64url / hex / UUID characters, plus `.` and `~` (RFC 6265 cookie-octets subset). */
const SESSION_KEY_CHARSET = /^[A-Za-z0-9._~+/=-]+$/;

/** Cookie names must be RFC 9110 tokens (RFC 6265 §4.1.1). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Header that carries the pin's fencing token to the upstream. The proxy strips any client copy. */
export const FENCE_HEADER = 'x-meshgate-fence';

export function isValidSessionKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_SESSION_KEY_LENGTH && SESSION_KEY_CHARSET.test(key);
}

/**
 * The session key of a request, from the configured header (checked first) or cookie.
 * Returns undefined when absent or malformed; callers then start a new session.
 */
export function sessionKeyFrom(headers: IncomingHttpHeaders, cfg: { readonly cookie?: string | undefined; readonly header?: string | undefined }): string | undefined {
  if (cfg.header !== undefined) {
    const raw = headers[cfg.header.toLowerCase()];
    // Several copies of the header: accept only if they agree, else the key is ambiguous.
    const value = Array.isArray(raw) ? (raw.every((v) => v === raw[0]) ? raw[0] : undefined) : raw;
    if (typeof value === 'string') {
      const trimmed = value.trim();
      if (isValidSessionKey(trimmed)) return trimmed;
    }
  }
  if (cfg.cookie !== undefined) {
    const value = cookieValue(headers.cookie, cfg.cookie);
    if (value !== undefined && isValidSessionKey(value)) return value;
  }
  return undefined;
}

/** A fresh session key: 16 CSPRNG bytes, base64url (22 characters). */
export function newSessionKey(): string {
  return randomBytes(16).toString('base64url');
}

/** Store id of (service, key): base64url(SHA-256(service NUL key)) truncated to 22 characters. */
export function sessionIdFor(service: string, key: string): string {
  return createHash('sha256').update(service).update('\0').update(key).digest('base64url').slice(0, 22);
}

/**
 * Set-Cookie value for a new session: `Path=/; HttpOnly; SameSite=Lax`, plus `Secure` behind TLS
 * (DESIGN.md §5). `maxAgeMs` is optional and off by default: the cookie lives for the browser session
 * and the pin's idle TTL is the server-side bound. A Max-Age equal to the pin TTL would expire the
 * cookie under an active session unless it were re-sent on every renewal.
 */
export function sessionCookie(name: string, key: string, opts: { readonly secure: boolean; readonly maxAgeMs?: number | undefined }): string {
  if (!COOKIE_NAME.test(name)) throw new TypeError(`invalid cookie name ${JSON.stringify(name)}`);
  if (!isValidSessionKey(key)) throw new TypeError('invalid session key');
  let s = `${name}=${key}; Path=/; HttpOnly; SameSite=Lax`;
  if (opts.maxAgeMs !== undefined) s += `; Max-Age=${Math.max(0, Math.floor(opts.maxAgeMs / 1000))}`;
  if (opts.secure) s += '; Secure';
  return s;
}
