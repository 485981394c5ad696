/**
 * Loads config.yaml: read → YAML with positions → `${ENV}` substitution → schema → the PEM files the
 * config names (upstream-tls.ts) → deep-frozen Config.
 *
 * Invariant: every problem comes back as a ConfigIssue with file, line and column (1-based), formatted
 * `file:line:column: message` (like `nginx -t`); nothing throws for bad input, and a Config is returned
 * only when there are no issues at all (a file is accepted or refused as a whole).
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { ZodIssue } from 'zod';
import { substituteEnv } from './env.js';
import { fastParse } from './fast-parse.js';
import { configSchema, type Config } from './schema.js';
import { didYouMean, keysAt } from './suggest.js';
import { loadUpstreamTls } from './upstream-tls.js';

export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly code: 'MG_ERR_CONFIG_YAML' | 'MG_ERR_CONFIG_UNKNOWN_KEY' | 'MG_ERR_CONFIG_INVALID' | 'MG_ERR_CONFIG_ENV' | 'MG_ERR_CONFIG_READ' | 'MG_ERR_CONFIG_CERTIFICATE';
}

export type LoadResult =
  | { ok: true; config: Config; text: string }
  | { ok: false; issues: ConfigIssue[] };

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.message}`;
}

/**
 * Largest config file read. A 200,000-upstream file is ~13 MB; past 32 MiB the YAML document alone
 * would take gigabytes, and a file that large is a mistake (a log redirected into it, a loop in a
 * generator), not a fleet.
 */
export const MAX_CONFIG_BYTES = 32 * 1024 * 1024;

/** Reads and validates a config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size > MAX_CONFIG_BYTES) {
        return { ok: false, issues: [{ file, line: 1, column: 1, code: 'MG_ERR_CONFIG_READ', message: `config file is ${size} bytes, above the limit of ${MAX_CONFIG_BYTES} (32 MiB)` }] };
      }
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return { ok: false, issues: [{ file, line: 1, column: 1, code: 'MG_ERR_CONFIG_READ', message: `cannot read config: ${(err as Error).message}` }] };
  }
  return parseConfigText(text, file, env);
}

/** Validates config text; `file` names it in messages. `positioned` skips the fast first pass (tests). */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env, opts: { positioned?: boolean } = {}): LoadResult {
  if (text.length > MAX_CONFIG_BYTES) {
    return { ok: false, issues: [{ file, line: 1, column: 1, code: 'MG_ERR_CONFIG_READ', message: `config text is above the limit of ${MAX_CONFIG_BYTES} bytes (32 MiB)` }] };
  }
  // Fast pass (fast-parse.ts): a valid file is done here; any problem is located by the pass below.
  const fast = opts.positioned ? undefined : fastParse(text, env);
  if (fast !== undefined) {
    const parsed = configSchema.safeParse(fast);
    if (parsed.success) return withTlsFiles(parsed.data, text, file);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number | undefined) => {
    const p = lc.linePos(offset ?? 0);
    return { line: p.line, column: p.col };
  };
  const issues: ConfigIssue[] = [];
  for (const e of doc.errors) {
    issues.push({ file, ...at(e.pos[0]), code: 'MG_ERR_CONFIG_YAML', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (issues.length > 0) return { ok: false, issues };

  // `__proto__` is no key of the schema, but a plain object would swallow it instead of keeping it as an
  // unknown key: report it here, where its position is known.
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === '__proto__') {
        issues.push({ file, ...at(pair.key.range?.[0]), code: 'MG_ERR_CONFIG_UNKNOWN_KEY', message: 'unknown key "__proto__"' });
      }
    },
  });
  // Substitute ${ENV} inside string scalars only, so positions of everything else stay exact.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const r = substituteEnv(node.value, env);
      for (const name of r.missing) {
        issues.push({ file, ...at(node.range?.[0]), code: 'MG_ERR_CONFIG_ENV', message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` });
      }
      node.value = r.value;
    },
  });
  if (issues.length > 0) return { ok: false, issues };

  let raw: unknown;
  try {
    // maxAliasCount bounds "billion laughs" alias expansion.
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // e.g. an alias to an anchor defined later: the YAML parser accepts it, conversion does not.
    const alias = findAlias(doc);
    return { ok: false, issues: [{ file, ...at(alias), code: 'MG_ERR_CONFIG_YAML', message: `YAML: ${(err as Error).message}` }] };
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const zi of parsed.error.issues) issues.push(...issuesFromZod(zi, doc, file, at));
    issues.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, issues };
  }
  return withTlsFiles(parsed.data, text, file);
}

/**
 * Reads the PEM files the config names (config/upstream-tls.ts) into it, then freezes it. A file that
 * cannot be read or parsed refuses the whole config, at the line of the key that names it.
 */
function withTlsFiles(config: Config, text: string, file: string): LoadResult {
  const { materials, problems } = loadUpstreamTls(config.services, file);
  if (problems.length > 0) {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
    const issues = problems.map((p): ConfigIssue => {
      const pos = lc.linePos(nodeOffset(doc, p.path) ?? 0);
      return { file, line: pos.line, column: pos.col, code: p.unreadable ? 'MG_ERR_CONFIG_READ' : 'MG_ERR_CONFIG_INVALID', message: `${p.path.join('.')}: ${p.message}` };
    });
    return { ok: false, issues };
  }
  for (const [name, material] of materials) {
    const svc = config.services[name]!;
    svc.upstreamTls = { ...svc.upstreamTls, material };
  }
  return { ok: true, config: deepFreeze(config), text };
}

/**
 * An issue about the value at `path` of a config that passed the schema, found by a later check that
 * reads more than the file (certificate files, app/config-files.ts): the YAML is parsed again, with
 * positions, only then.
 */
export function issueAt(text: string, file: string, path: (string | number)[], code: ConfigIssue['code'], message: string): ConfigIssue {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const p = lc.linePos(nodeOffset(doc, path) ?? 0);
  return { file, line: p.line, column: p.col, code, message };
}

function issuesFromZod(
  zi: ZodIssue,
  doc: Document,
  file: string,
  at: (o: number | undefined) => { line: number; column: number },
): ConfigIssue[] {
  const path = zi.path;
  const dotted = path.length ? path.join('.') : '(top level)';
  if (zi.code === 'unrecognized_keys') {
    return zi.keys.map((key) => ({
      file,
      ...at(keyOffset(doc, path, key) ?? nodeOffset(doc, path)),
      code: 'MG_ERR_CONFIG_UNKNOWN_KEY' as const,
      message: `unknown key "${key}" in ${dotted}${didYouMean(key, keysAt(configSchema, path))}`,
    }));
  }
  let message = zi.message;
  if (zi.code === 'invalid_type' && zi.received === 'undefined') message = `missing required key`;
  return [{ file, ...at(nodeOffset(doc, path)), code: 'MG_ERR_CONFIG_INVALID', message: `${dotted}: ${message}` }];
}

/** Offset of the deepest existing node on `path` (a missing key points at its parent). */
function nodeOffset(doc: Document, path: (string | number)[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) return node.range[0];
  }
  return 0;
}

function keyOffset(doc: Document, path: (string | number)[], key: string): number | undefined {
  const parent = path.length ? doc.getIn(path, true) : doc.contents;
  if (!isMap(parent)) return undefined;
  for (const pair of parent.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key.range?.[0];
  }
  return undefined;
}

function findAlias(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_k, node) {
      offset ??= node.range?.[0];
    },
  });
  return offset;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
