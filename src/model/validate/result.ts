/** What every validator of this folder returns: the value (possibly normalized), or one message. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
export const fail = <T = never>(message: string): Checked<T> => ({ ok: false, message });

/** A short, printable rendering of an untrusted value for an error message (never the whole of a huge input). */
export function shown(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : (JSON.stringify(v) ?? String(v));
  } catch {
    s = typeof v;
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
