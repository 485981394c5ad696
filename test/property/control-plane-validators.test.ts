/**
 * One validator per input, used everywhere (issue 13). Inputs are drawn from the union of what any
 * layer's validator accepts plus near misses (port 0/65536/99999, a fragment, credentials, weight
 * 10,001, a 0 ms interval, 503 unquoted, …) and plain garbage, and pushed through every layer:
 *
 * - admin write → (proposal bytes, as the driver commits them) → membership state machine → routing
 *   build: whatever the admin API accepts is applied without a rejection and routed without a problem;
 *   whatever it refuses leaves the state machine byte-for-byte unchanged;
 * - the same upstream in a config file: `check` accepts it exactly when the admin API does;
 * - peer addresses: admin POST /cluster/peers ⇔ cluster.bootstrap ⇔ the apply path's conf-change check
 *   ⇔ the transport's dialer;
 * - config files with health checks, outlier detection and retries: a file `check` accepts is applied by
 *   the health module and the routing snapshot build without throwing (a RangeError here used to kill a peer on reload).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { AdminError } from '../../src/admin/errors.js';
import { healthSettingsFor } from '../../src/app/health-settings.js';
import { MembershipWrites, type ClusterPart } from '../../src/app/cluster-part.js';
import { decodeProposal, encodeProposal, MembershipStateMachine, type MembershipCommand } from '../../src/cluster/membership.js';
import { checkConfChangeEntry } from '../../src/cluster/rejections.js';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { ClusterMembership } from '../../src/model/index.js';
import { HealthMonitor } from '../../src/health/index.js';
import type { Scheduler, TimerHandle } from '../../src/health/scheduler.js';
import { EventBus } from '../../src/observability/events.js';
import { Metrics } from '../../src/observability/metrics.js';
import { RoutingRefresh } from '../../src/proxy/routing-refresh.js';
import type { Eligibility } from '../../src/proxy/routing.js';
import { UpstreamPools } from '../../src/proxy/upstream-pools.js';

const pools = new UpstreamPools();
afterAll(() => pools.closeAll(true));

/** The routing snapshot a peer starting with these inputs would serve (the one build every path uses). */
function firstSnapshot(config: Config, membership: ClusterMembership | undefined, eligibility: (service: string) => Eligibility | undefined) {
  const refresh = new RoutingRefresh({ pools, metrics: new Metrics(), sources: { config: () => config, generation: () => 1, membership: () => membership, eligibility } });
  refresh.request({ kind: 'start' });
  const out = refresh.flushNow();
  if (!out.ok) throw out.error;
  return out.snapshot;
}

// ---- inputs: valid values, near misses, garbage ------------------------------------------------------
/** Mostly values some layer accepts, often a near miss: both sides of every boundary get exercised. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: bad });
const hosts = mostly(fc.constantFrom('127.0.0.1', '10.0.0.5', 'localhost', 'api.internal', '[::1]', '[fe80::1]'), fc.constantFrom('', '300.1.1.1', '10.1', 'a..b', '-x.com', 'exa mple', 'bücher.de', ':password@h', 'user@h', '::1'));
const ports = mostly(fc.constantFrom('', ':1', ':80', ':8080', ':65535'), fc.constantFrom(':0', ':65536', ':99999', ':-1', ':abc', ':'));
const tails = mostly(fc.constantFrom('', '/'), fc.constantFrom('/#x', '/#', '?', '?a=1', '/path', '//', '\\', ' ', '\n', '%00'));
const schemes = mostly(fc.constantFrom('http://', 'https://'), fc.constantFrom('HTTP://', 'ftp://', 'http:', 'http:/', '', 'javascript:'));
const urls = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(schemes, hosts, ports, tails).map(([s, h, p, t]) => `${s}${h}${p}${t}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, null, 42, true, [], {}, ['http://127.0.0.1:1']) },
);
const weights = mostly<unknown>(
  fc.oneof(fc.constantFrom(undefined, 1, 2, 10_000), fc.integer({ min: 1, max: 10_000 })),
  fc.oneof(fc.constantFrom(10_001, 0, -1, 1.5, 1e6, Number.MAX_SAFE_INTEGER, '2', null, true), fc.double({ noNaN: false })),
);
const states = mostly<unknown>(fc.constantFrom(undefined, 'active', 'draining', 'disabled'), fc.constantFrom('Active', '', 'gone', 1, null));
const ids = mostly(
  fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/), fc.constantFrom('x'.repeat(63), 'gw-2', 'a.b_c-d')),
  fc.constantFrom('', '-x', 'a'.repeat(64), 'a b', 'a/b', 'ü', '__proto__', 'constructor'),
);
const extraFields = mostly<Record<string, unknown>>(fc.constant({}), fc.constantFrom({ tags: ['x'] }, { id: 'x' }, JSON.parse('{"__proto__": 1}') as Record<string, unknown>));
const bodies = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(urls, weights, states, extraFields).map(([url, weight, state, extra]) => ({ ...(url !== undefined ? { url } : {}), ...(weight !== undefined ? { weight } : {}), ...(state !== undefined ? { state } : {}), ...extra })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 'text', 42, [], [{ url: 'http://127.0.0.1:1' }]) },
);

// ---- the layers, wired as the peer wires them (no mocks of what we test) ------------------------------
function makeCluster(fsm: MembershipStateMachine, rejected: string[]): ClusterPart {
  let index = 0;
  const commit = (command: MembershipCommand) => {
    // What the driver does: the command travels as proposal bytes and is applied from them.
    const { command: decoded } = decodeProposal(encodeProposal('p/1/1', command));
    const result = fsm.apply(++index, decoded);
    if (!result.ok && result.code === 'MG_ERR_MEMBERSHIP_INVALID') rejected.push(result.message);
    return { index, result };
  };
  const unused = () => Promise.reject(new Error('not used here'));
  return {
    membership: () => fsm.view(),
    status: () => ({ role: 'leader', term: 1, leader: 'x', commitIndex: index, appliedIndex: index, voters: [], learners: [], hasQuorum: true }),
    async putUpstream(service, id, v, clientId) {
      return { index: commit({ op: 'put-upstream', service, id, url: v.url, weight: v.weight, state: v.state, ...(clientId ? { clientId, seq: 1 } : {}) }).index };
    },
    async deleteUpstream(service, id) {
      const r = commit({ op: 'delete-upstream', service, id });
      return { index: r.index, existed: r.result.ok };
    },
    addPeer: async (id, address) => {
      // The apply path's check of the conf change the admin API would propose.
      const cc = checkConfChangeEntry(new TextEncoder().encode(JSON.stringify({ kind: 'add-learner', node: id, address })));
      if (!cc.ok) rejected.push(cc.message);
      return { index: ++index };
    },
    removePeer: unused,
    transferLeadership: unused,
    routingCurrent: () => undefined,
    // A cluster of one: no other peer to wait for.
    peersRouted: async () => ({ confirmed: [], unconfirmed: [] }),
    readIndex: async () => undefined,
    stop: async () => undefined,
  };
}

function configWith(upstreamYaml: string, cluster = true): string {
  return `node: { id: gw-1, listen: 127.0.0.1:8080 }
${cluster ? 'cluster: { listen: 127.0.0.1:7946, dataDir: /tmp/x, secret: 0123456789abcdef0123 }\n' : ''}routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    upstreams:
${upstreamYaml}`;
}

const yamlValue = (v: unknown) => JSON.stringify(v); // JSON is YAML: the file holds exactly the value the admin API got

async function admin<T>(f: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; status: number; message: string }> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    if (err instanceof AdminError) return { ok: false, status: err.status, message: err.message };
    throw err; // anything else is a bug: the admin layer must answer 4xx, not throw
  }
}

describe('one validator per input, every layer agrees', () => {
  it('an upstream the admin API accepts is applied and routed; one it refuses changes nothing; the config file agrees', async () => {
    const seen = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(ids, bodies, async (id, body) => {
        const fsm = new MembershipStateMachine();
        const rejected: string[] = [];
        const baseCfg = parseConfigText(configWith('      - { id: static-1, url: http://127.0.0.1:9001 }'), 'c.yaml', {});
        if (!baseCfg.ok) throw new Error(JSON.stringify(baseCfg.issues));
        const writes = new MembershipWrites(makeCluster(fsm, rejected), () => baseCfg.config);
        const before = Buffer.from(fsm.snapshot()).toString();
        const r = await admin(() => writes.put('web', id, body, undefined));
        seen[r.ok ? 'accepted' : 'refused']++;
        if (!r.ok) {
          expect(r.status).toBe(400);
          expect(Buffer.from(fsm.snapshot()).toString()).toBe(before);
        } else {
          expect(rejected).toEqual([]);
          expect(fsm.get('web', id)).toBeDefined();
          const snapshot = firstSnapshot(baseCfg.config, fsm.view(), () => undefined);
          expect(snapshot.problems).toEqual([]);
          expect(snapshot.services.get('web')!.upstreams.has(id)).toBe(true);
        }
        // The same upstream as a static member of a config file: accepted exactly when the admin API took it.
        const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
        if (isObject && !('id' in (body as object))) {
          const entry = { id, ...(body as object) };
          const file = parseConfigText(configWith(`      - ${yamlValue(entry)}`), 'c.yaml', {});
          expect({ file: file.ok, entry }).toEqual({ file: r.ok, entry });
        }
      }),
      { numRuns: 600 },
    );
    // Both sides of the boundary were exercised (a generator drifting to all-valid or all-garbage proves nothing).
    expect(seen.accepted).toBeGreaterThan(50);
    expect(seen.refused).toBeGreaterThan(50);
  });

  it('a peer address is accepted by the admin API, cluster.bootstrap and the apply path alike (the dialer calls the same parser)', async () => {
    const addresses = fc.oneof(
      fc.tuple(hosts, ports).map(([h, p]) => `${h}${p}`),
      fc.string({ maxLength: 30 }),
      fc.constantFrom<unknown>(42, null, ['127.0.0.1:1'], '127.0.0.1:7946', '[::1]:7946', 'gw-2.internal:7946'),
    );
    const seen = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(ids, addresses, async (id, address) => {
        const rejected: string[] = [];
        const writes = new MembershipWrites(makeCluster(new MembershipStateMachine(), rejected), () => ({}) as Config);
        const r = await admin(() => writes.addPeer({ id, address, role: 'learner' }));
        seen[r.ok ? 'accepted' : 'refused']++;
        expect(rejected).toEqual([]); // nothing the admin API accepts is refused at apply
        const file = parseConfigText(
          `node: { id: gw-1, listen: 127.0.0.1:8080 }\ncluster:\n  listen: 127.0.0.1:7946\n  dataDir: /tmp/x\n  secret: 0123456789abcdef0123\n  bootstrap:\n    - { id: ${yamlValue(id)}, address: ${yamlValue(address)} }\n`,
          'c.yaml',
          {},
        );
        expect({ file: file.ok, id, address }).toEqual({ file: r.ok, id, address });
        // The dialer (transport.ts, probe.ts) parses with the same parsePeerAddress, so it cannot disagree.
      }),
      { numRuns: 600 },
    );
    expect(seen.accepted).toBeGreaterThan(50);
    expect(seen.refused).toBeGreaterThan(50);
  });

  it('a config file check accepts is applied by the health module and the routing snapshot build without throwing', () => {
    const durations = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom<unknown>('10ms', '1s', '2s', '24h', 1_000, 2_147_483_647) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>('0ms', '1ms', '0.4ms', 0, 1, '600h', 2_147_483_648, '-1s', '1e3ms', '99999999999999999999h', 'soon', '30d') },
    );
    const codes = mostly<unknown>(fc.constantFrom(503, '503', 502, 504, 'connect-failure', 'reset', 'timeout'), fc.constantFrom(200, '200', 99, 600, 'teapot', 504.5));
    const never: Scheduler = { setTimeout: () => ({}) as TimerHandle, clearTimeout: () => undefined };
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(durations, durations, durations, durations, fc.array(codes, { maxLength: 4 }), fc.array(codes, { maxLength: 3 }), durations, (interval, timeout, base, maxEj, on, expected, ttl) => {
        const text = `node: { id: gw-1, listen: 127.0.0.1:8080 }
routes: [{ match: { pathPrefix: / }, service: web }]
services:
  web:
    sticky: { cookie: mg, ttl: ${yamlValue(ttl)} }
    healthCheck: { interval: ${yamlValue(interval)}, timeout: ${yamlValue(timeout)}${expected.length ? `, expectedStatus: ${yamlValue(expected)}` : ''} }
    outlierDetection: { baseEjectionTime: ${yamlValue(base)}, maxEjectionTime: ${yamlValue(maxEj)} }
    retries: { attempts: 1, on: ${yamlValue(on)} }
    upstreams: [{ id: a, url: http://127.0.0.1:9001 }, { id: b, url: http://127.0.0.1:9002, state: draining }]
`;
        const r = parseConfigText(text, 'c.yaml', {});
        seen[r.ok ? 'accepted' : 'refused']++;
        if (!r.ok) {
          for (const i of r.issues) expect(i.line).toBeGreaterThan(1);
          return;
        }
        const health = new HealthMonitor({ bus: new EventBus(), probe: async () => ({ ok: true, status: 200 }) as never, scheduler: never });
        try {
          for (const [name, svc] of Object.entries(r.config.services)) health.setService(name, healthSettingsFor(name, svc, undefined));
          expect(firstSnapshot(r.config, undefined, (s) => health.eligibility(s)).problems).toEqual([]);
        } finally {
          health.close();
        }
      }),
      { numRuns: 400 },
    );
    expect(seen.accepted).toBeGreaterThan(10);
    expect(seen.refused).toBeGreaterThan(50);
  });

  it('DESIGN.md §2 writes `on: [connect-failure, reset, 503]` with 503 unquoted, and it loads', () => {
    const r = parseConfigText(configWith('      - { id: a, url: http://127.0.0.1:9001 }', false).replace('    upstreams:', '    retries: { attempts: 2, on: [connect-failure, reset, 503], budgetPercent: 20 }\n    healthCheck: { path: /healthz, interval: 2s, timeout: 1s, expectedStatus: [200, "204"] }\n    upstreams:'), 'c.yaml', {});
    expect(r.ok ? r.config.services.web!.retries.on : r.issues).toEqual(['connect-failure', 'reset', '503']);
    expect(r.ok && r.config.services.web!.healthCheck!.expectedStatus).toEqual([200, 204]);
  });
});
