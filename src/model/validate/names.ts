/**
 * Names: upstream ids, peer ids and service names. One grammar for all three, because each appears
 * as a path segment of the admin API, a YAML key or scalar, a Prometheus label and a Raft entry field.
 */
import { fail, ok, shown, type Checked } from './result.js';

/** Letters, digits, ".", "_" or "-", starting with a letter or digit; 63 characters at most (a DNS label). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const NAME_RULE = 'letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters';

function checkName(what: string, v: unknown): Checked<string> {
  if (typeof v !== 'string') return fail(`${what} must be a string (${NAME_RULE}), got ${shown(v)}`);
  if (!NAME_PATTERN.test(v)) return fail(`${what} ${shown(v)} is not valid: ${NAME_RULE}`);
  return ok(v);
}

export const checkUpstreamId = (v: unknown): Checked<string> => checkName('upstream id', v);
export const checkPeerId = (v: unknown): Checked<string> => checkName('peer id', v);
export const checkServiceName = (v: unknown): Checked<string> => checkName('service name', v);
