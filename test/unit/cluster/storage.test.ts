/**
 * DiskStorage: what a restarted peer gets back from its dataDir, and how it refuses damaged state.
 * Uses real files in a temp dir; damage is done by editing those files the way a crash or bit rot would.
 */
import { mkdtemp, readFile, readdir, rm, truncate, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterError, CorruptLogError, CorruptSnapshotError, NodeIdMismatchError, StorageFailedError } from '../../../src/cluster/errors.js';
import type { Entry, Snapshot } from '../../../src/cluster/raft/types.js';
import { DiskStorage } from '../../../src/cluster/storage.js';
import { noopLogger } from '../../../src/cluster/logger.js';
import type { StorageFile } from '../../../src/cluster/storage-fs.js';

const enc = new TextEncoder();
const ent = (index: number, term: number, text = `cmd-${index}`): Entry => ({ index, term, type: 'normal', data: enc.encode(text) });
const snap = (index: number, term: number, text = `state@${index}`): Snapshot => ({
  metadata: { index, term, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } },
  data: enc.encode(text),
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mg-storage-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function walFile(): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('wal-'));
  expect(names).toHaveLength(1);
  return path.join(dir, names[0]!);
}

async function reopen(nodeId = 'a'): Promise<DiskStorage> {
  return DiskStorage.open({ dataDir: dir, nodeId });
}

describe('DiskStorage', () => {
  it('starts empty on first boot and reloads hard state and entries after a restart', async () => {
    const s = await reopen();
    expect(s.isEmpty()).toBe(true);
    expect(s.recovered.firstBoot).toBe(true);
    await s.persist({ entries: [ent(1, 1), ent(2, 1)], hardState: { term: 1, vote: 'a', commit: 1 } });
    await s.persist({ entries: [ent(3, 2)], hardState: { term: 2, vote: 'b', commit: 2 } });
    await s.close();

    const r = await reopen();
    expect(r.recovered.firstBoot).toBe(false);
    expect(r.isEmpty()).toBe(false);
    expect(r.recovered.hardState).toEqual({ term: 2, vote: 'b', commit: 2 });
    expect(r.recovered.entries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])).toEqual([
      [1, 1, 'cmd-1'],
      [2, 1, 'cmd-2'],
      [3, 2, 'cmd-3'],
    ]);
    expect(r.recovered.tornTail).toBeUndefined();
    await r.close();
  });

  it('records an overwrite of conflicting entries as a truncation', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)], hardState: { term: 1, vote: 'a', commit: 1 } });
    // A new leader in term 2 replaces entries 3.. with its own (Raft §5.3).
    await s.persist({ entries: [ent(3, 2, 'new-3')], hardState: { term: 2, vote: 'b', commit: 1 } });
    await s.close();
    const r = await reopen();
    expect(r.recovered.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['1/1', '2/1', '3/2']);
    await r.close();
  });

  it('cuts a torn tail back to the last valid record and keeps working', async () => {
    const warnings: object[] = [];
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    await s.persist({ entries: [ent(2, 1)] });
    await s.persist({ entries: [ent(3, 1, 'x'.repeat(100))] });
    await s.close();
    const file = await walFile();
    const full = (await readFile(file)).length;
    await truncate(file, full - 37); // crash in the middle of the last write

    const r = await DiskStorage.open({ dataDir: dir, nodeId: 'a', logger: { info() {}, error() {}, warn: (o) => warnings.push(o) } });
    expect(r.recovered.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(r.recovered.tornTail).toMatchObject({ file });
    expect(r.recovered.tornTail!.droppedBytes).toBeGreaterThan(0);
    expect(warnings).toHaveLength(1);
    await r.persist({ entries: [ent(3, 1, 'again')] });
    await r.close();

    const again = await reopen();
    expect(again.recovered.tornTail).toBeUndefined();
    expect(again.recovered.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['cmd-1', 'cmd-2', 'again']);
    await again.close();
  });

  it('treats zero-filled bytes after the last record (size extended, data lost) as a torn tail', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: '', commit: 0 } });
    await s.close();
    await appendFile(await walFile(), Buffer.alloc(4096));
    const r = await reopen();
    expect(r.recovered.entries.map((e) => e.index)).toEqual([1]);
    expect(r.recovered.tornTail?.droppedBytes).toBe(4096);
    await r.close();
  });

  it('refuses to start on a checksum failure before the tail, naming the file and offset', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    const file = await walFile();
    const secondRecordAt = (await readFile(file)).length;
    await s.persist({ entries: [ent(2, 1, 'hello world')] });
    await s.persist({ entries: [ent(3, 1)] });
    await s.close();

    const buf = await readFile(file);
    buf[secondRecordAt + 40]! ^= 0xff; // bit rot inside the second batch's body
    await writeFile(file, buf);

    const err = await reopen().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as CorruptLogError).code).toBe('MG_ERR_RAFT_CORRUPT_LOG');
    expect((err as CorruptLogError).offset).toBe(secondRecordAt);
    expect((err as CorruptLogError).file).toBe(file);
    expect((err as Error).message).toContain(`offset ${secondRecordAt}`);
  });

  it('refuses to start when a damaged record header is followed by valid records', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)] });
    const file = await walFile();
    const at = (await readFile(file)).length;
    await s.persist({ entries: [ent(2, 1)] });
    await s.persist({ entries: [ent(3, 1)] });
    await s.close();
    const buf = await readFile(file);
    buf.writeUInt32LE(0xdeadbeef, at); // length field garbage
    await writeFile(file, buf);
    await expect(reopen()).rejects.toMatchObject({ code: 'MG_ERR_RAFT_CORRUPT_LOG', offset: at });
  });

  it('tolerates a lost unsynced commit-only record between durable ones ([valid][lost][valid] after a power cut)', async () => {
    // Commit-only records are written without sync; a later durable (O_DSYNC) write can reach the disk
    // while the earlier page never does, leaving zeros (or a torn record) in the middle of the file.
    const warnings: string[] = [];
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1), ent(2, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    const file = await walFile();
    const lostAt = (await readFile(file)).length;
    await s.persist({ hardState: { term: 1, vote: 'a', commit: 1 }, mustSync: false });
    const lostEnd = (await readFile(file)).length;
    await s.persist({ hardState: { term: 1, vote: 'a', commit: 2 }, mustSync: false });
    await s.persist({ entries: [ent(3, 1)] });
    await s.close();
    const buf = await readFile(file);
    buf.fill(0, lostAt, lostEnd + 12); // the first commit-only record lost, the second torn
    await writeFile(file, buf);

    const r = await DiskStorage.open({ dataDir: dir, nodeId: 'a', logger: { ...noopLogger, warn: (_o: object, m: string) => warnings.push(m) } });
    expect(r.recovered.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(r.recovered.hardState).toEqual({ term: 1, vote: 'a', commit: 0 }); // the lost commit index is recomputed
    expect(warnings.join('\n')).toMatch(/written without sync/);
    await r.persist({ entries: [ent(4, 1)], hardState: { term: 1, vote: 'a', commit: 4 } });
    await r.close();
    const again = await reopen(); // the skipped bytes stay explainable on every later open
    expect(again.recovered.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(again.recovered.hardState.commit).toBe(4);
    await again.close();
  });

  it('still refuses a damaged synced record followed by a lost unsynced one and a valid one', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    const file = await walFile();
    const syncedAt = (await readFile(file)).length;
    await s.persist({ entries: [ent(2, 1, 'acknowledged')] });
    const lostAt = (await readFile(file)).length;
    await s.persist({ hardState: { term: 1, vote: 'a', commit: 2 }, mustSync: false });
    const lostEnd = (await readFile(file)).length;
    await s.persist({ entries: [ent(3, 1)] });
    await s.close();
    const buf = await readFile(file);
    buf[syncedAt + 30]! ^= 0x40; // bit rot in the synced entry 2
    buf.fill(0, lostAt, lostEnd);
    await writeFile(file, buf);
    await expect(reopen()).rejects.toMatchObject({ code: 'MG_ERR_RAFT_CORRUPT_LOG', offset: syncedAt, message: expect.stringMatching(/synced record is damaged/) });
  });

  it('compacts into a snapshot and reloads snapshot + trailing entries after restart', async () => {
    const s = await reopen();
    const entries = Array.from({ length: 10 }, (_, i) => ent(i + 1, 1));
    await s.persist({ entries, hardState: { term: 1, vote: 'a', commit: 10 } });
    await s.compact(snap(8, 1), 6, 1, entries.slice(6));
    await s.persist({ entries: [ent(11, 2)], hardState: { term: 2, vote: 'a', commit: 11 } });
    await s.close();

    const r = await reopen();
    expect(r.recovered.snapshot?.metadata).toEqual({ index: 8, term: 1, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } });
    expect(new TextDecoder().decode(r.recovered.snapshot!.data)).toBe('state@8');
    // Entries at or below the snapshot index are superseded by it.
    expect(r.recovered.entries.map((e) => e.index)).toEqual([9, 10, 11]);
    expect(r.recovered.hardState).toEqual({ term: 2, vote: 'a', commit: 11 });
    expect((await readdir(dir)).filter((n) => n.startsWith('wal-'))).toHaveLength(1);
    await r.close();
  });

  it('detects a truncated snapshot and refuses to start when the log needs it', async () => {
    const s = await reopen();
    const entries = Array.from({ length: 6 }, (_, i) => ent(i + 1, 1));
    await s.persist({ entries, hardState: { term: 1, vote: 'a', commit: 6 } });
    await s.compact(snap(6, 1, 'z'.repeat(500)), 6, 1, []);
    await s.close();
    const snapFile = path.join(dir, (await readdir(dir)).find((n) => n.startsWith('snap-'))!);
    await truncate(snapFile, 100);
    const err = await reopen().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptSnapshotError);
    expect((err as Error).message).toMatch(/truncated/);
  });

  it('falls back to the previous snapshot when the newest one is corrupt but the log still covers it', async () => {
    const s = await reopen();
    const entries = Array.from({ length: 10 }, (_, i) => ent(i + 1, 1));
    await s.persist({ entries, hardState: { term: 1, vote: 'a', commit: 10 } });
    await s.compact(snap(5, 1), 3, 1, entries.slice(3));
    await s.compact(snap(9, 1), 3, 1, entries.slice(3)); // no further compaction: log still starts after 3
    await s.close();
    const newest = path.join(dir, (await readdir(dir)).filter((n) => n.startsWith('snap-')).sort().pop()!);
    const buf = await readFile(newest);
    buf[buf.length - 10]! ^= 1;
    await writeFile(newest, buf);
    const r = await reopen();
    expect(r.recovered.snapshot?.metadata.index).toBe(5);
    expect(r.recovered.entries.map((e) => e.index)).toEqual([6, 7, 8, 9, 10]);
    await r.close();
  });

  it('installs a snapshot received from the leader, discarding the old log', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1), ent(2, 1)], hardState: { term: 1, vote: '', commit: 1 } });
    await s.persist({ snapshot: snap(50, 3), hardState: { term: 3, vote: '', commit: 50 } });
    await s.persist({ entries: [ent(51, 3)], hardState: { term: 3, vote: '', commit: 51 } });
    await s.close();
    const r = await reopen();
    expect(r.recovered.snapshot?.metadata.index).toBe(50);
    expect(r.recovered.entries.map((e) => e.index)).toEqual([51]);
    expect(r.recovered.hardState.commit).toBe(51);
    await r.close();
  });

  it('recovers from a crash between a snapshot install and the segment rewrite: the snapshot wins, commit is raised to it', async () => {
    // persist({snapshot}) makes snap-<S>.snap durable, then rewrites the segment. A crash between the two
    // leaves the new snapshot beside the old segment, whose hard state commits below S and whose entries
    // belong to another branch of the log (term 1 at index 50 is not the snapshot's term 3).
    let crashAtNextWalSync = false;
    const hook = async (fh: StorageFile, kind: string): Promise<void> => {
      if (kind === 'snapshot') crashAtNextWalSync = true;
      else if (kind === 'wal' && crashAtNextWalSync) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
      await fh.sync();
    };
    const s = await DiskStorage.open({ dataDir: dir, nodeId: 'a', syncForTest: hook });
    await s.persist({ entries: Array.from({ length: 60 }, (_, i) => ent(i + 1, 1)), hardState: { term: 1, vote: '', commit: 1 } });
    await expect(s.persist({ snapshot: snap(50, 3), hardState: { term: 3, vote: '', commit: 50 } })).rejects.toBeInstanceOf(StorageFailedError);
    await s.close();

    const warnings: string[] = [];
    const r = await DiskStorage.open({ dataDir: dir, nodeId: 'a', logger: { ...noopLogger, warn: (_o: object, m: string) => warnings.push(m) } });
    expect(r.recovered.snapshot?.metadata.index).toBe(50);
    expect(r.recovered.entries).toEqual([]); // the old branch is not kept after the snapshot
    expect(r.recovered.hardState).toEqual({ term: 3, vote: '', commit: 50 });
    expect(warnings.join('\n')).toMatch(/snapshot/);
    // The repair is durable and the log continues after the snapshot.
    await r.persist({ entries: [ent(51, 3)], hardState: { term: 3, vote: '', commit: 51 } });
    await r.close();
    const again = await reopen();
    expect(again.recovered.snapshot?.metadata.index).toBe(50);
    expect(again.recovered.entries.map((e) => e.index)).toEqual([51]);
    expect(again.recovered.hardState.commit).toBe(51);
    await again.close();
  });

  it('raises a commit index lost with unsynced records up to a compaction snapshot written before the crash', async () => {
    let crashAtNextWalSync = false;
    const hook = async (fh: StorageFile, kind: string): Promise<void> => {
      if (kind === 'snapshot') crashAtNextWalSync = true;
      else if (kind === 'wal' && crashAtNextWalSync) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
      await fh.sync();
    };
    const s = await DiskStorage.open({ dataDir: dir, nodeId: 'a', syncForTest: hook });
    const entries = Array.from({ length: 10 }, (_, i) => ent(i + 1, 2));
    // Only commit 3 was made durable; the commit-only records up to 10 were lost with the page cache.
    await s.persist({ entries, hardState: { term: 2, vote: 'a', commit: 3 } });
    await expect(s.compact(snap(8, 2), 6, 2, entries.slice(6))).rejects.toBeInstanceOf(StorageFailedError);
    await s.close();
    const r = await reopen();
    expect(r.recovered.snapshot?.metadata.index).toBe(8);
    expect(r.recovered.hardState).toEqual({ term: 2, vote: 'a', commit: 8 });
    expect(r.recovered.entries.map((e) => e.index)).toEqual([9, 10]);
    await r.persist({ entries: [ent(11, 2)], hardState: { term: 2, vote: 'a', commit: 11 } });
    await r.close();
  });

  it('persists the bootstrap configuration as an index-0 snapshot so the dataDir is no longer empty', async () => {
    const s = await reopen();
    expect(s.isEmpty()).toBe(true);
    await s.persist({ snapshot: { metadata: { index: 0, term: 0, confState: { voters: ['a', 'b', 'c'], learners: [] } }, data: new Uint8Array(0) } });
    expect(s.isEmpty()).toBe(false);
    await s.close();
    const r = await reopen();
    expect(r.isEmpty()).toBe(false);
    expect(r.recovered.snapshot?.metadata).toEqual({ index: 0, term: 0, confState: { voters: ['a', 'b', 'c'], learners: [] } });
    await r.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    await r.close();
    const again = await reopen();
    expect(again.recovered.entries.map((e) => e.index)).toEqual([1]);
    await again.close();
  });

  it('makes a failed fsync permanent: the write is never acknowledged, not even after the disk recovers', async () => {
    let failing = false;
    let syncs = 0;
    const s = await DiskStorage.open({
      dataDir: dir,
      nodeId: 'a',
      syncForTest: async (fh) => {
        syncs++;
        if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        await fh.sync();
      },
    });
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 0 } });
    failing = true;
    await expect(s.persist({ entries: [ent(2, 1)] })).rejects.toBeInstanceOf(StorageFailedError);
    failing = false;
    const before = syncs;
    await expect(s.persist({ entries: [ent(3, 1)] })).rejects.toMatchObject({ code: 'MG_ERR_RAFT_STORAGE_FAILED' });
    await expect(s.persist({ hardState: { term: 2, vote: 'b', commit: 0 } })).rejects.toBeInstanceOf(StorageFailedError);
    expect(syncs).toBe(before); // no retry of the failed fsync
    expect(s.failed).toBeInstanceOf(StorageFailedError);
    await s.close();
  });

  it('refuses a dataDir that belongs to another node id', async () => {
    const s = await reopen('gw-1');
    await s.close();
    const err = await reopen('gw-2').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NodeIdMismatchError);
    expect((err as ClusterError).code).toBe('MG_ERR_RAFT_NODE_ID_MISMATCH');
  });

  it('fails closed when the hard state commits beyond the durable log', async () => {
    const s = await reopen();
    await s.persist({ entries: [ent(1, 1)], hardState: { term: 1, vote: 'a', commit: 1 } });
    await s.persist({ hardState: { term: 1, vote: 'a', commit: 7 } });
    await s.close();
    await expect(reopen()).rejects.toMatchObject({ code: 'MG_ERR_RAFT_CORRUPT_LOG', message: expect.stringMatching(/commit 7 is beyond/) });
  });
});
