/**
 * The builder thread (proxy/table-builds.ts, compiled: it needs dist/) makes the same ring-hash ring
 * and Maglev table as a build on the event loop, for a full build and for a ring or table derived from
 * the one it replaces, and its tables arrive in shared memory (no copy back).
 */
import { afterAll, describe, expect, it } from 'vitest';

const dist = new URL('../../dist/src/', import.meta.url).href;
type Mod = Record<string, unknown>;
type MaglevParts = { table: Uint32Array; permutations: { offset: Int32Array; skip: Int32Array } };
const { ThreadTableBuilder } = (await import(`${dist}proxy/table-builds.js`)) as { ThreadTableBuilder: new () => { build(j: unknown): Promise<{ kind: string; ring?: { points: Uint32Array; owners: Uint32Array }; parts?: MaglevParts }>; close(): Promise<void> } };
const tb = (await import(`${dist}balance/table-build.js`)) as Mod & { buildTable(j: unknown): { ring?: { points: Uint32Array; owners: Uint32Array }; parts?: MaglevParts }; tableJob(k: string, c: unknown, o: unknown, p: unknown): unknown };
const { RingHashBalancer } = (await import(`${dist}balance/ring-hash.js`)) as { RingHashBalancer: new (s: unknown, o?: unknown, p?: unknown) => unknown };
const { MaglevBalancer } = (await import(`${dist}balance/maglev.js`)) as { MaglevBalancer: new (s: unknown, o?: unknown, p?: unknown) => unknown };

const builder = new ThreadTableBuilder();
afterAll(() => builder.close());

const candidates = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: `up-${i + from}`, weight: 1 + ((i + from) % 3) }));
const same = (a: Uint32Array, b: Uint32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

describe('the table builder thread', () => {
  it('a full ring of 1,000 upstreams: the same points and owners as a build here, in shared memory', async () => {
    const job = tb.tableJob('ring-hash', candidates(1000), {}, undefined);
    const [thread, here] = [await builder.build(job), tb.buildTable(job)];
    expect(thread.ring!.points.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(thread.ring!.points.length).toBeGreaterThan(1_000_000);
    expect(same(thread.ring!.points, here.ring!.points)).toBe(true);
    expect(same(thread.ring!.owners, here.ring!.owners)).toBe(true);
  });

  it('a ring derived from its predecessor (one upstream added): the same as deriving here', async () => {
    const before = new RingHashBalancer({ candidates: candidates(1000) }, {});
    const job = tb.tableJob('ring-hash', candidates(1001), {}, before);
    const [thread, here] = [await builder.build(job), tb.buildTable(job)];
    expect(same(thread.ring!.points, here.ring!.points)).toBe(true);
    expect(same(thread.ring!.owners, here.ring!.owners)).toBe(true);
  });

  it('a Maglev table of 1,000 upstreams: the same slots', async () => {
    const job = tb.tableJob('maglev', candidates(1000), {}, undefined);
    const [thread, here] = [await builder.build(job), tb.buildTable(job)];
    expect(thread.parts!.table.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(same(thread.parts!.table, here.parts!.table)).toBe(true);
  });

  it('a Maglev table updated from its predecessor (one upstream added): the same slots and permutations as a full build here', async () => {
    const before = new MaglevBalancer({ candidates: candidates(1000) }, {});
    const job = tb.tableJob('maglev', candidates(1001), {}, before);
    const [thread, here] = [await builder.build(job), tb.buildTable(tb.tableJob('maglev', candidates(1001), {}, undefined))];
    expect(same(thread.parts!.table, here.parts!.table)).toBe(true);
    expect(thread.parts!.permutations.offset).toEqual(here.parts!.permutations.offset);
    expect(thread.parts!.permutations.skip).toEqual(here.parts!.permutations.skip);
  });
});
