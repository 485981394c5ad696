/**
 * Duration and size strings of config.yaml. Pure.
 *
 * Durations: `250ms`, `2s`, `5m`, `1h` (DESIGN.md §2), also a bare integer of milliseconds.
 * Sizes: `512`, `64KiB`, `10MiB`, `1GiB` (also kb/mb/gb as powers of 1024 — a proxy limit is a
 * buffer size, never a marketing megabyte).
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or an error message. */
export function parseDuration(input: unknown): number | string {
  if (typeof input === 'number') {
    return Number.isInteger(input) && input >= 0 ? input : `expected a non-negative duration, got ${input}`;
  }
  if (typeof input !== 'string') return `expected a duration such as 250ms, 2s, 5m or 1h`;
  const m = DURATION.exec(input.trim());
  if (!m) return `invalid duration "${input}": expected a number followed by ms, s, m or h (e.g. 250ms, 2s, 5m, 1h)`;
  return Math.round(Number(m[1]) * DURATION_UNIT_MS[m[2]!]!);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kib|kb|k|mib|mb|m|gib|gb|g)?$/i;
const SIZE_UNIT: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** Bytes, or an error message. */
export function parseSize(input: unknown): number | string {
  if (typeof input === 'number') {
    return Number.isInteger(input) && input >= 0 ? input : `expected a non-negative size in bytes, got ${input}`;
  }
  if (typeof input !== 'string') return `expected a size such as 16KiB or 10MiB`;
  const m = SIZE.exec(input.trim());
  if (!m) return `invalid size "${input}": expected bytes or a number with KiB, MiB or GiB`;
  return Math.floor(Number(m[1]) * SIZE_UNIT[(m[2] ?? 'b').toLowerCase()]!);
}
