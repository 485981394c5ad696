/**
 * A single-voter RaftNode on disk: it elects itself, survives a restart with its state, and fails closed
 * when an fsync fails — the write is never applied or acknowledged (etcd-io/etcd#14370, R-E2/R-E4).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeIdMismatchError, RaftNode, StorageFailedError, type RaftNodeOptions } from '../../src/cluster/index.js';

let dir: string;
const nodes: RaftNode[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mg-raft1-'));
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  await rm(dir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function start(extra: Partial<RaftNodeOptions> = {}): Promise<RaftNode> {
  const n = new RaftNode({ id: 'solo', listen: '127.0.0.1:0', dataDir: dir, secret: 's3cret', bootstrap: [{ id: 'solo', address: '127.0.0.1:1' }], tickMs: 20, ...extra });
  nodes.push(n);
  await n.start();
  await waitFor(() => n.status().role === 'leader', () => JSON.stringify(n.status()));
  return n;
}

describe('single-voter RaftNode', () => {
  it('keeps committed membership across a restart and refuses a different node id', async () => {
    const a = await start();
    const { index } = await a.propose({ op: 'put-upstream', service: 'web', id: 'w1', url: 'http://127.0.0.1:8081', weight: 5 });
    await a.close();
    nodes.length = 0;
    const b = await start();
    await waitFor(() => b.status().appliedIndex >= index, () => JSON.stringify(b.status()));
    expect(b.membership().get('web')?.get('w1')).toEqual({ url: 'http://127.0.0.1:8081', weight: 5, state: 'active' });
    const term = b.status().term;
    expect(term).toBeGreaterThan(1); // the term survived the restart and grew with the new election
    await b.close();
    nodes.length = 0;

    const other = new RaftNode({ id: 'someone-else', listen: '127.0.0.1:0', dataDir: dir, secret: 's3cret', bootstrap: [] });
    await expect(other.start()).rejects.toBeInstanceOf(NodeIdMismatchError);
  });

  it('work stepped while the Ready loop is winding down is still processed, without waiting for a tick', async () => {
    // One tick an hour: only the driver's own wake-up can get the proposal through.
    const n = await start({ tickMs: 3_600_000 });
    const driver = n as unknown as { scheduleReady(): void; loopRunning: boolean };
    await waitFor(() => !driver.loopRunning, () => 'the Ready loop of the election to finish');
    // A loop that finds nothing to do is started and, in the same synchronous turn, a proposal arrives
    // (as when one socket read carries an ack and a forwarded proposal): the loop is still marked running.
    driver.scheduleReady();
    expect(driver.loopRunning).toBe(true);
    const r = await n.propose({ op: 'put-upstream', service: 'web', id: 'w1', url: 'http://127.0.0.1:8081' }, { timeoutMs: 5_000 });
    expect(n.membership().get('web')?.get('w1')?.url).toBe('http://127.0.0.1:8081');
    expect(r.index).toBeGreaterThan(0);
  });

  it('proposals made in one turn are appended together: one durable write for the batch, indexes in call order', async () => {
    let appends = 0;
    const n = await start({ tickMs: 3_600_000, timings: { walAppendSeconds: () => appends++ } });
    const driver = n as unknown as { loopRunning: boolean };
    await waitFor(() => !driver.loopRunning, () => 'the Ready loop of the election to finish');
    appends = 0;
    const ids = Array.from({ length: 10 }, (_, i) => `w${i}`);
    const results = await Promise.all(ids.map((id) => n.propose({ op: 'put-upstream', service: 'web', id, url: 'http://127.0.0.1:8081' })));
    expect(appends).toBe(1);
    const first = results[0]!.index;
    expect(results.map((r) => r.index)).toEqual(ids.map((_, i) => first + i));
    expect([...n.membership().get('web')!.keys()].sort()).toEqual([...ids].sort());
  });

  it('fails closed on an fsync error: the write is neither applied nor acknowledged, and later writes are refused', async () => {
    let failing = false;
    const n = await start({
      storageForTest: {
        syncForTest: async (fh) => {
          if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
          await fh.sync();
        },
      },
    });
    await n.propose({ op: 'put-upstream', service: 'web', id: 'ok', url: 'http://127.0.0.1:1' });
    failing = true;
    await expect(n.propose({ op: 'put-upstream', service: 'web', id: 'lost', url: 'http://127.0.0.1:2' })).rejects.toBeInstanceOf(StorageFailedError);
    failing = false; // the disk "recovers": the node must still refuse (no retry-and-ack)
    expect(n.membership().get('web')?.has('lost')).toBe(false);
    expect(n.status().failed).toMatch(/fsync/);
    expect(n.status().hasQuorum).toBe(false);
    await expect(n.propose({ op: 'delete-upstream', service: 'web', id: 'ok' })).rejects.toBeInstanceOf(StorageFailedError);
    await expect(n.readIndex()).rejects.toMatchObject({ code: 'MG_ERR_RAFT_STORAGE_FAILED' });
    // The last applied membership stays readable for routing.
    expect(n.membership().get('web')?.has('ok')).toBe(true);
  });
});
