/**
 * Durable Raft storage: an append-only write-ahead log plus full-state snapshot files in `cluster.dataDir`.
 * The pure core reads from a MemoryStorage; this module makes what goes into it durable and rebuilds it at
 * start (`DiskStorage.open` → `recovered`). Only this file (and config/) may import node:fs (style.md rule 3).
 *
 * Layout of dataDir:
 *   meta.json                  {"format":1,"nodeId":"gw-1"} written once at first boot (R-F6: ids are never
 *                              reused; opening with another node.id fails with MG_ERR_RAFT_NODE_ID_MISMATCH)
 *   wal-<seq:16 hex>.log       the live log segment (exactly one after a clean open)
 *   snap-<index:16 hex>.snap   full-state snapshots; the newest two are kept
 *
 * WAL segment format (little-endian, every record 8-byte aligned so a length field never straddles a
 * sector boundary — etcd wal/doc.go, R-E1):
 *   file header, 16 bytes: "MGWAL\0" | u16 version=1 | u32 seq | u32 crc32c(previous 12 bytes)
 *   record: u32 bodyLen | u32 crc32c(bodyLen bytes) | u32 crc32c(body) | u32 0 | body | zero pad to 8
 *   body:   u8 type | payload
 *     type 1 START   f64 index | f64 term      — entries in this segment follow (index, term); always first
 *     type 2 BATCH   u8 flags | [f64 durableEnd] | [f64 truncateFrom] | [HardState] | u32 n | n × Entry
 *                    one record per persist call, so a torn write can only damage the last record.
 *                    flags: 1 truncateFrom, 2 HardState, 4 durableEnd = the file offset where the last
 *                    durably written record ended when this one was written (every byte between it and
 *                    this record was written without sync). Unknown flags are refused.
 *   Entry = f64 term | f64 index | u8 type | u32 len | data ; HardState = f64 term | f64 commit | u16 len | vote
 *
 * Snapshot file: "MGSNAP\0\0" | u32 version=1 | u32 bodyLen | body (codec.writeSnapshot) | u32 crc32c(all before)
 *
 * Invariants:
 * - Every persist call writes one record and makes it durable (an O_DSYNC write; see Segment) before its
 *   promise resolves (R-E2), except a commit-index-only record (mustSync false), which needs no sync.
 *   The driver sends no message that depends on it before that (a leader's appends excepted, raw-node.ts).
 * - New files (segments, snapshots, meta) are written as temp file → fsync → rename → fsync dir (R-E3).
 * - Any write/fsync error makes the storage permanently failed: later calls reject with
 *   MG_ERR_RAFT_STORAGE_FAILED and nothing is retried, because after a failed fsync a later fsync can
 *   falsely succeed (cockroachdb/cockroach#37102, R-E4).
 * - Recovery drops an invalid tail (no valid record after it) and skips damage in the middle only when
 *   the next valid record's durableEnd shows the damaged bytes were never synced (a lost commit-only
 *   record); any other damage before the tail fails closed with MG_ERR_RAFT_CORRUPT_LOG (file + offset)
 *   (R-E1, etcd-io/etcd#6378). The recovery rules are listed in docs/architecture.md.
 * - Writing entry i discards persisted entries ≥ i; such an overwrite is recorded explicitly (truncateFrom).
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import {
  BufReader,
  BufWriter,
  crc32c,
  readEntry,
  readHardState,
  readSnapshot,
  writeEntry,
  writeHardState,
  writeSnapshot,
} from './codec.js';
import { CorruptLogError, CorruptSnapshotError, NodeIdMismatchError, StorageFailedError } from './errors.js';
import { noopLogger, type ClusterLogger } from './logger.js';
import type { Entry, HardState, Snapshot } from './raft/types.js';
import type { StorageFile, StorageFs, StorageOpenMode } from './storage-fs.js';

export type { StorageFile, StorageFs, StorageOpenMode } from './storage-fs.js';

export const WAL_FORMAT_VERSION = 1;
export const SNAPSHOT_FORMAT_VERSION = 1;
export const META_FORMAT_VERSION = 1;
const WAL_MAGIC = Buffer.from('MGWAL\0', 'latin1');
const SNAP_MAGIC = Buffer.from('MGSNAP\0\0', 'latin1');
const FILE_HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 16;
/** Upper bound for one record; a persist call larger than this is a driver bug (entries are KB-sized). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Snapshots kept on disk: the newest, plus one fallback in case the newest is found damaged. */
const SNAPSHOTS_RETAINED = 2;

const REC_START = 1;
const REC_BATCH = 2;
const BATCH_TRUNCATE = 1;
const BATCH_HARDSTATE = 2;
/** f64 offset in this file where the last durably written record ended when this record was written. */
const BATCH_DURABLE_END = 4;

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: '', commit: 0 });

export type SyncKind = 'wal' | 'snapshot' | 'meta' | 'dir';

export interface DiskStorageOptions {
  readonly dataDir: string;
  readonly nodeId: string;
  readonly logger?: ClusterLogger;
  /** Replaces fdatasync/fsync; tests inject a failing sync to prove the failure is permanent. */
  readonly syncForTest?: (fh: StorageFile, kind: SyncKind) => Promise<void>;
  /** The filesystem; default node:fs. The crash tests pass a simulated disk (storage-fs.ts). */
  readonly fs?: StorageFs;
  /** Test-only broken recovery rules (StorageMutationForTest), to prove the driver simulator catches them. */
  readonly mutationsForTest?: ReadonlySet<StorageMutationForTest>;
}

/**
 * Deliberately broken storage behaviour (raft.md R-C5), run only by test/sim/driver/mutations.test.ts:
 * - 'recovery-skips-snapshot-clamp': on open, the newest snapshot is taken but the segment's hard state
 *   is kept as it is (commit and term not raised to the snapshot's; reconcileWithSnapshot).
 */
export type StorageMutationForTest = 'recovery-skips-snapshot-clamp';

const OPEN_FLAGS: Record<StorageOpenMode, string | number> = {
  append: 'a',
  'append-dsync': fsc.O_WRONLY | fsc.O_APPEND | fsc.O_DSYNC,
  create: 'w',
  update: 'r+',
  dir: fsc.O_RDONLY,
};

/** The real filesystem. Directory sync: Linux fsyncs a directory through a read-only descriptor (google/renameio#11). */
export const nodeFs: StorageFs = {
  mkdirp: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  readdir: (dir) => fsp.readdir(dir),
  readFile: (file) => fsp.readFile(file),
  open: async (file, mode) => {
    const fh = await fsp.open(file, OPEN_FLAGS[mode]);
    return {
      write: async (buf, offset, length) => (await fh.write(buf, offset, length)).bytesWritten,
      sync: () => fh.sync(),
      datasync: () => fh.datasync(),
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.rm(file, { force: true }),
};

export interface RecoveredState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  /** Contiguous entries after the snapshot (or after the segment start when there is no snapshot). */
  readonly entries: readonly Entry[];
  /** meta.json did not exist: this is the first boot of this dataDir. */
  readonly firstBoot: boolean;
  /** Set when a torn tail was cut off during open. */
  readonly tornTail: { readonly file: string; readonly offset: number; readonly droppedBytes: number } | undefined;
}

/** What one Ready asks to persist (etcd contract: snapshot, entries, hard state). */
export interface PersistRequest {
  readonly snapshot?: Snapshot | undefined;
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState | undefined;
  /**
   * false only when nothing but the commit index changed (Ready.mustSync, etcd MustSync): the write is not
   * fsynced because a lost commit index is recomputed from a quorum. Default true.
   */
  readonly mustSync?: boolean;
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

function segmentName(seq: number): string {
  return `wal-${seq.toString(16).padStart(16, '0')}.log`;
}

function snapshotName(index: number): string {
  return `snap-${index.toString(16).padStart(16, '0')}.snap`;
}

function encodeRecord(type: number, payload: Uint8Array): Buffer {
  const bodyLen = 1 + payload.length;
  const out = Buffer.alloc(RECORD_HEADER_BYTES + pad8(bodyLen));
  out.writeUInt32LE(bodyLen, 0);
  out.writeUInt32LE(crc32c(out, 0, 4), 4);
  out.writeUInt8(type, RECORD_HEADER_BYTES);
  out.set(payload, RECORD_HEADER_BYTES + 1);
  out.writeUInt32LE(crc32c(out, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + bodyLen), 8);
  return out;
}

function encodeFileHeader(seq: number): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES);
  WAL_MAGIC.copy(h, 0);
  h.writeUInt16LE(WAL_FORMAT_VERSION, 6);
  h.writeUInt32LE(seq, 8);
  h.writeUInt32LE(crc32c(h, 0, 12), 12);
  return h;
}

type RecordCheck =
  | { readonly ok: true; readonly end: number; readonly bodyStart: number; readonly bodyLen: number }
  | { readonly ok: false; readonly reason: string; readonly headerValid: boolean; readonly end: number };

/** Validates the record at `off` without decoding it. */
function checkRecord(buf: Buffer, off: number): RecordCheck {
  if (off + RECORD_HEADER_BYTES > buf.length) return { ok: false, reason: 'incomplete record header', headerValid: false, end: buf.length };
  const bodyLen = buf.readUInt32LE(off);
  if (crc32c(buf, off, off + 4) !== buf.readUInt32LE(off + 4) || bodyLen === 0 || bodyLen > MAX_RECORD_BYTES) {
    return { ok: false, reason: 'bad record header', headerValid: false, end: off + 8 };
  }
  const bodyStart = off + RECORD_HEADER_BYTES;
  const end = bodyStart + pad8(bodyLen);
  if (bodyStart + bodyLen > buf.length) return { ok: false, reason: 'record extends past end of file', headerValid: true, end: buf.length };
  if (crc32c(buf, bodyStart, bodyStart + bodyLen) !== buf.readUInt32LE(off + 8)) {
    return { ok: false, reason: 'record checksum mismatch', headerValid: true, end: Math.min(end, buf.length) };
  }
  return { ok: true, end: Math.min(end, buf.length), bodyStart, bodyLen };
}

/** Offset of the first fully valid record at an 8-aligned offset in [from, end of buffer), or -1. */
function nextValidRecord(buf: Buffer, from: number): number {
  for (let o = pad8(from); o + RECORD_HEADER_BYTES <= buf.length; o += 8) {
    if (checkRecord(buf, o).ok) return o;
  }
  return -1;
}

/** The durable-end mark of the (valid) batch record at `off`, or undefined (a start or old-format record). */
function durableEndMark(buf: Buffer, off: number): number | undefined {
  const rec = checkRecord(buf, off);
  if (!rec.ok) return undefined;
  const r = new BufReader(buf, rec.bodyStart, rec.bodyStart + rec.bodyLen);
  try {
    if (r.u8() !== REC_BATCH || (r.u8() & BATCH_DURABLE_END) === 0) return undefined;
    return r.uint();
  } catch {
    return undefined;
  }
}

interface ParsedSegment {
  readonly startIndex: number;
  readonly startTerm: number;
  readonly entries: Entry[];
  readonly hardState: HardState | undefined;
  /** Offset just past the last valid record. */
  readonly validEnd: number;
  readonly tornReason: string | undefined;
  /** Damaged records skipped because they were written without sync before a later durable record. */
  readonly lostUnsynced: readonly { readonly offset: number; readonly bytes: number; readonly reason: string }[];
}

function parseSegment(file: string, buf: Buffer, expectSeq: number): ParsedSegment {
  if (buf.length < FILE_HEADER_BYTES) throw new CorruptLogError(file, 0, 'file header is incomplete');
  if (!buf.subarray(0, 6).equals(WAL_MAGIC) || crc32c(buf, 0, 12) !== buf.readUInt32LE(12)) {
    throw new CorruptLogError(file, 0, 'bad file header (magic or checksum)');
  }
  const version = buf.readUInt16LE(6);
  if (version !== WAL_FORMAT_VERSION) throw new CorruptLogError(file, 6, `unsupported WAL format version ${version}`);
  if (buf.readUInt32LE(8) !== expectSeq) throw new CorruptLogError(file, 8, 'segment sequence does not match its file name');

  let off = FILE_HEADER_BYTES;
  let startIndex = -1;
  let startTerm = 0;
  const entries: Entry[] = [];
  let hardState: HardState | undefined;
  let tornReason: string | undefined;
  const lostUnsynced: { offset: number; bytes: number; reason: string }[] = [];
  while (off < buf.length) {
    const rec = checkRecord(buf, off);
    if (!rec.ok) {
      // With no valid record after it, this is a torn tail (one record per persist call). With one after
      // it, the damage is in the middle, which a power loss causes legally in one case only: the damaged
      // bytes were written without sync (commit-only records) and a later durable write survived. The
      // next record's durable-end mark says where the synced prefix ended when it was written; if the
      // damage starts at or after that mark, nothing in it was ever acknowledged as durable. Otherwise
      // a synced record is damaged: fail closed (etcd-io/etcd#6378 is the opposite mistake).
      const next = nextValidRecord(buf, rec.headerValid ? rec.end : off + 8);
      if (next < 0) {
        tornReason = rec.reason;
        break;
      }
      const mark = durableEndMark(buf, next);
      if (mark === undefined || mark > off || mark < FILE_HEADER_BYTES) {
        throw new CorruptLogError(file, off, `${rec.reason}, and valid records follow it (a synced record is damaged)`);
      }
      lostUnsynced.push({ offset: off, bytes: next - off, reason: rec.reason });
      off = next;
      continue;
    }
    const r = new BufReader(buf, rec.bodyStart, rec.bodyStart + rec.bodyLen);
    try {
      const type = r.u8();
      if (startIndex < 0) {
        if (type !== REC_START) throw new Error('first record is not a segment start record');
        startIndex = r.uint();
        startTerm = r.uint();
      } else if (type === REC_BATCH) {
        const flags = r.u8();
        if (flags & ~(BATCH_TRUNCATE | BATCH_HARDSTATE | BATCH_DURABLE_END)) throw new Error(`unknown batch flags ${flags}`);
        if (flags & BATCH_DURABLE_END) r.uint();
        const base = startIndex;
        const truncateFrom = flags & BATCH_TRUNCATE ? r.uint() : undefined;
        if (flags & BATCH_HARDSTATE) hardState = readHardState(r);
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const e = readEntry(r);
          const last = base + entries.length;
          if (i === 0 && (e.index <= last || truncateFrom !== undefined)) {
            if (e.index <= base) throw new Error(`entry ${e.index} overwrites the compacted prefix (segment starts after ${base})`);
            entries.length = e.index - base - 1;
          } else if (e.index !== last + 1) {
            throw new Error(`entry ${e.index} is not contiguous with last index ${last}`);
          }
          entries.push(e);
        }
      } else {
        throw new Error(`unknown record type ${type}`);
      }
      r.done();
    } catch (err) {
      throw new CorruptLogError(file, off, `valid checksum but undecodable record: ${(err as Error).message}`);
    }
    off = rec.end;
  }
  if (startIndex < 0) throw new CorruptLogError(file, FILE_HEADER_BYTES, 'segment has no start record');
  return { startIndex, startTerm, entries, hardState, validEnd: off, tornReason, lostUnsynced };
}

function encodeSnapshotFile(s: Snapshot): Buffer {
  const body = new BufWriter(64 + s.data.length);
  writeSnapshot(body, s);
  const b = body.finish();
  const out = Buffer.alloc(16 + b.length + 4);
  SNAP_MAGIC.copy(out, 0);
  out.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  out.writeUInt32LE(b.length, 12);
  out.set(b, 16);
  out.writeUInt32LE(crc32c(out, 0, 16 + b.length), 16 + b.length);
  return out;
}

/** Decodes a snapshot file; throws CorruptSnapshotError on any damage. Exported for tests and tools. */
export function decodeSnapshotFile(file: string, buf: Buffer): Snapshot {
  if (buf.length < 20) throw new CorruptSnapshotError(file, `truncated (${buf.length} bytes)`);
  if (!buf.subarray(0, 8).equals(SNAP_MAGIC)) throw new CorruptSnapshotError(file, 'bad magic');
  const version = buf.readUInt32LE(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) throw new CorruptSnapshotError(file, `unsupported format version ${version}`);
  const len = buf.readUInt32LE(12);
  if (16 + len + 4 !== buf.length) throw new CorruptSnapshotError(file, `truncated or oversized: body says ${len} bytes, file has ${buf.length - 20}`);
  if (crc32c(buf, 0, 16 + len) !== buf.readUInt32LE(16 + len)) throw new CorruptSnapshotError(file, 'checksum mismatch');
  try {
    const r = new BufReader(buf, 16, 16 + len);
    const s = readSnapshot(r);
    r.done();
    return s;
  } catch (err) {
    throw new CorruptSnapshotError(file, `undecodable: ${(err as Error).message}`);
  }
}

const defaultSync = async (fh: StorageFile, kind: SyncKind): Promise<void> => {
  // WAL appends need only data + size (fdatasync); renamed files and directories need a full fsync.
  if (kind === 'wal') await fh.datasync();
  else await fh.sync();
};

/**
 * The live WAL segment, opened twice with O_APPEND (so records land in the order they are written; the
 * persist queue issues one at a time). Records that must be durable go through an O_DSYNC descriptor:
 * write and sync in one system call, so one thread-pool hop instead of write + fdatasync (measured on
 * this VM: p50 0.46 vs 0.54 ms, p90 2.0 vs 3.1 ms under load). Commit-index-only records, which need
 * no sync, go through the plain one. With syncForTest the durable descriptor is plain and the hook runs
 * after each durable write, so tests can make the sync fail or stall.
 */
class Segment {
  private constructor(
    readonly plain: StorageFile,
    readonly durable: StorageFile,
    readonly hooked: boolean,
    /** File offset where the next record lands (O_APPEND; writes are serialized). */
    public size: number,
    /** Offset just past the last record written durably: every byte after it was written without sync. */
    public durableEnd: number,
  ) {}

  static async open(fs: StorageFs, file: string, syncForTest: DiskStorageOptions['syncForTest'], size: number, durableEnd: number): Promise<Segment> {
    const plain = await fs.open(file, 'append');
    try {
      const durable = syncForTest ? plain : await fs.open(file, 'append-dsync');
      return new Segment(plain, durable, syncForTest !== undefined, size, durableEnd);
    } catch (err) {
      await plain.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.plain.close().catch(() => undefined);
    if (this.durable !== this.plain) await this.durable.close().catch(() => undefined);
  }
}

export class DiskStorage {
  private failure: StorageFailedError | undefined;
  private closed = false;
  /** Serializes persist calls even if a caller forgets to await (the driver does await). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Calls in the chain not yet settled. */
  private queued = 0;
  private startIndex: number;
  private lastIndex: number;
  private hardState: HardState;
  /** Any snapshot was ever made durable (the bootstrap configuration is an index-0 snapshot). */
  private hasSnapshot: boolean;
  private readonly fs: StorageFs;

  private constructor(
    private readonly opts: DiskStorageOptions,
    private readonly log: ClusterLogger,
    private segment: Segment,
    private seq: number,
    startIndex: number,
    readonly recovered: RecoveredState,
    private snapshotIndex: number,
  ) {
    this.startIndex = startIndex;
    const ents = recovered.entries;
    this.lastIndex = ents.length > 0 ? ents[ents.length - 1]!.index : Math.max(startIndex, snapshotIndex);
    this.hardState = recovered.hardState;
    this.hasSnapshot = recovered.snapshot !== undefined;
    this.fs = opts.fs ?? nodeFs;
  }

  /** Opens (or creates) dataDir, checks the node id, recovers the log. */
  static async open(opts: DiskStorageOptions): Promise<DiskStorage> {
    const log = opts.logger ?? noopLogger;
    const dir = path.resolve(opts.dataDir);
    const sync = opts.syncForTest ?? defaultSync;
    const fs = opts.fs ?? nodeFs;
    await fs.mkdirp(dir);

    // Leftover temp files are incomplete writes that were never renamed into place.
    let names = await fs.readdir(dir);
    for (const n of names.filter((x) => x.endsWith('.tmp'))) await fs.unlink(path.join(dir, n));
    names = names.filter((x) => !x.endsWith('.tmp'));

    const metaPath = path.join(dir, 'meta.json');
    let firstBoot = false;
    if (names.includes('meta.json')) {
      let meta: { format?: unknown; nodeId?: unknown };
      try {
        meta = JSON.parse(asBuffer(await fs.readFile(metaPath)).toString('utf8')) as typeof meta;
      } catch (err) {
        throw new CorruptLogError(metaPath, 0, `meta.json is unreadable: ${(err as Error).message}`);
      }
      if (meta.format !== META_FORMAT_VERSION || typeof meta.nodeId !== 'string') {
        throw new CorruptLogError(metaPath, 0, `unsupported meta.json (format ${String(meta.format)})`);
      }
      if (meta.nodeId !== opts.nodeId) throw new NodeIdMismatchError(dir, meta.nodeId, opts.nodeId);
    } else {
      if (names.some((n) => n.startsWith('wal-') || n.startsWith('snap-'))) {
        throw new CorruptLogError(metaPath, 0, 'raft files exist but meta.json is missing; refusing to guess the node id');
      }
      await writeFileDurably(fs, dir, 'meta.json', Buffer.from(JSON.stringify({ format: META_FORMAT_VERSION, nodeId: opts.nodeId }) + '\n'), sync);
      firstBoot = true;
    }

    // Snapshots, newest first; remember damaged ones so a fallback is logged.
    const snapNames = names.filter((n) => /^snap-[0-9a-f]{16}\.snap$/.test(n)).sort().reverse();
    const snapshots: { file: string; snap: Snapshot }[] = [];
    const badSnapshots: CorruptSnapshotError[] = [];
    for (const n of snapNames) {
      const file = path.join(dir, n);
      try {
        snapshots.push({ file, snap: decodeSnapshotFile(file, asBuffer(await fs.readFile(file))) });
      } catch (err) {
        if (err instanceof CorruptSnapshotError) badSnapshots.push(err);
        else throw err;
      }
    }

    const segNames = names.filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n)).sort();
    let seq: number;
    let parsed: ParsedSegment;
    let tornTail: RecoveredState['tornTail'];
    let fh: Segment;
    if (segNames.length === 0) {
      if (snapNames.length > 0) throw new CorruptLogError(path.join(dir, segmentName(1)), 0, 'snapshots exist but the log segment is missing (term and vote would be lost)');
      seq = 1;
      const content = Buffer.concat([encodeFileHeader(seq), encodeRecord(REC_START, startPayload(0, 0))]);
      await writeFileDurably(fs, dir, segmentName(seq), content, sync);
      parsed = { startIndex: 0, startTerm: 0, entries: [], hardState: undefined, validEnd: content.length, tornReason: undefined, lostUnsynced: [] };
      fh = await Segment.open(fs, path.join(dir, segmentName(seq)), opts.syncForTest, content.length, content.length);
    } else {
      const live = segNames[segNames.length - 1]!;
      seq = parseInt(live.slice(4, 20), 16);
      const file = path.join(dir, live);
      const buf = asBuffer(await fs.readFile(file));
      parsed = parseSegment(file, buf, seq);
      for (const lost of parsed.lostUnsynced) {
        log.warn({ file, ...lost }, 'raft log: skipped a record written without sync and lost in a power failure (commit index only; it is recomputed from the leader)');
      }
      if (parsed.tornReason !== undefined) {
        tornTail = { file, offset: parsed.validEnd, droppedBytes: buf.length - parsed.validEnd };
        log.warn({ file, offset: parsed.validEnd, droppedBytes: tornTail.droppedBytes, reason: parsed.tornReason }, 'raft log: torn tail truncated back to the last valid record');
        const t = await fs.open(file, 'update');
        try {
          await t.truncate(parsed.validEnd);
        } finally {
          await t.close();
        }
      }
      fh = await Segment.open(fs, file, opts.syncForTest, parsed.validEnd, parsed.validEnd);
      try {
        // What was read may still be only in the page cache (a process crash keeps it): sync it, so the
        // durable-end marks of the records written from now on are true.
        await sync(fh.plain, 'wal');
      } catch (err) {
        await fh.close();
        throw err;
      }
      // Older segments were superseded by a rewrite that completed (the new one was renamed into place
      // only after it was durable); they are left over from a crash before their deletion.
      for (const old of segNames.slice(0, -1)) await fs.unlink(path.join(dir, old));
    }
    try {
      // The names just read may be only in the page cache too (a rename whose directory sync a crash or
      // an error cut off): make them durable before anything written now depends on them.
      await fsyncDir(fs, dir, sync);
    } catch (err) {
      await fh.close();
      throw err;
    }

    // The snapshot must cover everything the segment start compacted away.
    const usable = snapshots.find((s) => s.snap.metadata.index >= parsed.startIndex);
    if (parsed.startIndex > 0 && usable === undefined) {
      await fh.close();
      const why = badSnapshots[0]?.message ?? 'no snapshot file found';
      throw new CorruptSnapshotError(path.join(dir, snapshotName(parsed.startIndex)), `the log starts after index ${parsed.startIndex} but no usable snapshot covers it (${why})`);
    }
    if (usable && usable !== snapshots[0]) {
      log.warn({ file: usable.file, damaged: badSnapshots.map((e) => e.file) }, 'raft: newest snapshot unusable, falling back to an older one');
    } else if (badSnapshots.length > 0) {
      log.warn({ damaged: badSnapshots.map((e) => e.file) }, 'raft: ignoring damaged snapshot files');
    }
    const snapshot = usable?.snap;
    const snapIndex = snapshot?.metadata.index ?? 0;
    const { entries, hardState, interrupted } = reconcileWithSnapshot(parsed, snapshot, opts.mutationsForTest?.has('recovery-skips-snapshot-clamp') ?? false);
    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : Math.max(snapIndex, parsed.startIndex);
    if (hardState.commit > lastIndex) {
      await fh.close();
      throw new CorruptLogError(path.join(dir, segmentName(seq)), parsed.validEnd, `hard state commit ${hardState.commit} is beyond the durable log (last index ${lastIndex}); durable state was lost (tikv/tikv#994)`);
    }
    const recovered: RecoveredState = { hardState, snapshot, entries, firstBoot, tornTail };
    const storage = new DiskStorage({ ...opts, dataDir: dir }, log, fh, seq, parsed.startIndex, recovered, snapIndex);
    if (interrupted && snapshot) {
      // Finish the segment rewrite the crash interrupted, so the log continues right after the snapshot.
      log.warn({ snapshot: snapIndex, segmentStart: parsed.startIndex, durableCommit: parsed.hardState?.commit ?? 0 }, 'raft: completing a snapshot install interrupted by a crash (the log is replaced by the snapshot)');
      try {
        await storage.serialize(() => storage.rewriteSegment(snapIndex, snapshot.metadata.term, hardState, []));
      } catch (err) {
        await storage.close();
        throw err;
      }
    } else if (parsed.hardState && !sameHardState(parsed.hardState, hardState)) {
      log.warn({ snapshot: snapIndex, durableCommit: parsed.hardState.commit }, 'raft: commit index raised to the snapshot index (the snapshot holds only committed state)');
    }
    return storage;
  }

  /** True when nothing was ever persisted (no snapshot, no entries, no term): bootstrap may run. */
  isEmpty(): boolean {
    return !this.hasSnapshot && this.lastIndex === 0 && this.hardState.term === 0;
  }

  get failed(): StorageFailedError | undefined {
    return this.failure;
  }

  /** Last hard state made durable. */
  get durableHardState(): HardState {
    return this.hardState;
  }

  /**
   * Makes one Ready's snapshot, entries and hard state durable, in that order; resolves only after fsync.
   * A snapshot replaces the whole log (etcd MemoryStorage.ApplySnapshot semantics).
   */
  persist(req: PersistRequest): Promise<void> {
    return this.serialize(async () => {
      if (req.snapshot) {
        await this.writeSnapshotFile(req.snapshot);
        this.snapshotIndex = req.snapshot.metadata.index;
        this.hasSnapshot = true;
        // The rewritten segment holds no entry yet: its commit stops at the snapshot, and this Ready's
        // commit is written below with its entries. (A commit past them, made durable first, would leave
        // a peer that crashed in between unable to start: commit beyond the durable log.)
        const hs = req.hardState ?? this.hardState;
        await this.rewriteSegment(req.snapshot.metadata.index, req.snapshot.metadata.term, { ...hs, commit: Math.min(hs.commit, req.snapshot.metadata.index) }, []);
      }
      const entries = req.entries ?? [];
      if (entries.length === 0 && (req.hardState === undefined || sameHardState(req.hardState, this.hardState))) return;
      const w = new BufWriter(64 + entries.reduce((n, e) => n + e.data.length + 21, 0));
      let flags = 0;
      let truncateFrom: number | undefined;
      const first = entries[0];
      if (first) {
        if (first.index > this.lastIndex + 1) throw new Error(`persist: gap, entry ${first.index} after last index ${this.lastIndex}`);
        if (first.index <= this.startIndex) throw new Error(`persist: entry ${first.index} is inside the compacted prefix`);
        if (first.index <= this.lastIndex) {
          truncateFrom = first.index;
          flags |= BATCH_TRUNCATE;
        }
      }
      if (req.hardState) flags |= BATCH_HARDSTATE;
      const seg = this.segment;
      w.u8(flags | BATCH_DURABLE_END);
      w.f64(seg.durableEnd);
      if (truncateFrom !== undefined) w.f64(truncateFrom);
      if (req.hardState) writeHardState(w, req.hardState);
      w.u32(entries.length);
      for (const e of entries) writeEntry(w, e);
      const durable = req.mustSync !== false || entries.length > 0;
      const record = encodeRecord(REC_BATCH, w.finish());
      await this.writeAll(durable ? seg.durable : seg.plain, record);
      if (durable && seg.hooked) await this.sync(seg.durable, 'wal');
      seg.size += record.length;
      if (durable) seg.durableEnd = seg.size;
      if (first) this.lastIndex = entries[entries.length - 1]!.index;
      if (req.hardState) this.hardState = req.hardState;
    });
  }

  /**
   * Durably records a snapshot taken locally and compacts the log: the segment is rewritten to start after
   * (compactIndex, compactTerm) holding `retained` (the entries after compactIndex, from MemoryStorage).
   * compactIndex ≤ snapshot index, so the kept trailing entries still serve slow followers (R-H3).
   */
  compact(snapshot: Snapshot, compactIndex: number, compactTerm: number, retained: readonly Entry[]): Promise<void> {
    return this.serialize(async () => {
      if (compactIndex > snapshot.metadata.index) throw new Error('compact: compactIndex beyond snapshot');
      await this.writeSnapshotFile(snapshot);
      this.snapshotIndex = snapshot.metadata.index;
      this.hasSnapshot = true;
      if (compactIndex > this.startIndex) await this.rewriteSegment(compactIndex, compactTerm, this.hardState, retained);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    await this.segment.close();
  }

  // -------------------------------------------------------------------------------------------------
  /** Runs fn after every earlier persist call settled (and fails it if the storage already failed). */
  private serialize(fn: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        if (this.failure) throw this.failure;
        if (this.closed) throw new StorageFailedError('storage is closed');
        await fn();
      } finally {
        this.queued--;
      }
    };
    // With nothing queued, start at once: the write reaches the thread pool before the caller's next
    // statement (the leader sends its appends right after starting its own write).
    const idle = this.queued === 0;
    this.queued++;
    const p = idle ? run() : this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private fail(what: string, err: unknown): StorageFailedError {
    if (!this.failure) {
      this.failure = new StorageFailedError(`raft storage failed permanently during ${what}: ${(err as Error)?.message ?? String(err)}`, err);
      this.log.error({ err, dataDir: this.opts.dataDir }, 'raft storage failed; this peer stops acknowledging writes and votes');
    }
    return this.failure;
  }

  private async sync(fh: StorageFile, kind: SyncKind): Promise<void> {
    try {
      await (this.opts.syncForTest ?? defaultSync)(fh, kind);
    } catch (err) {
      throw this.fail(`${kind} fsync`, err);
    }
  }

  private async writeAll(fh: StorageFile, buf: Buffer): Promise<void> {
    try {
      let off = 0;
      while (off < buf.length) off += await fh.write(buf, off, buf.length - off);
    } catch (err) {
      throw this.fail('write', err);
    }
  }

  private async writeSnapshotFile(s: Snapshot): Promise<void> {
    const dir = this.opts.dataDir;
    try {
      await writeFileDurably(this.fs, dir, snapshotName(s.metadata.index), encodeSnapshotFile(s), this.opts.syncForTest ?? defaultSync);
      const snaps = (await this.fs.readdir(dir)).filter((n) => /^snap-[0-9a-f]{16}\.snap$/.test(n)).sort().reverse();
      for (const old of snaps.slice(SNAPSHOTS_RETAINED)) await this.fs.unlink(path.join(dir, old));
    } catch (err) {
      throw this.fail('snapshot write', err);
    }
  }

  private async rewriteSegment(startIndex: number, startTerm: number, hs: HardState, entries: readonly Entry[]): Promise<void> {
    const dir = this.opts.dataDir;
    const next = this.seq + 1;
    const w = new BufWriter(64 + entries.reduce((n, e) => n + e.data.length + 21, 0));
    const head = Buffer.concat([encodeFileHeader(next), encodeRecord(REC_START, startPayload(startIndex, startTerm))]);
    w.u8(BATCH_HARDSTATE | BATCH_DURABLE_END);
    w.f64(head.length);
    writeHardState(w, hs);
    w.u32(entries.length);
    for (const e of entries) writeEntry(w, e);
    const content = Buffer.concat([head, encodeRecord(REC_BATCH, w.finish())]);
    try {
      await writeFileDurably(this.fs, dir, segmentName(next), content, this.opts.syncForTest ?? defaultSync);
      const nseg = await Segment.open(this.fs, path.join(dir, segmentName(next)), this.opts.syncForTest, content.length, content.length);
      await this.segment.close();
      this.segment = nseg;
      await this.fs.unlink(path.join(dir, segmentName(this.seq)));
      await fsyncDir(this.fs, dir, this.opts.syncForTest ?? defaultSync);
    } catch (err) {
      throw err instanceof StorageFailedError ? err : this.fail('segment rewrite', err);
    }
    this.seq = next;
    this.startIndex = startIndex;
    this.lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : Math.max(startIndex, this.snapshotIndex);
    this.hardState = hs;
  }
}

/**
 * Recovery rule for a snapshot newer than the segment's own state (a crash after the snapshot file became
 * durable but before the segment rewrite, or after a power loss dropped unsynced commit-only records):
 * - A snapshot holds only committed state (a leader sends only committed snapshots; a local one is of
 *   applied entries), so the commit index is raised to its index, and the term to its term (a lower
 *   term cannot have voted in the snapshot's term: votes are durable before they are sent).
 * - The segment's entries after the snapshot are kept only if the segment holds the snapshot's index at
 *   the snapshot's term (Log Matching: then the prefixes agree); otherwise they are another branch of the
 *   log and are dropped, and the caller completes the interrupted rewrite (`interrupted`).
 */
function reconcileWithSnapshot(
  parsed: ParsedSegment,
  snapshot: Snapshot | undefined,
  skipClampForTest = false,
): { entries: Entry[]; hardState: HardState; interrupted: boolean } {
  let hardState = parsed.hardState ?? EMPTY_HARD_STATE;
  if (!snapshot) return { entries: parsed.entries, hardState, interrupted: false };
  const { index, term } = snapshot.metadata;
  let entries = parsed.entries.filter((e) => e.index > index);
  let interrupted = false;
  if (index > parsed.startIndex) {
    const at = parsed.entries[index - parsed.startIndex - 1];
    if (at === undefined || at.index !== index || at.term !== term) {
      entries = [];
      interrupted = true;
    }
  } else if (index === parsed.startIndex && index > 0 && parsed.startTerm !== term) {
    entries = [];
    interrupted = true;
  }
  if (skipClampForTest) return { entries, hardState, interrupted };
  if (hardState.term < term) hardState = { term, vote: '', commit: hardState.commit };
  if (hardState.commit < index) hardState = { ...hardState, commit: index };
  return { entries, hardState, interrupted };
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function startPayload(index: number, term: number): Buffer {
  return new BufWriter(16).f64(index).f64(term).finish();
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

async function fsyncDir(fs: StorageFs, dir: string, sync: (fh: StorageFile, kind: SyncKind) => Promise<void>): Promise<void> {
  // Linux: a directory is fsynced through a read-only descriptor (google/renameio#11). Windows cannot.
  if (process.platform === 'win32' && fs === nodeFs) return;
  const d = await fs.open(dir, 'dir');
  try {
    await sync(d, 'dir');
  } finally {
    await d.close();
  }
}

/**
 * A small file beside the Raft data (cluster.json), on the real filesystem: this module is the data
 * dir's one importer of node:fs. `readDataDirFile` gives undefined when the file does not exist;
 * `writeDataDirFile` resolves once the file and its directory entry are durable (R-E3).
 */
export async function readDataDirFile(file: string, fs: StorageFs = nodeFs): Promise<string | undefined> {
  try {
    return Buffer.from(await fs.readFile(file)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function writeDataDirFile(dir: string, name: string, content: string, fs: StorageFs = nodeFs): Promise<void> {
  return writeFileDurably(fs, dir, name, Buffer.from(content, 'utf8'), (fh) => fh.sync());
}

/** temp file → write → fsync → rename → fsync dir (R-E3). */
async function writeFileDurably(fs: StorageFs, dir: string, name: string, content: Buffer, sync: (fh: StorageFile, kind: SyncKind) => Promise<void>): Promise<void> {
  const tmp = path.join(dir, `${name}.tmp`);
  const fh = await fs.open(tmp, 'create');
  try {
    let off = 0;
    while (off < content.length) off += await fh.write(content, off, content.length - off);
    await sync(fh, name.endsWith('.snap') ? 'snapshot' : name === 'meta.json' ? 'meta' : 'wal');
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path.join(dir, name));
  await fsyncDir(fs, dir, sync);
}
