/**
 * A real Sentinel set for integration tests and benches: one primary, `replicas` replicas and
 * `sentinels` Sentinels (`redis-server <conf> --sentinel`), all on free loopback ports in temp dirs.
 *
 * down-after-milliseconds 1000 (Redis: 30 s) and failover-timeout 3000 so that a SIGKILLed primary is
 * replaced in ~2–3 s; quorum 2 of 3. `start()` returns only once every Sentinel knows the replica and
 * the other Sentinels (without that a failover cannot be authorised).
 * Invariant: stop() kills every process (redis-server.ts also SIGKILLs them at process exit).
 */
import { cli, info, poll } from './redis-cli.js';
import { freePort, startRedis, type RedisServer } from './redis-server.js';

export interface SentinelSet {
  readonly name: string;
  readonly primary: RedisServer;
  readonly replicas: RedisServer[];
  readonly sentinels: RedisServer[];
  readonly sentinelAddrs: Array<{ host: string; port: number }>;
  /** The primary's port as the Sentinels report it (first one that answers). */
  masterPort(): Promise<number>;
  /** SIGKILL whichever data node is primary now; returns its port. */
  killPrimary(): Promise<number>;
  /** Wait until the Sentinels name a primary other than `oldPort` and it answers as master. */
  waitFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinelSet(opts: {
  name?: string;
  replicas?: number;
  sentinels?: number;
  password?: string;
  downAfterMs?: number;
  /** Monitor this port instead of the started primary (an unreachable primary). */
  monitorPort?: number;
} = {}): Promise<SentinelSet> {
  const name = opts.name ?? 'mg';
  const pw = opts.password !== undefined ? { password: opts.password } : {};
  const auth = opts.password !== undefined ? ['--requirepass', opts.password, '--masterauth', opts.password] : [];
  const all: RedisServer[] = [];
  try {
    const primary = await startRedis({ args: auth });
    all.push(primary);
    const replicas: RedisServer[] = [];
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      const r = await startRedis({ args: [...auth, '--replicaof', '127.0.0.1', String(primary.port)] });
      all.push(r);
      replicas.push(r);
    }
    if (opts.monitorPort === undefined) {
      await poll(async () => {
        for (const r of replicas) if ((await info(r.port, 'replication', pw).catch(() => undefined))?.get('master_link_status') !== 'up') return false;
        return true;
      }, 15_000, () => 'replicas did not sync');
    }
    const monitored = opts.monitorPort ?? primary.port;
    const conf = (): string =>
      [
        `sentinel monitor ${name} 127.0.0.1 ${monitored} 2`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 3000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(opts.password !== undefined ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        '',
      ].join('\n');
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < (opts.sentinels ?? 3); i++) {
      const s = await startRedis({ sentinel: true, conf });
      all.push(s);
      sentinels.push(s);
    }
    if (opts.monitorPort === undefined) {
      await poll(async () => {
        for (const s of sentinels) {
          const r = await cli(s.port, ['SENTINEL', 'REPLICAS', name]).catch(() => '');
          const o = await cli(s.port, ['SENTINEL', 'SENTINELS', name]).catch(() => '');
          if ((r.match(/^name$/gm) ?? []).length < replicas.length) return false;
          if ((o.match(/^name$/gm) ?? []).length < sentinels.length - 1) return false;
        }
        return true;
      }, 30_000, () => 'sentinels did not discover the replica and each other');
    }
    const masterPort = async (): Promise<number> => {
      for (const s of sentinels) {
        const out = await cli(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name]).catch(() => '');
        const port = Number(out.trim().split('\n')[1]);
        if (port > 0) return port;
      }
      throw new Error('no sentinel answers');
    };
    const set: SentinelSet = {
      name,
      primary,
      replicas,
      sentinels,
      sentinelAddrs: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      masterPort,
      async killPrimary() {
        const port = await masterPort();
        const node = [primary, ...replicas].find((x) => x.port === port);
        if (!node) throw new Error(`primary ${port} is not ours`);
        node.kill('SIGKILL');
        return port;
      },
      async waitFailover(oldPort, timeoutMs = 20_000) {
        let port = oldPort;
        await poll(async () => {
          port = await masterPort().catch(() => oldPort);
          if (port === oldPort) return false;
          return (await info(port, 'replication', pw).catch(() => undefined))?.get('role') === 'master';
        }, timeoutMs, () => `sentinels did not replace ${oldPort}`);
        return port;
      },
      async stop() {
        await Promise.all(all.map((s) => s.stop()));
      },
    };
    return set;
  } catch (err) {
    await Promise.all(all.map((s) => s.stop()));
    throw err;
  }
}

export { freePort };
