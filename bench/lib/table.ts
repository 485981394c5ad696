// Markdown table and number formatting for bench output (pasted into README as is).

/** A Markdown table; numbers are right-aligned, text left-aligned. */
export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || /^[-+]?[\d.,]+(×|%| ms)?$|^—$|^n\/a$/.test(String(r[i]))));
  const line = (r: string[]): string => `| ${r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), rule, ...cells.map(line)].join('\n');
}

/** Requests per second with thousands separators, no decimals. */
export function fmtRps(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Milliseconds with 2 significant decimals below 10 ms, 1 above. */
export function fmtMs(v: number): string {
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

/** a ÷ b as "0.87×", or "—" when either is missing or b is 0. */
export function fmtRatio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return '—';
  return `${(a / b).toFixed(2)}×`;
}

/** Relative change (b − a) / a as "-12.3%". */
export function fmtChange(from: number, to: number): string {
  if (from === 0) return '—';
  const pct = ((to - from) / from) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`;
}
