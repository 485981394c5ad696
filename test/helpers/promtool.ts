/**
 * Turns real `/metrics` scrapes of meshgate peers into promtool unit-test input series, and runs
 * promtool (Debian package `prometheus`). Pure conversion plus one child process per call.
 *
 * Mapping: scrape k of a scenario is placed at minute k (real scrapes are ~1 s apart; rates are
 * compressed in time, ratios and quantiles are not). After the last scrape every series is held
 * for `holdMinutes` more minutes so `for:` clauses and 5m windows can elapse: a gauge keeps its last
 * value, a counter keeps growing at its average increase per scrape (the rate it was seen at).
 * A series missing from a scrape (peer down, series removed) is `_` (no sample), as Prometheus
 * stores it; `up{job="meshgate",instance}` is 1 for a scrape that answered and 0 for one that failed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

/** One scrape attempt of one peer: the exposition text, or undefined when the scrape failed. */
export interface Scrape {
  readonly instance: string;
  readonly text: string | undefined;
}

interface Sample {
  name: string;
  labels: string;
  value: number;
}

export function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    samples.push({ name: m[1]!, labels: m[2] ?? '', value: parseValue(m[3]!) });
  }
  return { types, samples };
}

function parseValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

function familyType(types: Map<string, string>, name: string): string {
  if (types.has(name)) return types.get(name)!;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return types.get(base) === 'histogram' ? 'counter' : 'untyped';
}

/**
 * Input series of one scenario: `rounds[k]` holds scrape k of every peer. Only meshgate's own
 * families (`meshgate_*`) and `up` are kept: process/nodejs metrics are not used by the rules.
 */
export function toInputSeries(rounds: ReadonlyArray<readonly Scrape[]>, holdMinutes = 15): string {
  const series = new Map<string, { values: Array<number | undefined>; counter: boolean }>();
  const put = (key: string, k: number, value: number, counter: boolean): void => {
    let s = series.get(key);
    if (!s) {
      s = { values: new Array<number | undefined>(rounds.length).fill(undefined), counter };
      series.set(key, s);
    }
    s.values[k] = value;
  };
  rounds.forEach((round, k) => {
    for (const scrape of round) {
      const extra = `instance="${scrape.instance}",job="meshgate"`;
      put(`up{${extra}}`, k, scrape.text === undefined ? 0 : 1, false);
      if (scrape.text === undefined) continue;
      const { types, samples } = parseExposition(scrape.text);
      for (const s of samples) {
        if (!s.name.startsWith('meshgate_')) continue;
        put(`${s.name}{${s.labels ? `${s.labels},` : ''}${extra}}`, k, s.value, familyType(types, s.name) === 'counter');
      }
    }
  });
  let out = '';
  for (const [key, s] of series) {
    const seen = s.values.map((v) => (v === undefined ? '_' : num(v)));
    const last = s.values[s.values.length - 1];
    let hold: string;
    if (last === undefined) hold = `_x${holdMinutes}`;
    else if (s.counter) {
      const present = s.values.map((v, i) => [i, v] as const).filter(([, v]) => v !== undefined) as Array<readonly [number, number]>;
      const [i0, v0] = present[0]!;
      const [i1, v1] = present[present.length - 1]!;
      const step = i1 > i0 ? (v1 - v0) / (i1 - i0) : 0;
      hold = `${num(last + step)}+${num(step)}x${holdMinutes - 1}`;
    } else hold = `${num(last)}x${holdMinutes - 1}`;
    out += `      - series: '${key}'\n        values: '${seen.join(' ')} ${hold}'\n`;
  }
  return out;
}

function num(v: number): string {
  if (v === Infinity) return 'Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isInteger(v) ? String(v) : v.toPrecision(12).replace(/\.?0+$/, '');
}

export interface ScenarioCheck {
  /** A PromQL expression evaluated at the end of the hold. */
  readonly expr: string;
  /** The exact samples it must return (labels as `{a="b"}`, value). */
  readonly samples: ReadonlyArray<readonly [string, number]>;
}

/** A promtool test group for one scenario: input series plus checks at minute `evalMinute`. */
export function testGroup(name: string, input: string, evalMinute: number, checks: readonly ScenarioCheck[]): string {
  let out = `  # ${name}\n  - interval: 1m\n    input_series:\n${input}    promql_expr_test:\n`;
  for (const c of checks) {
    out += `      - expr: '${c.expr.replace(/'/g, "''")}'\n        eval_time: ${evalMinute}m\n        exp_samples:${c.samples.length ? '' : ' []'}\n`;
    for (const [labels, value] of c.samples) out += `          - labels: '${labels}'\n            value: ${value}\n`;
  }
  return out;
}

export function runPromtool(args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Writes the unit-test file beside a copy path of the rules and runs `promtool test rules`. */
export function promtoolTestRules(dir: string, rulesFile: string, groups: string[]): { code: number; out: string; file: string } {
  const file = join(dir, 'alerts.test.yaml');
  writeFileSync(file, `rule_files:\n  - ${rulesFile}\nevaluation_interval: 1m\ntests:\n${groups.join('')}`);
  return { ...runPromtool(['test', 'rules', file]), file };
}
