/**
 * Linearizability of the membership API under faults (raft.md R-D1–D3), checked by the WGL checker in
 * test/helpers/linearizability.ts over a recorded history: concurrent clients write upstream URLs
 * (PUT) and read them back with `?consistent=true` through random live peers, while the leader is
 * SIGKILLed and restarted, or SIGSTOPped (a paused leader that wakes up still believing it leads) and
 * resumed. Every acknowledged write and every consistent read must fit one sequential order that
 * respects real time; a write whose answer was lost may or may not have happened.
 *
 * The check has teeth: the same test with plain reads (no `?consistent=true`, so a follower or a
 * paused ex-leader answers from its own applied state) found a stale read in each of 3 runs tried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { oneServiceYaml, TestCluster } from '../helpers/cluster.js';
import { checkRegisters, describeOps, HistoryRecorder } from '../helpers/linearizability.js';
import { createSeededRandom } from '../../src/lib/rng.js';

let backend: Backend;
let cluster: TestCluster;
const IDS = ['l-1', 'l-2', 'l-3'];
const KEYS = ['k0', 'k1', 'k2'];

beforeAll(async () => {
  backend = await startBackend('lb');
  cluster = new TestCluster(() => oneServiceYaml(backend.url));
  await cluster.allocate(IDS);
  await Promise.all(IDS.map((id) => cluster.start(id, IDS)));
  await cluster.leader();
});

afterAll(async () => {
  for (const id of IDS) cluster?.procs.get(id)?.proc.kill('SIGCONT');
  await cluster?.stopAll();
  await backend?.close();
});

const call = (id: string, path: string, init: RequestInit = {}): Promise<Response> => cluster.admin(id, path, init, 3_000);

describe('linearizable membership writes and consistent reads', () => {
  it('a history under leader SIGKILLs and SIGSTOPs has a linearization', async () => {
    const seed = Number(process.env.MESHGATE_LIN_SEED ?? Date.now() % 100_000);
    const rand = createSeededRandom(seed);
    const history = new HistoryRecorder();
    const counts = { acked: 0, unknown: 0, failed: 0, reads: 0 };
    let nextPort = 20_000;
    let stop = false;
    const pickLive = (): string | undefined => {
      const live = IDS.filter((id) => cluster.isLive(id));
      return live[Math.floor(rand() * live.length)];
    };
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

    const writers = [0, 1, 2].map(async () => {
      while (!stop) {
        const via = pickLive();
        if (!via) { await pause(20); continue; }
        const key = KEYS[Math.floor(rand() * KEYS.length)]!;
        const value = `http://127.0.0.1:${nextPort++}`; // unique per write
        const op = history.write(key, value);
        try {
          const r = await call(via, `/api/v1/services/api/upstreams/${key}`, { method: 'PUT', body: JSON.stringify({ url: value }) });
          await r.body?.cancel();
          // 200: acknowledged. A 4xx is a refusal before proposing. Any other answer (503 while the
          // leader is unknown, a timeout "outcome unknown") may have been proposed and committed.
          if (r.status === 200) { op.ok(); counts.acked++; } else if (r.status >= 400 && r.status < 500) { op.failed(); counts.failed++; } else { op.unknown(); counts.unknown++; }
        } catch {
          op.unknown();
          counts.unknown++;
        }
      }
    });
    const readers = [0, 1].map(async () => {
      while (!stop) {
        const via = pickLive();
        if (!via) { await pause(20); continue; }
        const op = history.read(KEYS);
        try {
          const r = await call(via, '/api/v1/services/api/upstreams?consistent=true');
          if (r.status !== 200) { await r.body?.cancel(); continue; } // a failed read observed nothing
          const body = (await r.json()) as { upstreams: Array<{ id: string; url: string; source: string }> };
          op.done(new Map(body.upstreams.filter((u) => u.source === 'cluster').map((u) => [u.id, u.url] as const)));
          counts.reads++;
        } catch {
          // Timed out or reset: no observation.
        }
      }
    });

    const faults: string[] = [];
    for (let round = 0; round < 6; round++) {
      await pause(400 + rand() * 400);
      const leader = await cluster.leader(20_000);
      const p = cluster.procs.get(leader)!;
      if (round % 2 === 0) {
        faults.push(`SIGKILL ${leader}`);
        await cluster.kill(leader);
        await pause(200 + rand() * 400);
        await cluster.start(leader, IDS);
      } else {
        faults.push(`SIGSTOP ${leader}`);
        p.proc.kill('SIGSTOP');
        await pause(1_000 + rand() * 1_000); // past the election timeout: the others elect a new leader
        p.proc.kill('SIGCONT');
      }
    }
    await pause(500);
    stop = true;
    await Promise.all([...writers, ...readers]);

    const context = `seed ${seed} (replay with MESHGATE_LIN_SEED=${seed}); faults: ${faults.join(', ')}; ${JSON.stringify(counts)}`;
    expect(counts.acked, context).toBeGreaterThan(10);
    expect(counts.reads, context).toBeGreaterThan(10);
    const result = checkRegisters(history.ops);
    expect(result.ok, result.ok ? context : `${context}\nkey ${result.key} has no linearization:\n${describeOps(result.ops!)}`).toBe(true);
    console.log(`linearizable: ${history.ops.length} operations, ${result.steps} search steps; ${context}`);
  }, 120_000);
});
