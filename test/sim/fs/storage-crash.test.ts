/**
 * Crash points (raft.md R-E5, R-E6 at the storage level): the production WAL and snapshot code of
 * storage.ts on a simulated disk (sim-fs.ts), killed at EVERY filesystem call of a workload that appends,
 * overwrites, commits without sync, compacts and installs snapshots — inside persist, inside compaction,
 * inside the segment rewrite, inside open. Each kill point is replayed as a process kill (page cache kept)
 * and as power losses (unsynced pages lost or torn at sector size, unsynced directory entries lost).
 *
 * Must hold at every point: the restart succeeds (or fails with a documented, detected corruption error:
 * none is expected from a crash alone), nothing acknowledged as durable is lost, nothing never written
 * appears, and the recovered storage accepts and keeps a new write. EIO and ENOSPC at every call: the
 * failing call and every later one are refused (never acknowledged), and a restart recovers.
 */
import { describe, expect, it } from 'vitest';
import { ClusterError, StorageFailedError } from '../../../src/cluster/errors.js';
import { DiskStorage } from '../../../src/cluster/storage.js';
import { createSeededRandom } from '../../../src/lib/rng.js';
import { SimFs, type FaultKind } from './sim-fs.js';
import { buildWorkload, EMPTY_MODEL, entryData, mismatch, type ModelState } from './workload.js';

const DIR = '/data/gw-1';
const POWER_LOSS_SEEDS = Number(process.env['MESHGATE_CRASH_SEEDS'] ?? 3);

const workload = buildWorkload();

interface Run {
  /** Calls acknowledged before the fault. */
  acked: number;
  error: unknown;
  /** The fault hit DiskStorage.open (a startup error, not a refused write). */
  inOpen: boolean;
  fs: SimFs;
}

async function runWith(fault: { op: number; kind: FaultKind } | undefined, opsLog?: string[]): Promise<Run> {
  const fs = new SimFs();
  fs.failAt = fault;
  if (opsLog) fs.onOp = (n, what) => opsLog.push(`${n} ${what}`);
  let acked = 0;
  let s: DiskStorage;
  try {
    s = await DiskStorage.open({ dataDir: DIR, nodeId: 'gw-1', fs });
  } catch (error) {
    return { acked, error, inOpen: true, fs };
  }
  let error: unknown;
  for (const op of workload) {
    try {
      await op.run(s);
      acked++;
    } catch (err) {
      error = err;
      break;
    }
  }
  if (error !== undefined && fault?.kind !== 'crash') {
    // R-E4: once a call failed, nothing is written or acknowledged again, even if the disk recovers.
    const before = fs.stats.ops;
    fs.failAt = undefined;
    const next = workload[acked + 1] ?? workload[acked]!;
    await expect(next.run(s)).rejects.toBeInstanceOf(StorageFailedError);
    expect(fs.stats.ops).toBe(before);
  }
  await s.close();
  return { acked, error, inOpen: false, fs };
}

const modelAt = (n: number): ModelState => (n === 0 ? EMPTY_MODEL : workload[n - 1]!.after);

/** Reopens, checks the recovered state against the acknowledged one, then proves the storage works on. */
async function recoverAndCheck(fs: SimFs, acked: number, label: string): Promise<void> {
  let r: DiskStorage;
  try {
    r = await DiskStorage.open({ dataDir: DIR, nodeId: 'gw-1', fs });
  } catch (err) {
    const code = (err as ClusterError).code;
    throw new Error(`${label}: restart failed (${code ?? 'undocumented'}): ${(err as Error).message}`);
  }
  // The call in flight at the fault may or may not have happened; nothing else may differ.
  const inFlight = workload[acked];
  const candidates = inFlight ? [modelAt(acked), ...(inFlight.mid ? [inFlight.mid] : []), modelAt(acked + 1)] : [modelAt(acked)];
  const why = candidates.map((c) => mismatch(r.recovered, c, modelAt(acked)));
  if (why.every((w) => w !== undefined)) throw new Error(`${label}: recovered state is not reachable: ${why.join(' | ')}`);
  // The recovered storage takes a durable write, and a power loss right after keeps it.
  const last = r.recovered.entries.at(-1)?.index ?? r.recovered.snapshot?.metadata.index ?? 0;
  const term = r.recovered.hardState.term;
  await r.persist({ entries: [{ index: last + 1, term, type: 'normal', data: entryData(last + 1, term) }] });
  await r.close();
  fs.crash(createSeededRandom(acked * 7919 + 1));
  const again = await DiskStorage.open({ dataDir: DIR, nodeId: 'gw-1', fs });
  expect(again.recovered.entries.at(-1)?.index, `${label}: write after recovery lost`).toBe(last + 1);
  await again.close();
}

describe('storage.ts on a simulated disk: crash, EIO and ENOSPC at every filesystem call', () => {
  const names: string[] = [];
  let totalOps = 0;

  it('runs the workload cleanly and survives a power loss at its end', async () => {
    const r = await runWith(undefined, names);
    expect(r.error).toBeUndefined();
    expect(r.acked).toBe(workload.length);
    totalOps = r.fs.stats.ops;
    r.fs.crash(createSeededRandom(1));
    await recoverAndCheck(r.fs, workload.length, 'clean run + power loss');
    // Kill points fall inside persist, compaction, the segment rewrite and open (≥ 200, R-E5).
    expect(totalOps).toBeGreaterThanOrEqual(200);
    expect(names.some((n) => /rename wal-.*\.tmp/.test(n))).toBe(true);
    expect(names.some((n) => /rename snap-.*\.tmp/.test(n))).toBe(true);
    console.log(`${workload.length} storage calls, ${totalOps} filesystem kill points`);
  });

  it('kill at every call: process kill and power losses all recover without losing an acknowledged write', async () => {
    let points = 0;
    for (let op = 1; op <= totalOps; op++) {
      const run = await runWith({ op, kind: 'crash' });
      expect(run.error, `crash at ${op} was not reported`).toBeDefined();
      const label = `crash at call ${op} (${names[op - 1]}) after ${run.acked} acknowledged calls`;
      // Process kill: the page cache survives. Snapshot the disk so each power-loss variant starts from it.
      run.fs.restart();
      const images = Array.from({ length: POWER_LOSS_SEEDS }, () => run.fs.clone());
      await recoverAndCheck(run.fs, run.acked, `${label}, SIGKILL`);
      for (let seed = 1; seed <= POWER_LOSS_SEEDS; seed++) {
        const fs = images[seed - 1]!;
        fs.crash(createSeededRandom(op * 1000 + seed));
        await recoverAndCheck(fs, run.acked, `${label}, power loss seed ${seed}`);
      }
      points++;
    }
    expect(points).toBeGreaterThanOrEqual(200);
  }, 120_000);

  it('EIO and ENOSPC at every call: refused permanently, never acknowledged, and a restart recovers', async () => {
    for (const kind of ['EIO', 'ENOSPC'] as const) {
      for (let op = 1; op <= totalOps; op++) {
        const run = await runWith({ op, kind });
        const label = `${kind} at call ${op} (${names[op - 1]}) after ${run.acked} acknowledged calls`;
        expect(run.error, label).toBeDefined();
        if (!run.inOpen) expect(run.error, label).toBeInstanceOf(StorageFailedError);
        run.fs.restart();
        await recoverAndCheck(run.fs, run.acked, `${label}, restart`);
      }
    }
  }, 120_000);
});
