/**
 * Big ring-hash and Maglev tables off the event loop (issue 14): a deferred rebuild that needs one
 * does not swap until the table builder has made it, the requests meanwhile read the previous
 * snapshot whole, `applied()` waits for the swap, events that arrive while the table is built join
 * the same rebuild, and the balancer finally swapped in routes exactly as a build on the loop would.
 * A builder that fails costs latency only: the table is then built inline. The builder here is a fake
 * that the test releases by hand; balance/table-build is the same code the real thread runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { RoutingRefresh } from '../../../src/proxy/routing-refresh.js';
import { UpstreamPools } from '../../../src/proxy/upstream-pools.js';
import type { ClusterMembership } from '../../../src/model/index.js';
import { buildTable, type TableJob, type TableResult } from '../../../src/balance/table-build.js';
import { createBalancer } from '../../../src/balance/index.js';
import type { TableBuilder } from '../../../src/proxy/table-builds.js';

const pools: UpstreamPools[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.closeAll(true)));
});

function config(balancer: 'ring-hash' | 'maglev', n: number): Config {
  const r = parseConfigText(
    [
      'node: { id: t, listen: 127.0.0.1:0, admin: { listen: 127.0.0.1:0 } }',
      'routes: [{ match: { pathPrefix: / }, service: big }]',
      'services:',
      '  big:',
      `    balancer: ${balancer}`,
      '    hashOn: header:x-k',
      '    upstreams:',
      ...Array.from({ length: n }, (_, i) => `      - { id: u${i}, url: http://127.0.0.1:${10_000 + i} }`),
    ].join('\n'),
    'test.yaml',
  );
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

/** A builder whose jobs finish when the test says so. */
class HeldBuilder implements TableBuilder {
  readonly jobs: Array<{ job: TableJob; finish: () => void; fail: () => void }> = [];
  build(job: TableJob): Promise<TableResult> {
    return new Promise((resolve, reject) => this.jobs.push({ job, finish: () => resolve(buildTable(job)), fail: () => reject(new Error('thread died')) }));
  }
  async close(): Promise<void> {}
}

function harness(cfg: Config, builder: TableBuilder) {
  const state = { membership: undefined as ClusterMembership | undefined };
  const turns: Array<() => void> = [];
  const p = new UpstreamPools();
  pools.push(p);
  const refresh = new RoutingRefresh({
    pools: p,
    metrics: new Metrics({ defaultMetrics: false }),
    sources: { config: () => cfg, generation: () => 1, membership: () => state.membership, eligibility: () => undefined },
    defer: (fn) => turns.push(fn),
    nowMs: () => 1_000_000,
    tables: { builder, minCost: 50_000 },
  });
  const turn = () => {
    for (const fn of turns.splice(0)) fn();
  };
  return { state, refresh, turn };
}

const added = (id: string): ClusterMembership => new Map([['big', new Map([[id, { url: 'http://127.0.0.1:20000', weight: 1, state: 'active' as const }]])]]);
const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);

function picks(b: { pick(ctx: { hashKey?: string }): string | undefined }): Array<string | undefined> {
  return keys.map((k) => b.pick({ hashKey: k }));
}

const flushMicrotasks = () => new Promise((r) => setImmediate(r));

describe('RoutingRefresh with tables built off the loop', () => {
  for (const kind of ['ring-hash', 'maglev'] as const) {
    it(`${kind}: the swap waits for the table; until then the previous snapshot serves; the result routes as a build on the loop`, async () => {
      const builder = new HeldBuilder();
      const { state, refresh, turn } = harness(config(kind, 100), builder);
      refresh.request({ kind: 'start' });
      refresh.flushNow(); // start builds inline: nothing waits on the builder
      expect(builder.jobs).toHaveLength(0);
      const first = refresh.snapshot!;
      state.membership = added('new-1');
      refresh.request({ kind: 'membership' });
      let applied = false;
      const done = refresh.applied().then((o) => (applied = o.ok));
      turn();
      expect(builder.jobs).toHaveLength(1);
      expect(refresh.snapshot).toBe(first); // nothing half-built is served
      await flushMicrotasks();
      expect(applied).toBe(false);
      // An event arriving meanwhile joins the same rebuild.
      state.membership = added('new-2');
      refresh.request({ kind: 'membership' });
      builder.jobs[0]!.finish();
      await flushMicrotasks();
      turn();
      // The first table was for new-1: the batch now needs one for new-2, built off the loop too.
      if (builder.jobs.length > 1) {
        builder.jobs[1]!.finish();
        await flushMicrotasks();
        turn();
      }
      await done;
      expect(applied).toBe(true);
      const svc = refresh.snapshot!.services.get('big')!;
      expect(svc.upstreams.has('new-2')).toBe(true);
      expect(refresh.snapshot!.through).toBe(3);
      const direct = createBalancer(kind, { candidates: svc.pickable.map((p) => ({ id: p.id, weight: p.weight })) }, {});
      expect(picks(svc.balancer)).toEqual(picks(direct));
    });
  }

  it('a builder that fails costs only time: the next rebuild makes the table inline', async () => {
    const builder = new HeldBuilder();
    const { state, refresh, turn } = harness(config('ring-hash', 100), builder);
    refresh.request({ kind: 'start' });
    refresh.flushNow();
    state.membership = added('new-1');
    refresh.request({ kind: 'membership' });
    const done = refresh.applied();
    turn();
    builder.jobs[0]!.fail();
    await flushMicrotasks();
    turn();
    expect((await done).ok).toBe(true);
    expect(refresh.snapshot!.services.get('big')!.upstreams.has('new-1')).toBe(true);
    expect(builder.jobs).toHaveLength(1);
  });

  it('a small table is built in the rebuild itself', () => {
    const builder = new HeldBuilder();
    const { state, refresh, turn } = harness(config('ring-hash', 10), builder);
    refresh.request({ kind: 'start' });
    refresh.flushNow();
    state.membership = added('new-1');
    refresh.request({ kind: 'membership' });
    turn();
    expect(builder.jobs).toHaveLength(0);
    expect(refresh.snapshot!.services.get('big')!.upstreams.has('new-1')).toBe(true);
  });
});
