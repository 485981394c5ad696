/**
 * `${NAME}` substitution in config string values (DESIGN.md §1): a missing variable is an error.
 * `${NAME:-default}` gives a default (the POSIX shell / docker-compose form), so the example config
 * can reference secrets and still start on a laptop. `$${` escapes a literal `${`.
 */

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface EnvResult {
  value: string;
  missing: string[];
}

export function substituteEnv(text: string, env: NodeJS.ProcessEnv): EnvResult {
  const missing: string[] = [];
  const value = text.replace(REF, (whole, name: string | undefined, dflt: string | undefined) => {
    if (whole === '$${') return '${';
    const v = env[name!];
    if (v !== undefined) return v;
    if (dflt !== undefined) return dflt;
    missing.push(name!);
    return '';
  });
  return { value, missing };
}
