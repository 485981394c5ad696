/**
 * A pin move hands out fence + 1; a failover that loses the move brings the old pin and its lower fence
 * back. On a replicated topology the move is therefore pipelined with `WAIT 1` (redis-connection.ts
 * scriptReplicated): checked here against a real Sentinel set and a real Cluster — the replica holds
 * the moved pin when the call returns, and a replica that cannot answer (SIGSTOP) costs at most the
 * budget and is counted, never a failed move.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisPinStore } from '../../src/sticky/index.js';
import { cli, info } from '../helpers/redis-cli.js';
import { startSentinelSet, type SentinelSet } from '../helpers/redis-sentinel.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';

const BUDGET_MS = 1_000; // generous for a loaded runner: the WAIT itself is half of it
const PASSWORD = 'move-test-pw';
const SID = 'a'.repeat(32);
let set: SentinelSet;
let cluster: RedisCluster;

beforeAll(async () => {
  [set, cluster] = await Promise.all([
    startSentinelSet({ name: 'mv', replicas: 1, sentinels: 3, password: PASSWORD }),
    startRedisCluster({ primaries: 3, replicas: 1 }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([set?.stop(), cluster?.stop()]);
});

/** The pin's fence as a replica (or any node holding the key) has it. */
async function fenceOn(port: number, key: string, password?: string): Promise<number> {
  return Number(await cli(port, ['HGET', key, 'f'], { password }));
}

async function waits(port: number, password?: string): Promise<number> {
  const stats = await info(port, 'commandstats', { password });
  return Number(/calls=(\d+)/.exec(stats.get('cmdstat_wait') ?? '')?.[1] ?? 0);
}

describe('a pin move waits for a replica', () => {
  it('Sentinel: the replica holds the new fence on return; a stopped replica costs at most the budget and is counted', async () => {
    const store = new RedisPinStore({ topology: { kind: 'sentinel', sentinels: set.sentinelAddrs, name: set.name }, password: PASSWORD, keyPrefix: 'mv:', budgetMs: BUDGET_MS });
    try {
      await store.connection.waitReady(10_000);
      const key = `mv:${RedisPinStore.keyOf(SID)}`;
      const created = await store.createIfAbsent(SID, 'u1', { ttlMs: 60_000, renewBelowMs: 1_000, minFence: 0 });
      const waitsBefore = await waits(set.primary.port, PASSWORD);
      const moved = await store.compareAndMove(SID, { upstream: 'u1', fence: created.fence }, 'u2', { ttlMs: 60_000, minFence: 0 });
      expect(moved.outcome).toBe('moved');
      // Read at once from the replica: WAIT returned only after it acknowledged the write.
      expect(await fenceOn(set.replicas[0]!.port, key, PASSWORD)).toBe(moved.fence);
      expect(await waits(set.primary.port, PASSWORD)).toBe(waitsBefore + 1);
      expect(store.connection.unreplicated).toBe(0);

      set.replicas[0]!.kill('SIGSTOP');
      try {
        const again = await store.compareAndMove(SID, { upstream: 'u2', fence: moved.fence }, 'u3', { ttlMs: 60_000, minFence: 0 });
        expect(again.outcome).toBe('moved'); // applied on the primary: not an error, just unreplicated
        expect(again.fence).toBe(moved.fence + 1);
        expect(store.connection.unreplicated).toBe(1);
      } finally {
        set.replicas[0]!.kill('SIGCONT');
      }
    } finally {
      await store.close();
    }
  });

  it('Cluster: the WAIT goes to the primary that owns the key, and its replica holds the new fence', async () => {
    const store = new RedisPinStore({ topology: { kind: 'cluster', nodes: cluster.seeds }, keyPrefix: 'mv:', budgetMs: BUDGET_MS });
    try {
      await store.connection.waitReady(10_000);
      const key = `mv:${RedisPinStore.keyOf(SID)}`;
      const slot = Number(await cli(cluster.seeds[0]!.port, ['CLUSTER', 'KEYSLOT', key]));
      const nodes = await cluster.nodes();
      const owner = nodes.find((n) => n.role === 'master' && n.slots.some((r) => { const [a, b = a] = r.split('-').map(Number); return slot >= a! && slot <= b!; }))!;
      const replica = nodes.find((n) => n.role === 'replica' && n.masterId === owner.id)!;
      const created = await store.createIfAbsent(SID, 'u1', { ttlMs: 60_000, renewBelowMs: 1_000, minFence: 0 });
      const before = await waits(owner.port);
      const moved = await store.compareAndMove(SID, { upstream: 'u1', fence: created.fence }, 'u2', { ttlMs: 60_000, minFence: 0 });
      expect(moved.outcome).toBe('moved');
      expect(await waits(owner.port)).toBe(before + 1);
      // A Cluster replica answers reads only on a connection in READONLY mode: both on one redis-cli session.
      const out = spawnSync('redis-cli', ['-p', String(replica.port)], { input: `READONLY\nHGET ${key} f\n`, encoding: 'utf8', timeout: 5_000 });
      expect(out.stdout.trim().split('\n')).toEqual(['OK', String(moved.fence)]);
      expect(store.connection.unreplicated).toBe(0);
    } finally {
      await store.close();
    }
  });
});
