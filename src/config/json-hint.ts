/**
 * What the JSON Schema of config.yaml says about a zod type that zod cannot describe by itself: the
 * fields checked by model/validate's checkers (durations, sizes, ids, addresses, the upstream list) are
 * `z.unknown().transform(check)`, so schema.ts attaches a hint when it builds one and json-schema.ts
 * reads it. An approximation for editors; `meshgate check` stays the authority.
 */
import type { ZodTypeAny } from 'zod';

export type JsonSchema = { [k: string]: unknown };

const hints = new WeakMap<ZodTypeAny, JsonSchema>();

export function withJsonHint<T extends ZodTypeAny>(schema: T, hint: JsonSchema): T {
  hints.set(schema, hint);
  return schema;
}

export function jsonHintOf(schema: ZodTypeAny): JsonSchema | undefined {
  return hints.get(schema);
}
