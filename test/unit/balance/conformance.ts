/**
 * Conformance suite every balancer runs (Hono's `common.case.test.ts` pattern, style.md "Tests"): the
 * promises the proxy relies on whatever the algorithm. Each `<algo>.test.ts` calls runConformance.
 *
 * Promises checked: never picks an excluded or absent upstream; honours weights within tolerance; the
 * same inputs (same snapshot in any order, same seed, same keys) give the same answers; empty set and
 * all-excluded give undefined; a context with every field missing still works; pickDetailed agrees
 * with pick; bad input throws BalanceInvalidError (MG_ERR_BALANCE_INVALID). A skip must give a reason.
 */
import { describe, expect, it } from 'vitest';
import { createBalancer, BalanceInvalidError, type Balancer, type BalancerName, type BalancerOptions, type PickCandidate, type PickContext } from '../../../src/balance/index.js';
import { createSeededRandom } from '../../../src/lib/rng.js';

export interface ConformanceCase {
  readonly name: BalancerName;
  /** Options for every balancer built by the suite (e.g. a smaller ring to keep the suite fast). */
  readonly opts?: BalancerOptions;
  /** Hash balancers: give each pick a hash key (distinct keys), as the proxy does. */
  readonly keyed: boolean;
  /** Tests to skip, with the reason (the suite prints it in the test name). */
  readonly skip?: Partial<Record<'weights', string>>;
}

const ids = (n: number, prefix = 'up'): PickCandidate[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, weight: 1 }));

function contexts(c: ConformanceCase, count: number, seed: number, extra: Partial<PickContext> = {}): PickContext[] {
  const random = createSeededRandom(seed);
  const out: PickContext[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ ...extra, random, ...(c.keyed ? { hashKey: `user-${seed}-${i}` } : {}) });
  }
  return out;
}

export function runConformance(c: ConformanceCase): void {
  const build = (candidates: readonly PickCandidate[], opts: BalancerOptions = {}): Balancer =>
    createBalancer(c.name, { candidates }, { ...c.opts, ...opts });

  describe(`${c.name} conformance`, () => {
    it('reports its config name', () => {
      expect(build(ids(2)).name).toBe(c.name);
    });

    it('returns undefined for an empty set, with or without a key', () => {
      const b = build([]);
      expect(b.pick({})).toBeUndefined();
      expect(b.pick({ hashKey: 'k', random: () => 0.5 })).toBeUndefined();
      expect(b.pickDetailed?.({}).id).toBeUndefined();
    });

    it('returns undefined when every upstream is excluded', () => {
      const cands = ids(4);
      const b = build(cands);
      const exclude = new Set(cands.map((x) => x.id));
      for (const ctx of contexts(c, 50, 1, { exclude })) expect(b.pick(ctx)).toBeUndefined();
    });

    it('never picks an excluded upstream nor one outside the snapshot', () => {
      const cands = ids(7);
      const members = new Set(cands.map((x) => x.id));
      const b = build(cands);
      const exclude = new Set(['up-1', 'up-4', 'up-6']);
      const seen = new Set<string>();
      for (const ctx of contexts(c, 3000, 2, { exclude })) {
        const id = b.pick(ctx);
        expect(id).toBeDefined();
        expect(members.has(id!)).toBe(true);
        expect(exclude.has(id!)).toBe(false);
        seen.add(id!);
      }
      // Every non-excluded upstream still gets traffic.
      expect([...seen].sort()).toEqual(['up-0', 'up-2', 'up-3', 'up-5']);
    });

    it('always picks the only upstream when there is one', () => {
      const b = build([{ id: 'solo', weight: 3 }]);
      for (const ctx of contexts(c, 100, 3)) expect(b.pick(ctx)).toBe('solo');
      expect(b.pick({})).toBe('solo');
    });

    const weightsSkip = c.skip?.weights;
    (weightsSkip ? it.skip : it)(`honours weights 1:2:3 within ±10 % relative${weightsSkip ? ` (skipped: ${weightsSkip})` : ''}`, () => {
      const cands = [{ id: 'w1', weight: 1 }, { id: 'w2', weight: 2 }, { id: 'w3', weight: 3 }];
      const b = build(cands);
      const counts = new Map<string, number>();
      const n = 60_000;
      for (const ctx of contexts(c, n, 4)) {
        const id = b.pick(ctx)!;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      for (const { id, weight } of cands) {
        const share = (counts.get(id) ?? 0) / n;
        expect(Math.abs(share / (weight / 6) - 1), `${id} share ${share.toFixed(4)}`).toBeLessThan(0.1);
      }
    });

    it('gives the same answers for the same inputs, whatever the snapshot order', () => {
      const cands = ids(9).map((x, i) => ({ ...x, weight: 1 + (i % 3) }));
      const shuffled = [...cands].reverse();
      const a = build(cands);
      const b = build(shuffled);
      const exclude = new Set(['up-3']);
      const load = (id: string) => ({ inFlight: id.length % 3, latencyEwmaMs: 5 });
      const picksA = contexts(c, 500, 5, { exclude, load, nowMs: 1000 }).map((ctx) => a.pick(ctx));
      const picksB = contexts(c, 500, 5, { exclude, load, nowMs: 1000 }).map((ctx) => b.pick(ctx));
      expect(picksB).toEqual(picksA);
      // Without a random source: each balancer's own fixed-seed fallback, so two fresh ones agree too.
      const fresh1 = build(cands), fresh2 = build(shuffled);
      const seq1 = Array.from({ length: 200 }, (_, i) => fresh1.pick(c.keyed && i % 2 ? { hashKey: `k${i}` } : {}));
      const seq2 = Array.from({ length: 200 }, (_, i) => fresh2.pick(c.keyed && i % 2 ? { hashKey: `k${i}` } : {}));
      expect(seq2).toEqual(seq1);
    });

    it('works with every context field missing', () => {
      const b = build(ids(3));
      for (let i = 0; i < 20; i++) expect(['up-0', 'up-1', 'up-2']).toContain(b.pick({}));
    });

    it('pickDetailed agrees with pick', () => {
      const a = build(ids(5));
      const b = build(ids(5));
      expect(typeof a.pickDetailed).toBe('function');
      const xs = contexts(c, 300, 6);
      const ys = contexts(c, 300, 6);
      xs.forEach((x, i) => expect(b.pickDetailed!(ys[i]!).id).toBe(a.pick(x)));
    });

    it('rejects weights ≤ 0, non-finite weights, duplicate ids and boundedLoad < 1 with MG_ERR_BALANCE_INVALID', () => {
      const bad: Array<[readonly PickCandidate[], BalancerOptions]> = [
        [[{ id: 'a', weight: 0 }], {}],
        [[{ id: 'a', weight: -1 }], {}],
        [[{ id: 'a', weight: Number.NaN }], {}],
        [[{ id: 'a', weight: Number.POSITIVE_INFINITY }], {}],
        [[{ id: 'a', weight: 1 }, { id: 'a', weight: 2 }], {}],
        [[{ id: 'a', weight: 1 }], { boundedLoad: 0.99 }],
        [[{ id: 'a', weight: 1 }], { boundedLoad: Number.NaN }],
      ];
      for (const [cands, opts] of bad) {
        let err: unknown;
        try {
          build(cands, opts);
        } catch (e) {
          err = e;
        }
        expect(err, JSON.stringify({ cands, opts })).toBeInstanceOf(BalanceInvalidError);
        expect((err as BalanceInvalidError).code).toBe('MG_ERR_BALANCE_INVALID');
      }
    });
  });
}
