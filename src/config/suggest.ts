/**
 * "Did you mean" for a misspelt config key or service name (HAProxy: `unknown keyword 'balanse' …
 * did you mean 'balance' maybe ?`). Pure: edit distance against the names that are valid there.
 */
import { z, type ZodTypeAny } from 'zod';
import { jsonHintOf, type JsonSchema } from './json-hint.js';

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a third of the word's length (at least 1 edit), or undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestD && dist <= limit) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}

/** `; did you mean "x"?`, or '' when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean "${c}"?`;
}

/** The keys an object accepts at `path` of `schema` (array indexes and record keys are stepped through). */
export function keysAt(schema: ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  let s: ZodTypeAny | undefined = schema;
  for (let i = 0; i <= path.length; i++) {
    // A field checked by model/validate (the upstream list) is described by its JSON hint, not by zod.
    const hint = s === undefined ? undefined : jsonHintAlong(s);
    if (hint) return hintKeysAt(hint, path.slice(i));
    s = unwrap(s);
    const step = path[i];
    if (step === undefined) break;
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, ZodTypeAny>)[String(step)];
    else if (s instanceof z.ZodArray) s = s.element as ZodTypeAny;
    else if (s instanceof z.ZodRecord) s = s.valueSchema as ZodTypeAny;
    else if (s instanceof z.ZodUnion) s = (s.options as ZodTypeAny[]).map(unwrap).find((o) => o instanceof z.ZodObject);
    else return [];
  }
  if (s instanceof z.ZodUnion) s = (s.options as ZodTypeAny[]).map(unwrap).find((o) => o instanceof z.ZodObject);
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

/** The JSON hint of `s` or of what it wraps (default, optional). */
function jsonHintAlong(s: ZodTypeAny): JsonSchema | undefined {
  let cur: ZodTypeAny | undefined = s;
  while (cur) {
    const hint = jsonHintOf(cur);
    if (hint) return hint;
    if (cur instanceof z.ZodDefault) cur = cur.removeDefault() as ZodTypeAny;
    else if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as ZodTypeAny;
    else return undefined;
  }
  return undefined;
}

function hintKeysAt(hint: JsonSchema, path: ReadonlyArray<string | number>): string[] {
  let h: JsonSchema | undefined = hint;
  for (const step of path) {
    if (h === undefined) return [];
    if (h.type === 'array') h = h.items as JsonSchema | undefined;
    else h = (h.properties as Record<string, JsonSchema> | undefined)?.[String(step)];
  }
  return h?.properties ? Object.keys(h.properties as object) : [];
}

function unwrap(s: ZodTypeAny | undefined): ZodTypeAny | undefined {
  for (;;) {
    if (s instanceof z.ZodEffects) s = s.innerType() as ZodTypeAny;
    else if (s instanceof z.ZodDefault) s = s.removeDefault() as ZodTypeAny;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as ZodTypeAny;
    else return s;
  }
}
