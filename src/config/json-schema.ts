/**
 * A JSON Schema (draft-07) of config.yaml, derived from the zod schema: the one definition stays
 * schema.ts, and editors (VS Code's YAML extension via `# yaml-language-server: $schema=…`) get
 * completion, defaults and the easy errors as you type. `meshgate check` stays the authority: the
 * cross-field rules (superRefine), host:port and URL shapes, and duration/size syntax are only
 * approximated here (a duration is "a string or a number").
 *
 * Written by scripts/config-schema.ts into docs/config.schema.json; a test keeps the file current.
 */
import { z, type ZodTypeAny } from 'zod';
import { jsonHintOf, type JsonSchema } from './json-hint.js';

export type { JsonSchema };

export function toJsonSchema(schema: ZodTypeAny): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'meshgate config.yaml',
    description: 'Generated from src/config/schema.ts by `npm run schema`; reference: docs/config.md. `meshgate check <file>` is the full validation.',
    ...convert(schema),
  };
}

function convert(s: ZodTypeAny): JsonSchema {
  const hint = jsonHintOf(s);
  if (hint) return hint;
  if (s instanceof z.ZodDefault) {
    const inner = convert(s.removeDefault() as ZodTypeAny);
    return { ...inner, default: (s._def as { defaultValue: () => unknown }).defaultValue() };
  }
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) return convert(s.unwrap() as ZodTypeAny);
  if (s instanceof z.ZodEffects) return convert(s.innerType() as ZodTypeAny);
  if (s instanceof z.ZodObject) {
    const shape = s.shape as Record<string, ZodTypeAny>;
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const [k, v] of Object.entries(shape)) {
      properties[k] = convert(v);
      if (!v.isOptional()) required.push(k);
    }
    const strict = (s._def as { unknownKeys: string }).unknownKeys === 'strict';
    return { type: 'object', properties, ...(required.length ? { required } : {}), ...(strict ? { additionalProperties: false } : {}) };
  }
  if (s instanceof z.ZodRecord) {
    return { type: 'object', propertyNames: convert(s.keySchema as ZodTypeAny), additionalProperties: convert(s.valueSchema as ZodTypeAny) };
  }
  if (s instanceof z.ZodArray) {
    const min = (s._def as { minLength: { value: number } | null }).minLength;
    return { type: 'array', items: convert(s.element as ZodTypeAny), ...(min ? { minItems: min.value } : {}) };
  }
  if (s instanceof z.ZodUnion) {
    const options = (s.options as ZodTypeAny[]).map(convert);
    // string | number (durations, sizes): one type list reads better in an editor than anyOf.
    if (options.every((o) => Object.keys(o).length === 1 && typeof o.type === 'string')) return { type: options.map((o) => o.type) };
    return { anyOf: options };
  }
  if (s instanceof z.ZodEnum) return { type: 'string', enum: [...(s.options as string[])] };
  if (s instanceof z.ZodLiteral) return { const: s.value as string | number | boolean };
  if (s instanceof z.ZodBoolean) return { type: 'boolean' };
  if (s instanceof z.ZodString) {
    const out: JsonSchema = { type: 'string' };
    for (const c of s._def.checks) {
      if (c.kind === 'regex') out.pattern = c.regex.source;
      else if (c.kind === 'startsWith') out.pattern = `^${c.value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`;
      else if (c.kind === 'min') out.minLength = c.value;
    }
    return out;
  }
  if (s instanceof z.ZodNumber) {
    const out: JsonSchema = { type: 'number' };
    for (const c of s._def.checks) {
      if (c.kind === 'int') out.type = 'integer';
      else if (c.kind === 'min') out[c.inclusive ? 'minimum' : 'exclusiveMinimum'] = c.value;
      else if (c.kind === 'max') out[c.inclusive ? 'maximum' : 'exclusiveMaximum'] = c.value;
    }
    return out;
  }
  throw new TypeError(`json-schema: no conversion for ${s.constructor.name}`);
}
