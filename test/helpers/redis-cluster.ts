/**
 * A real Redis Cluster for integration tests and benches: `primaries` × (1 + `replicas`) redis-server
 * processes with `cluster-enabled yes` on free loopback ports, each in its own temp dir, joined with
 * `redis-cli --cluster create … --cluster-replicas N --cluster-yes`.
 *
 * cluster-node-timeout defaults to 1000 ms here (Redis: 15 s) so that a SIGKILLed primary is replaced
 * within ~2 s; `cluster-replica-validity-factor 0` lets any replica take over however long it lagged.
 * Invariant: stop() kills every node (redis-server.ts also SIGKILLs them at process exit).
 */
import { cli, info, poll } from './redis-cli.js';
import { freePort, startRedis, type RedisServer } from './redis-server.js';

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly role: 'master' | 'replica';
  /** Replica: its primary's id. */
  readonly masterId?: string;
  readonly failed: boolean;
  /** Slot ranges as CLUSTER NODES prints them ("0-5460"). */
  readonly slots: readonly string[];
}

export interface RedisCluster {
  readonly servers: RedisServer[];
  readonly seeds: Array<{ host: string; port: number }>;
  readonly password?: string;
  /** CLUSTER NODES as seen from a live node. */
  nodes(): Promise<ClusterNode[]>;
  primaries(): Promise<ClusterNode[]>;
  server(port: number): RedisServer;
  /** SIGKILL one node (after noting its replicas, for waitFailover). */
  kill(port: number): Promise<void>;
  /** Wait until a live replica replaced `port` as primary and every live node says cluster_state:ok. */
  waitFailover(deadPort: number, timeoutMs?: number): Promise<ClusterNode>;
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** `redis-cli --cluster reshard`: move `slots` slots from one primary to another. */
  reshard(fromPort: number, toPort: number, slots: number): Promise<void>;
  cli(port: number, args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const flags = f[2]!.split(',');
      const port = Number(f[1]!.split('@')[0]!.split(':').pop());
      return {
        id: f[0]!,
        port,
        flags,
        role: flags.includes('master') ? ('master' as const) : ('replica' as const),
        ...(f[3] !== '-' ? { masterId: f[3] } : {}),
        failed: flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr'),
        slots: f.slice(8).filter((s) => !s.startsWith('[')),
      };
    });
}

export async function startRedisCluster(opts: { primaries?: number; replicas?: number; nodeTimeoutMs?: number; password?: string; extraArgs?: string[] } = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const count = primaries * (1 + (opts.replicas ?? 1));
  const auth = opts.password !== undefined ? ['--requirepass', opts.password, '--masterauth', opts.password] : [];
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000), '--cluster-replica-validity-factor', '0', ...auth, ...(opts.extraArgs ?? [])];
  // The cluster bus port defaults to port + 10000, which can land on a port another test just took
  // from freePort(); ask the kernel for a free one instead.
  const servers = await Promise.all(Array.from({ length: count }, async () => startRedis({ args: [...args, '--cluster-port', String(await freePort())] })));
  const pw = opts.password !== undefined ? { password: opts.password } : {};
  const run = (port: number, a: readonly string[]): Promise<string> => cli(port, a, { ...pw, timeoutMs: 60_000 });
  const live = (): RedisServer[] => servers.filter((s) => !killed.has(s.port));
  const killed = new Set<number>();
  const c: RedisCluster = {
    servers,
    seeds: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    ...pw,
    async nodes() {
      for (const s of live()) {
        try {
          return parseClusterNodes(await run(s.port, ['CLUSTER', 'NODES']));
        } catch {
          // try the next live node
        }
      }
      throw new Error('no cluster node answers');
    },
    async primaries() {
      return (await c.nodes()).filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0);
    },
    server(port) {
      const s = servers.find((x) => x.port === port);
      if (!s) throw new Error(`no node on ${port}`);
      return s;
    },
    async kill(port) {
      const nodes = await c.nodes();
      const dead = nodes.find((n) => n.port === port);
      replicasOf.set(port, new Set(nodes.filter((n) => n.masterId !== undefined && n.masterId === dead?.id).map((n) => n.id)));
      killed.add(port);
      c.server(port).kill('SIGKILL');
    },
    async waitFailover(deadPort, timeoutMs = 20_000) {
      let promoted: ClusterNode | undefined;
      const heirs = replicasOf.get(deadPort) ?? new Set<string>();
      await poll(async () => {
        const nodes = await c.nodes().catch(() => []);
        promoted = nodes.find((n) => heirs.has(n.id) && n.role === 'master' && n.slots.length > 0);
        return promoted !== undefined && (await allOk());
      }, timeoutMs, () => `no replica took over from ${deadPort}`);
      return promoted!;
    },
    async waitHealthy(timeoutMs = 20_000) {
      await poll(allOk, timeoutMs, () => 'cluster not healthy');
    },
    async reshard(fromPort, toPort, slots) {
      const nodes = await c.nodes();
      const id = (p: number): string => nodes.find((n) => n.port === p)!.id;
      await run(live()[0]!.port, ['--cluster', 'reshard', `127.0.0.1:${live()[0]!.port}`, '--cluster-from', id(fromPort), '--cluster-to', id(toPort), '--cluster-slots', String(slots), '--cluster-yes', '--cluster-pipeline', '10']);
    },
    cli: run,
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
  // Replica ids of each killed primary, so waitFailover knows which node should take over.
  const replicasOf = new Map<number, Set<string>>();
  const allOk = async (): Promise<boolean> => {
    for (const s of live()) {
      const st = await run(s.port, ['CLUSTER', 'INFO']).catch(() => '');
      if (!/cluster_state:ok/.test(st) || !/cluster_slots_ok:16384/.test(st)) return false;
    }
    // Every live replica is in sync (so a kill of its primary can fail over without losing much).
    for (const n of (await c.nodes()).filter((x) => x.role === 'replica' && !x.failed)) {
      if ((await info(n.port, 'replication', pw).catch(() => undefined))?.get('master_link_status') !== 'up') return false;
    }
    return true;
  };
  try {
    await run(servers[0]!.port, ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(opts.replicas ?? 1), '--cluster-yes']);
    await c.waitHealthy(30_000);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return c;
}
