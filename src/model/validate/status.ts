/**
 * Status lists: `retries.on` and `healthCheck.expectedStatus`. DESIGN.md §2 writes
 * `on: [connect-failure, reset, 503]` — YAML reads the bare 503 as a number — so a status code is
 * taken as a number or as its string, and comes out in one form.
 */
import { fail, ok, shown, type Checked } from './result.js';

export const RETRY_CONDITIONS = ['connect-failure', 'reset', 'timeout', '502', '503', '504'] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

/** One entry of retries.on: a failure kind, or 502/503/504 as a number or string. */
export function checkRetryCondition(v: unknown): Checked<RetryCondition> {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  if (typeof s === 'string' && (RETRY_CONDITIONS as readonly string[]).includes(s)) return ok(s as RetryCondition);
  return fail(`retry condition must be one of ${RETRY_CONDITIONS.join(', ')}, got ${shown(v)}`);
}

/** An HTTP status code 100–599, as a number or a string of digits. */
export function checkStatusCode(v: unknown): Checked<number> {
  const n = typeof v === 'string' && /^\d{3}$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 100 && n <= 599) return ok(n);
  return fail(`expected an HTTP status code 100–599, got ${shown(v)}`);
}
