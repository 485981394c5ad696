/**
 * Disk latency for the driver simulator: every mutating call on the simulated disk (test/sim/fs/sim-fs.ts)
 * first waits a seeded virtual delay, so a peer can crash while its write or fsync is still on its way —
 * the window in which a driver that sends an ack or a vote before its write is durable loses it. A call
 * of a process that dies while waiting never happens (and never returns), like a write still queued in a
 * killed process. Reads are not delayed: they do not change what a crash leaves.
 *
 * `failpoint` is called after each mutating call took effect, with the call and its file: the simulator
 * may kill the process there (a crash point between two steps of a snapshot install, a compaction or a
 * segment rewrite); the call then never returns, like every later one of that process.
 */
import type { StorageFile, StorageFs, StorageOpenMode } from '../../../src/cluster/storage-fs.js';
import type { Random } from '../../../src/lib/rng.js';
import type { Proc, Scheduler } from './scheduler.js';

export interface DiskLatency {
  /** Typical latency of one call, virtual ms. */
  typical: number;
  /** Probability that one call is slow (×20). */
  slow: number;
}

/** Calls on their way to the disk now; the simulator's adversary crashes a peer while it has some. */
export interface DiskActivity {
  inFlight: number;
}

export type DiskOp = 'open' | 'write' | 'sync' | 'datasync' | 'truncate' | 'rename' | 'unlink';

export function slowFs(inner: StorageFs, sched: Scheduler, proc: Proc, rng: Random, latency: () => DiskLatency, activity: DiskActivity, failpoint?: (op: DiskOp, file: string) => void): StorageFs {
  const wait = async (): Promise<void> => {
    const l = latency();
    activity.inFlight++;
    await sched.sleep(l.typical * (0.2 + rng()) * (rng() < l.slow ? 20 : 1), proc);
    activity.inFlight--;
  };
  /** After a call took effect: a crash there leaves its effect, and the caller never hears back. */
  const done = async <T>(op: DiskOp, file: string, v: T): Promise<T> => {
    failpoint?.(op, file);
    if (!proc.alive) await new Promise<never>(() => undefined);
    return v;
  };
  const wrap = (f: StorageFile, file: string): StorageFile => ({
    write: async (buf, offset, length) => {
      await wait();
      return done('write', file, await f.write(buf, offset, length));
    },
    sync: async () => {
      await wait();
      return done('sync', file, await f.sync());
    },
    datasync: async () => {
      await wait();
      return done('datasync', file, await f.datasync());
    },
    truncate: async (length) => {
      await wait();
      return done('truncate', file, await f.truncate(length));
    },
    close: () => f.close(),
  });
  return {
    mkdirp: (dir) => inner.mkdirp(dir),
    readdir: (dir) => inner.readdir(dir),
    readFile: (file) => inner.readFile(file),
    open: async (file: string, mode: StorageOpenMode) => {
      if (mode === 'dir' || mode === 'update') return wrap(await inner.open(file, mode), file);
      await wait();
      return done('open', file, wrap(await inner.open(file, mode), file));
    },
    rename: async (from, to) => {
      await wait();
      return done('rename', to, await inner.rename(from, to));
    },
    unlink: async (file) => {
      await wait();
      return done('unlink', file, await inner.unlink(file));
    },
  };
}
