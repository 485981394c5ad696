/**
 * The fast first pass of the config loader. The `yaml` package keeps a positioned node for every
 * scalar, which is what gives `file:line:column` — and what made a 200,000-upstream file (12.9 MB) take
 * 30–50 s and 1.1–1.4 GB on a loaded 2-core VM. js-yaml builds plain values directly: the same file loads
 * in ~2.2 s and 140 MB there. So a file is first read with js-yaml (YAML 1.2 core schema, as `yaml`
 * uses); only when that pass finds any problem does the loader parse it again with positions to say
 * where. A file the fast pass accepts is one the positioned pass accepts with the same value (the
 * property test in test/property/config-fast-path.test.ts holds both to that).
 *
 * js-yaml is a dependency; should it be missing from an install, every file takes the positioned path. Anchors, aliases and tags go the
 * positioned way too: that path bounds alias expansion (maxAliasCount), this one would not.
 */
import { createRequire } from 'node:module';
import { substituteEnv } from './env.js';

interface JsYaml {
  load(text: string, opts: { schema: unknown; json?: boolean }): unknown;
  CORE_SCHEMA: unknown;
}

let jsYaml: JsYaml | null | undefined;
function loadJsYaml(): JsYaml | null {
  if (jsYaml === undefined) {
    try {
      jsYaml = createRequire(import.meta.url)('js-yaml') as JsYaml;
    } catch {
      jsYaml = null;
    }
  }
  return jsYaml;
}

/** An anchor, alias or tag at the start of a node (false positives only cost the slow path). */
const NODE_PROPERTY = /(?:^|[\s[{,:-])[&*!][^\s,\]}]/;

/** The file's value with `${ENV}` substituted, or undefined when the positioned path must decide. */
export function fastParse(text: string, env: NodeJS.ProcessEnv): unknown {
  const y = loadJsYaml();
  if (!y || NODE_PROPERTY.test(text)) return undefined;
  let value: unknown;
  try {
    value = y.load(text, { schema: y.CORE_SCHEMA });
  } catch {
    return undefined;
  }
  let missing = false; // a missing ${ENV} or a key to report: the positioned pass decides
  const sub = (s: string): string => {
    if (!s.includes('${')) return s;
    const r = substituteEnv(s, env);
    if (r.missing.length > 0) missing = true;
    return r.value;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return sub(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i]);
      return v;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === '__proto__') missing = true; // never a valid key; the positioned pass reports it
        out[sub(k)] = walk(x);
      }
      return out;
    }
    return v;
  };
  const result = walk(value ?? {});
  return missing ? undefined : result;
}
