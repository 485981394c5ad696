/**
 * RoutingRefresh under random sequences of (reload, membership write, health change) events with a
 * fake scheduler (each `turn` runs the deferred rebuilds, as one event-loop turn would):
 * - after a turn, the snapshot a request reads routes exactly as the pure build
 *   (buildRoutingSnapshot, no previous snapshot, fresh resources) of the latest inputs;
 * - every event is in exactly one rebuild's batch, in order (none lost, none applied twice), and
 *   health changes caused while the rebuild prepares its inputs join that rebuild;
 * - a snapshot already handed out (held by a request) never changes, whatever comes after it;
 * - one rebuild per turn at most, however many events the turn saw.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { ClusterUpstream, UpstreamSpec } from '../../src/model/index.js';
import { Metrics } from '../../src/observability/metrics.js';
import { liveMembers, type Eligibility } from '../../src/proxy/routing.js';
import { RoutingRefresh, type SequencedEvent } from '../../src/proxy/routing-refresh.js';
import { buildRoutingSnapshot, type RoutingSnapshot } from '../../src/proxy/routing-snapshot.js';
import type { StickyView } from '../../src/proxy/sticky-view.js';
import { UpstreamPools } from '../../src/proxy/upstream-pools.js';
import { UpstreamRuntime } from '../../src/proxy/upstream-runtime.js';
import { buildTable } from '../../src/balance/table-build.js';
import type { TableBuilder } from '../../src/proxy/table-builds.js';

const pools = new UpstreamPools();
afterAll(() => pools.closeAll(true));
const metrics = new Metrics({ defaultMetrics: false });

function parse(text: string): Config {
  const r = parseConfigText(text, 'c.yaml', {});
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

const node = (maxBody: string) => `node: { id: gw-1, listen: 127.0.0.1:8080, maxBodySize: ${maxBody} }\ncluster: { listen: 127.0.0.1:7946, dataDir: /tmp/x, secret: 0123456789abcdef0123 }\n`;
const up = (id: string, port: number, extra = '') => `      - { id: ${id}, url: http://127.0.0.1:${port}${extra} }`;
const CONFIGS: Config[] = [
  parse(`${node('1MiB')}routes: [{ match: { pathPrefix: /api }, service: api }, { match: { pathPrefix: / }, service: web }]
services:
  web:
    balancer: ring-hash
    hashOn: header:x-user
    upstreams:
${up('a', 9001)}
${up('b', 9002, ', weight: 2')}
${up('c', 9003)}
  api:
    balancer: round-robin
    upstreams:
${up('d', 9004)}
`),
  parse(`${node('2MiB')}routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    balancer: maglev
    hashOn: header:x-user
    upstreams:
${up('a', 9001)}
${up('b', 9002)}
`),
  parse(`${node('64KiB')}routes: [{ match: { host: api.example, pathPrefix: / }, service: api }, { match: { pathPrefix: / }, service: web }]
services:
  web:
    balancer: ring-hash
    hashOn: header:x-user
    sticky: { cookie: mg, ttl: 5m }
    upstreams:
${up('a', 9001)}
${up('c', 9003, ', state: draining')}
  api:
    balancer: least-request
    upstreams:
${up('d', 9004)}
${up('e', 9005)}
`),
];

type Op =
  | { kind: 'reload'; config: number }
  | { kind: 'put'; service: string; id: string; weight: number; state: 'active' | 'draining' | 'disabled' }
  | { kind: 'delete'; service: string; id: string }
  | { kind: 'health'; service: string; down: string[]; panic: boolean }
  | { kind: 'turn' };

const services = fc.constantFrom('web', 'api', 'ghost');
const ids = fc.constantFrom('a', 'b', 'm1', 'm2', 'm3');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('reload' as const), config: fc.nat({ max: CONFIGS.length - 1 }) }),
  fc.record({ kind: fc.constant('put' as const), service: services, id: ids, weight: fc.integer({ min: 1, max: 3 }), state: fc.constantFrom('active' as const, 'draining' as const, 'disabled' as const) }),
  fc.record({ kind: fc.constant('delete' as const), service: services, id: ids }),
  fc.record({ kind: fc.constant('health' as const), service: services, down: fc.subarray(['a', 'b', 'c', 'd', 'm1', 'm2']), panic: fc.boolean() }),
  fc.constant({ kind: 'turn' as const }),
);

/** The inputs a peer holds: config + generation, committed membership, and a health module's eligibility. */
class Inputs {
  config = CONFIGS[0]!;
  generation = 1;
  readonly membership = new Map<string, Map<string, ClusterUpstream>>();
  /** Per service, what the health module was last told (by prepare) and which members it sees as down. */
  private readonly known = new Map<string, UpstreamSpec[]>();
  private readonly down = new Map<string, { ids: ReadonlySet<string>; panic: boolean }>();
  private readonly cache = new Map<string, Eligibility>();

  /** What a HealthMonitor.setService does: takes the live members, recomputes. */
  configure(): string[] {
    const touched: string[] = [];
    for (const [name, svc] of Object.entries(this.config.services)) {
      this.known.set(name, liveMembers(name, svc, this.membership));
      this.cache.delete(name);
      touched.push(name);
    }
    for (const name of [...this.known.keys()]) if (!(name in this.config.services)) this.known.delete(name);
    return touched;
  }

  setHealth(service: string, down: readonly string[], panic: boolean): void {
    this.down.set(service, { ids: new Set(down), panic });
    this.cache.delete(service);
  }

  eligibility(service: string): Eligibility | undefined {
    const members = this.known.get(service);
    if (members === undefined) return undefined;
    let e = this.cache.get(service);
    if (e === undefined) {
      const d = this.down.get(service);
      const served = members.filter((m) => m.state !== 'disabled');
      const healthy = served.filter((m) => !d?.ids.has(m.id));
      const panic = d?.panic === true && healthy.length < served.length;
      const pickable = (panic ? served : healthy).filter((m) => m.state === 'active');
      const usable = new Set((panic ? served : healthy).map((m) => m.id));
      e = { pickable, usable: (id) => usable.has(id), panic };
      this.cache.set(service, e);
    }
    return e;
  }
}

const stickyViews = new Map<string, StickyView>();
function stickyFor(service: string, ttl: number): StickyView {
  const key = `${service}|${ttl}`;
  let v = stickyViews.get(key);
  if (!v) {
    v = { resolve: async () => ({ kind: 'none' }) };
    stickyViews.set(key, v);
  }
  return v;
}

/** How a snapshot routes, as data: what two snapshots must agree on to serve a request alike. */
function routesAs(s: RoutingSnapshot): unknown {
  const probes = [['api.example', '/'], ['x', '/api/v1'], ['x', '/'], [undefined, '/z']] as const;
  return {
    generation: s.generation,
    limits: s.limits,
    routes: probes.map(([h, p]) => s.routes.match(h, p)),
    services: [...s.services.values()].map((svc) => ({
      name: svc.name,
      balancer: svc.cfg.balancer,
      members: svc.members.map((m) => `${m.id} ${m.url} ${m.weight} ${m.state} ${m.source}`),
      upstreams: [...svc.upstreams.keys()],
      pickable: svc.pickable.map((p) => p.id),
      panic: svc.panic,
      usable: ['a', 'b', 'c', 'd', 'e', 'm1', 'm2', 'm3'].filter((id) => svc.usable(id)),
      sticky: svc.sticky === undefined ? undefined : svc.sticky === stickyFor(svc.name, svc.cfg.sticky!.ttl),
      // Hash balancers are deterministic in their inputs: the same keys land on the same upstreams.
      picks: svc.cfg.hashOn === undefined ? undefined : ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((k) => svc.balancer.pick({ hashKey: k })),
    })),
  };
}

function pureBuild(inputs: Inputs, through: number): RoutingSnapshot {
  return buildRoutingSnapshot(
    { config: inputs.config, generation: inputs.generation, membership: inputs.membership, eligibility: (s) => inputs.eligibility(s), nowMs: 0, through },
    undefined,
    {
      runtime: (service, spec, opts) => new UpstreamRuntime(spec, pools.get(spec.url, opts), `${spec.url}|${opts.connectTimeoutMs}`, metrics.bindUpstream(service, spec.id)),
      sticky: (service, svc) => stickyFor(service, svc.sticky!.ttl),
    },
  );
}

/** A refresh over `Inputs`, with the deferral run by hand and the ops a peer would turn into events. */
function world(tables?: { builder: TableBuilder; minCost: number }) {
  const inputs = new Inputs();
  const deferred: Array<() => void> = [];
  const batches: SequencedEvent[][] = [];
  const counts = { requested: 0 };
  const refresh: RoutingRefresh = new RoutingRefresh({
    pools,
    metrics,
    defer: (fn) => deferred.push(fn),
    nowMs: () => 0,
    ...(tables ? { tables } : {}),
    sources: {
      config: () => inputs.config,
      generation: () => inputs.generation,
      membership: () => inputs.membership,
      eligibility: (s) => inputs.eligibility(s),
      // As the peer's prepareRouting: the health module takes the new members and reports a change
      // per service (HealthMonitor.onChange fires synchronously inside setService).
      prepare: (batch) => {
        if (!batch.some((e) => e.event.kind !== 'health')) return;
        for (const name of inputs.configure()) {
          refresh.request({ kind: 'health', service: name });
          counts.requested++;
        }
      },
      sticky: (service, svc) => stickyFor(service, svc.sticky!.ttl),
    },
    onApplied: (_s, batch) => batches.push([...batch]),
  });
  const apply = (o: Exclude<Op, { kind: 'turn' }>) => {
    switch (o.kind) {
      case 'reload':
        inputs.config = CONFIGS[o.config]!;
        inputs.generation++;
        refresh.request({ kind: 'reload' });
        break;
      case 'put': {
        let reg = inputs.membership.get(o.service);
        if (!reg) inputs.membership.set(o.service, (reg = new Map()));
        reg.set(o.id, { url: `http://127.0.0.1:${9100 + o.id.length}`, weight: o.weight, state: o.state });
        refresh.request({ kind: 'membership' });
        break;
      }
      case 'delete':
        inputs.membership.get(o.service)?.delete(o.id);
        refresh.request({ kind: 'membership' });
        break;
      case 'health':
        inputs.setHealth(o.service, o.down, o.panic);
        refresh.request({ kind: 'health', service: o.service });
        break;
    }
    counts.requested++;
  };
  const held: Array<[RoutingSnapshot, unknown]> = [];
  const check = () => {
    const s = refresh.snapshot!;
    expect(s.through).toBe(counts.requested);
    expect(routesAs(s)).toEqual(routesAs(pureBuild(inputs, counts.requested)));
    held.push([s, routesAs(s)]);
  };
  const start = () => {
    refresh.request({ kind: 'start' });
    counts.requested++;
    refresh.flushNow();
  };
  const end = () => {
    const seqs = batches.flat().map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: counts.requested }, (_, i) => i + 1));
    for (const [s, seen] of held) expect(routesAs(s)).toEqual(seen);
  };
  return { refresh, deferred, apply, check, start, end };
}

/** Answers every table job on the next microtask: the held-batch logic, without a thread. */
let tableJobs = 0;
const promptBuilder: TableBuilder = {
  build: async (job) => {
    tableJobs++;
    return buildTable(job);
  },
  close: async () => undefined,
};

describe('RoutingRefresh: random event sequences', () => {
  it('after each turn the snapshot is the pure build of the latest inputs; every event applied exactly once; held snapshots never change', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const w = world();
        const turn = () => {
          const fns = w.deferred.splice(0);
          expect(fns.length).toBeLessThanOrEqual(1); // one rebuild scheduled per turn, however many events
          for (const fn of fns) fn();
        };
        w.start();
        turn();
        w.check();
        for (const o of ops) {
          if (o.kind !== 'turn') w.apply(o);
          else {
            turn();
            w.check();
          }
        }
        turn();
        w.check();
        w.end();
      }),
      { numRuns: 150 },
    );
  });

  it('the same with every hash table built off the loop: events arriving while a table is made join its rebuild, and nothing is lost', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const w = world({ builder: promptBuilder, minCost: 1 });
        // A turn, then every turn the table builds cause, until the refresh is idle.
        const settle = async () => {
          for (let i = 0; i < 20; i++) {
            const fns = w.deferred.splice(0);
            expect(fns.length).toBeLessThanOrEqual(1);
            for (const fn of fns) fn();
            await new Promise((r) => setImmediate(r));
            if (w.deferred.length === 0) return;
          }
          throw new Error('the refresh did not settle');
        };
        w.start();
        await settle();
        w.check();
        let turns = 0;
        for (const o of ops) {
          if (o.kind !== 'turn') w.apply(o);
          else if (turns++ % 2 === 0) {
            // Start the rebuild (its table jobs go out) and keep applying: the next events land while
            // the tables are being made.
            for (const fn of w.deferred.splice(0)) fn();
          } else {
            await settle();
            w.check();
          }
        }
        await settle();
        w.check();
        w.end();
      }),
      { numRuns: 100 },
    );
    expect(tableJobs).toBeGreaterThan(20); // the path ran (a table is made only when its inputs change)
  });
});
