/**
 * fdatasync latency of a 256-byte append on the disk holding the Raft data dirs: the floor under every
 * commit (the leader and a follower each make the entry durable before it counts, Raft §5.3/§5.4).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** `samples` fdatasync timings in ms, each after a 256-byte append to `dir/fsync-probe`. */
export async function fdatasyncSamplesMs(dir: string, samples: number): Promise<number[]> {
  const out: number[] = [];
  const fh = await open(join(dir, 'fsync-probe'), 'a');
  const buf = Buffer.alloc(256, 1);
  try {
    for (let i = 0; i < samples; i++) {
      await fh.write(buf);
      const t = performance.now();
      await fh.datasync();
      out.push(performance.now() - t);
    }
  } finally {
    await fh.close();
  }
  return out;
}
