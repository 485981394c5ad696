/**
 * Sticky resolve throughput and latency on each Redis topology (DESIGN.md §12), side by side: one
 * redis-server, a Sentinel set (1 primary, 1 replica, 3 Sentinels) and a Redis Cluster (3 primaries +
 * 3 replicas), each with the local pin cache on (1 s, the default) and off (every resolve asks Redis).
 * Also the Redis round trips per resolve in steady state (EVALSHA/EVAL calls summed over every
 * primary's INFO commandstats, divided by resolves).
 *
 * Same driver as sticky-resolve.ts (16 in flight, 2000 sessions, BENCH_STICKY_MS per case). Starts
 * and stops its own servers on free loopback ports (test/helpers/redis-*.ts), whatever happens.
 */
import { cli } from '../../test/helpers/redis-cli.js';
import { startRedisCluster, type RedisCluster } from '../../test/helpers/redis-cluster.js';
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.js';
import { startSentinelSet, type SentinelSet } from '../../test/helpers/redis-sentinel.js';
import { RedisPinStore, StickyResolver, type RedisTopology } from '../../src/sticky/index.js';
import { drive, request, warm } from './sticky-resolve.js';

interface Row {
  name: string;
  value: number;
  unit: string;
}

const SESSIONS = 2000;

async function roundTrips(primaryPorts: readonly number[]): Promise<number> {
  let n = 0;
  for (const port of primaryPorts) {
    const info = await cli(port, ['INFO', 'commandstats']);
    for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) n += Number(m[2]);
  }
  return n;
}

async function waitClosed(resolver: StickyResolver, key: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (resolver.stats().breaker !== 'closed' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    await resolver.resolve(request(key));
  }
}

async function measure(rows: Row[], label: string, topology: RedisTopology, primaryPorts: () => Promise<number[]>): Promise<void> {
  // Session keys must be valid ([A-Za-z0-9._~+/=-]); an invalid one is a new session on every request.
  const keys = Array.from({ length: SESSIONS }, (_, i) => `topo-${label.replace(/[^A-Za-z0-9]/g, "")}-${i}`);
  for (const cacheTtlMs of [1000, 0]) {
    const store = new RedisPinStore({ topology, keyPrefix: `bench${cacheTtlMs}:`, budgetMs: 50 });
    try {
      if (!(await store.connection.waitReady(10_000))) throw new Error(`${label}: store not ready`);
      const resolver = new StickyResolver({ store, cacheTtlMs, budgetMs: 50 });
      await warm(resolver, keys);
      // The breaker may have opened during the warm-up on a busy machine; start every case closed.
      await waitClosed(resolver, keys[0]!);
      const ports = await primaryPorts();
      const before = await roundTrips(ports);
      const r = await drive(resolver, keys);
      const trips = (await roundTrips(ports)) - before;
      const st = resolver.stats();
      const tag = `${label}, cache ${cacheTtlMs ? 'on (1 s)' : 'off'}`;
      rows.push({ name: `${tag}: resolves/s`, value: Math.round(r.perSec), unit: 'ops/s' });
      rows.push({ name: `${tag}: resolve p99`, value: Number(r.p99.toFixed(3)), unit: 'ms' });
      rows.push({ name: `${tag}: Redis round trips per resolve`, value: Number((trips / r.count).toFixed(4)), unit: 'EVALSHA' });
      rows.push({ name: `${tag}: store calls per resolve (resolver's count)`, value: Number((st.storeCalls / st.resolves).toFixed(4)), unit: 'calls' });
      const degraded = st.fallbackHash + st.fallbackLastKnown;
      if (degraded > 0) rows.push({ name: `${tag}: degraded resolves (store past the 50 ms budget)`, value: degraded, unit: 'count' });
      resolver.close();
    } finally {
      await store.close();
    }
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  rows.push({ name: 'load average at start (1 min)', value: Number((await import('node:os')).loadavg()[0]!.toFixed(2)), unit: '' });
  let single: RedisServer | undefined;
  let sentinel: SentinelSet | undefined;
  let cluster: RedisCluster | undefined;
  try {
    single = await startRedis();
    await measure(rows, 'single redis', { kind: 'single', url: single.url }, async () => [single!.port]);
    await single.stop();

    sentinel = await startSentinelSet();
    const s = sentinel;
    await measure(rows, 'sentinel (1+1, 3 sentinels)', { kind: 'sentinel', sentinels: s.sentinelAddrs, name: s.name }, async () => [await s.masterPort()]);
    await sentinel.stop();

    cluster = await startRedisCluster({ primaries: 3, replicas: 1 });
    const c = cluster;
    await measure(rows, 'cluster (3+3)', { kind: 'cluster', nodes: c.seeds }, async () => (await c.primaries()).map((p) => p.port));
  } finally {
    await single?.stop();
    await sentinel?.stop();
    await cluster?.stop();
  }
  return rows;
}
