/**
 * `node.accessLog`: `true` / `false`, or an object choosing the format, the fields and the target
 * (NGINX `log_format` + `access_log path`, Envoy `%FIELD%` format strings as the models).
 *
 *   accessLog:
 *     format: json                 # json (default) | text
 *     fields: [time, clientIp, method, path, status, durationMs]   # json: which fields, in order
 *     template: '%clientIp% "%method% %path%" %status% %durationMs%'  # text: Envoy-style placeholders
 *     file: /var/log/meshgate/access.log                           # default: stdout
 *
 * One vocabulary of field names serves both formats (ACCESS_LOG_FIELDS, documented in docs/config.md).
 */
import { z } from 'zod';
import { didYouMean } from './suggest.js';

export const ACCESS_LOG_FIELDS = [
  'time', 'method', 'path', 'protocol', 'status', 'service', 'upstream', 'upstreamAddress', 'durationMs', 'upstreamMs',
  'requestId', 'attempts', 'reason', 'clientIp', 'clientPort', 'host', 'userAgent', 'referer', 'bytesReceived', 'bytesSent', 'traceparent',
] as const;
export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number];

/** The JSON line's fields when none are chosen: the original set, then what NGINX's `combined` adds. */
export const DEFAULT_JSON_FIELDS: readonly AccessLogField[] = [
  'method', 'path', 'status', 'service', 'upstream', 'durationMs', 'requestId', 'attempts', 'reason',
  'clientIp', 'host', 'userAgent', 'bytesReceived', 'bytesSent', 'upstreamAddress', 'upstreamMs',
];

/** The text line when no template is given: NGINX `combined`, then meshgate's own fields. */
export const DEFAULT_TEMPLATE =
  '%clientIp% - - [%time%] "%method% %path% %protocol%" %status% %bytesSent% "%referer%" "%userAgent%" %service% %upstream% %upstreamAddress% %durationMs% %requestId%';

const PLACEHOLDER = /%([A-Za-z]*)%/g;

const objectForm = z.object({
  enabled: z.boolean().default(true),
  format: z.enum(['json', 'text']).default('json'),
  fields: z.array(z.enum(ACCESS_LOG_FIELDS)).nonempty().optional(),
  template: z.string().min(1).optional(),
  file: z.string().min(1).optional(),
}).strict().superRefine((o, ctx) => {
  if (o.fields && o.format !== 'json') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['fields'], message: 'fields choose the JSON format\'s fields; the text format takes a template' });
  if (o.template && o.format !== 'text') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['template'], message: 'template is for format: text' });
  for (const m of (o.template ?? '').matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    if (name !== '' && !(ACCESS_LOG_FIELDS as readonly string[]).includes(name)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['template'], message: `unknown placeholder %${name}%${didYouMean(name, ACCESS_LOG_FIELDS)} (fields: ${ACCESS_LOG_FIELDS.join(', ')}; %% is a literal %)` });
    }
  }
});

export interface AccessLogSettings {
  readonly enabled: boolean;
  readonly format: 'json' | 'text';
  readonly fields: readonly AccessLogField[];
  readonly template: string;
  readonly file: string | undefined;
}

export const accessLogSchema = z.union([z.boolean(), objectForm]).default(true).transform((v): AccessLogSettings => {
  const o = typeof v === 'boolean' ? { enabled: v, format: 'json' as const } : v;
  return {
    enabled: o.enabled,
    format: o.format,
    fields: ('fields' in o && o.fields) || DEFAULT_JSON_FIELDS,
    template: ('template' in o && o.template) || DEFAULT_TEMPLATE,
    file: ('file' in o && o.file) || undefined,
  };
});
