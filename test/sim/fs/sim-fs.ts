/**
 * A simulated disk behind the StorageFs seam (src/cluster/storage-fs.ts), so the production WAL and
 * snapshot code of storage.ts can be crashed at every filesystem call with the page cache lost.
 *
 * Model (one flat directory is enough for a dataDir; paths are compared whole):
 *  - Each file has its page-cache view (what reads return) and its disk image. A write changes the view
 *    and marks its pages dirty. fsync/fdatasync copy the view to the disk. A write through an
 *    'append-dsync' descriptor writes its pages through at once (whole pages, so unsynced bytes that share
 *    a page with it go too), and extends the disk size to cover it, leaving earlier unwritten pages as
 *    zeros: that is how [valid][lost][valid] arises.
 *  - Directory entries (create, rename, unlink) change the view at once and become durable when the
 *    directory is synced; a crash keeps a random prefix of the unsynced ones (a journaling filesystem
 *    commits them in order).
 *  - crash(rng): every dirty page is independently lost, kept, or torn (a random subset of its 512-byte
 *    sectors kept); a file whose size grew may come back at its new size with zeros where pages were
 *    lost; an unsynced truncate may or may not have happened.
 *  - Faults: `failAt` names the n-th mutating call (open for writing, write, sync, datasync, truncate,
 *    rename, unlink) and what happens there: 'crash' kills the process (this call and every later call
 *    of this generation throw; nothing of the call is done, except that a write's data may be in the
 *    page cache when the power fails), 'EIO' or 'ENOSPC' make that call fail with
 *    that errno (a write fails without writing) and the process goes on.
 *  - restart() starts a new process generation on the current view (a SIGKILL keeps the page cache);
 *    crash() first replaces every view with what a power loss leaves on disk.
 */
import * as path from 'node:path';
import type { StorageFile, StorageFs, StorageOpenMode } from '../../../src/cluster/storage-fs.js';
import type { Random } from '../../../src/lib/rng.js';

export const PAGE = 4096;
export const SECTOR = 512;

export type FaultKind = 'crash' | 'EIO' | 'ENOSPC';

export class SimCrash extends Error {
  constructor(readonly op: number, what: string) {
    super(`simulated crash at filesystem call ${op} (${what})`);
  }
}

class Inode {
  view = Buffer.alloc(0);
  disk = Buffer.alloc(0);
  dirty = new Set<number>();

  write(at: number, data: Uint8Array): void {
    const end = at + data.length;
    if (end > this.view.length) {
      const grown = Buffer.alloc(end);
      this.view.copy(grown);
      this.view = grown;
    }
    this.view.set(data, at);
    for (let p = Math.floor(at / PAGE); p * PAGE < end; p++) this.dirty.add(p);
  }

  truncate(len: number): void {
    const next = Buffer.alloc(len);
    this.view.copy(next, 0, 0, Math.min(len, this.view.length));
    this.view = next;
    for (const p of [...this.dirty]) if (p * PAGE >= len) this.dirty.delete(p);
    this.sizeDirty = true;
  }

  sizeDirty = false;

  clone(): Inode {
    const c = new Inode();
    c.view = Buffer.from(this.view);
    c.disk = Buffer.from(this.disk);
    c.dirty = new Set(this.dirty);
    c.sizeDirty = this.sizeDirty;
    return c;
  }

  syncAll(): void {
    this.disk = Buffer.from(this.view);
    this.dirty.clear();
    this.sizeDirty = false;
  }

  /** O_DSYNC write of [at, at+len): its pages go to disk, and the disk size covers it. */
  syncRange(at: number, len: number): void {
    const end = at + len;
    const disk = Buffer.alloc(Math.max(this.disk.length, end));
    this.disk.copy(disk);
    for (let p = Math.floor(at / PAGE); p * PAGE < end; p++) {
      const from = p * PAGE;
      const to = Math.min((p + 1) * PAGE, this.view.length);
      if (to > from) this.view.copy(disk, from, from, to);
      this.dirty.delete(p);
    }
    this.disk = disk;
  }

  /** What a power loss leaves of this file. */
  crash(rng: Random): void {
    let len = this.disk.length;
    if (this.sizeDirty && this.view.length < len && rng() < 0.5) len = this.view.length;
    const kept: [number, number][] = [];
    for (const p of this.dirty) {
      const r = rng();
      if (r < 0.4) continue; // lost
      for (let s = 0; s < PAGE / SECTOR; s++) {
        if (r < 0.7 && rng() < 0.5) continue; // torn: only some sectors of the page
        const from = p * PAGE + s * SECTOR;
        const to = Math.min(from + SECTOR, this.view.length);
        if (to > from) kept.push([from, to]);
      }
    }
    for (const [, to] of kept) len = Math.max(len, to);
    if (this.view.length > len && rng() < 0.25) len = this.view.length; // size journaled, data not
    const disk = Buffer.alloc(len);
    this.disk.copy(disk, 0, 0, Math.min(len, this.disk.length));
    for (const [from, to] of kept) if (from < len) this.view.copy(disk, from, from, Math.min(to, len));
    this.disk = disk;
    this.view = Buffer.from(disk);
    this.dirty.clear();
    this.sizeDirty = false;
  }
}

type DirOp = { op: 'link'; name: string; inode: Inode } | { op: 'unlink'; name: string } | { op: 'rename'; from: string; to: string };

function errno(code: string, what: string): Error {
  return Object.assign(new Error(`${code}: simulated ${what}`), { code });
}

export interface SimFsStats {
  /** Mutating calls made so far (the numbering `failAt` uses). */
  ops: number;
  crashes: number;
}

export class SimFs implements StorageFs {
  private files = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private pending: DirOp[] = [];
  private generation = 0;
  private dead = false;
  readonly stats: SimFsStats = { ops: 0, crashes: 0 };
  /** The n-th mutating call (1-based, counted over the life of this disk) fails this way. */
  failAt: { op: number; kind: FaultKind } | undefined;
  /** Called with each mutating call's number and name, e.g. to record where kill points fall. */
  onOp: ((op: number, what: string) => void) | undefined;

  /** An independent copy of this disk (page cache, disk images, unsynced directory entries), restarted. */
  clone(): SimFs {
    const c = new SimFs();
    const map = new Map<Inode, Inode>();
    const copy = (i: Inode): Inode => map.get(i) ?? (map.set(i, i.clone()), map.get(i)!);
    c.files = new Map([...this.files].map(([k, v]) => [k, copy(v)]));
    c.durable = new Map([...this.durable].map(([k, v]) => [k, copy(v)]));
    c.pending = this.pending.map((op) => (op.op === 'link' ? { ...op, inode: copy(op.inode) } : op));
    c.stats.ops = this.stats.ops;
    return c;
  }

  /** A new process on the same disk, page cache intact (SIGKILL). */
  restart(): void {
    this.generation++;
    this.dead = false;
    this.failAt = undefined;
  }

  /** Power loss: every file and directory entry falls back to what reached the disk, then restart(). */
  crash(rng: Random): void {
    this.stats.crashes++;
    const keep = Math.floor(rng() * (this.pending.length + 1));
    for (const op of this.pending.slice(0, keep)) applyDirOp(this.durable, op);
    this.pending = [];
    const inodes = new Set(this.durable.values());
    for (const inode of inodes) inode.crash(rng);
    this.files = new Map(this.durable);
    this.restart();
  }

  /** Names in the directory's current (page-cache) view; for assertions. */
  names(): string[] {
    return [...this.files.keys()].map((f) => path.basename(f)).sort();
  }

  // ---- StorageFs ----------------------------------------------------------------------------------
  async mkdirp(): Promise<void> {
    this.alive();
  }

  async readdir(dir: string): Promise<string[]> {
    this.alive();
    return [...this.files.keys()].filter((f) => path.dirname(f) === dir).map((f) => path.basename(f));
  }

  async readFile(file: string): Promise<Uint8Array> {
    this.alive();
    const inode = this.files.get(file);
    if (!inode) throw errno('ENOENT', `open ${file}`);
    return Buffer.from(inode.view);
  }

  async open(file: string, mode: StorageOpenMode): Promise<StorageFile> {
    if (mode === 'dir') {
      this.alive();
      return this.handle(undefined, mode, file);
    }
    let inode = this.files.get(file);
    if (mode === 'create' || (mode === 'append' && !inode)) {
      this.mutate(`open ${path.basename(file)} (${mode})`);
      if (inode) inode.truncate(0);
      else {
        inode = new Inode();
        this.files.set(file, inode);
        this.pending.push({ op: 'link', name: file, inode });
      }
    } else {
      this.alive();
      if (!inode) throw errno('ENOENT', `open ${file}`);
    }
    return this.handle(inode, mode, file);
  }

  async rename(from: string, to: string): Promise<void> {
    this.mutate(`rename ${path.basename(from)}`);
    if (!this.files.has(from)) throw errno('ENOENT', `rename ${from}`);
    applyDirOp(this.files, { op: 'rename', from, to });
    this.pending.push({ op: 'rename', from, to });
  }

  async unlink(file: string): Promise<void> {
    this.mutate(`unlink ${path.basename(file)}`);
    if (!this.files.has(file)) return;
    this.files.delete(file);
    this.pending.push({ op: 'unlink', name: file });
  }

  // ---- internals ----------------------------------------------------------------------------------
  private handle(inode: Inode | undefined, mode: StorageOpenMode, file: string): StorageFile {
    const gen = this.generation;
    let pos = 0;
    const name = path.basename(file);
    const check = (what: string): void => {
      if (gen !== this.generation) throw errno('EBADF', `${what} on a descriptor of a dead process`);
      this.mutate(`${what} ${name}`);
    };
    return {
      write: async (buf, offset, length) => {
        if (!inode) throw errno('EISDIR', 'write');
        const at = mode === 'append' || mode === 'append-dsync' ? inode.view.length : pos;
        try {
          check('write');
        } catch (err) {
          // Power can fail while the data is on its way: it is in the page cache, not yet on disk.
          if (err instanceof SimCrash) inode.write(at, buf.subarray(offset, offset + length));
          throw err;
        }
        inode.write(at, buf.subarray(offset, offset + length));
        pos = at + length;
        if (mode === 'append-dsync') inode.syncRange(at, length);
        return length;
      },
      sync: async () => {
        check('fsync');
        if (inode) inode.syncAll();
        else this.syncDir(file);
      },
      datasync: async () => {
        check('fdatasync');
        if (inode) inode.syncAll();
      },
      truncate: async (length) => {
        check('truncate');
        if (!inode) throw errno('EISDIR', 'truncate');
        inode.truncate(length);
      },
      close: async () => undefined,
    };
  }

  private syncDir(dir: string): void {
    for (const op of this.pending) applyDirOp(this.durable, op);
    this.pending = [];
    void dir;
  }

  private alive(): void {
    if (this.dead) throw new SimCrash(this.stats.ops, 'process is dead');
  }

  /** Counts a mutating call and applies the fault planned for it (throws before doing anything). */
  private mutate(what: string): void {
    this.alive();
    const op = ++this.stats.ops;
    this.onOp?.(op, what);
    const f = this.failAt;
    if (f?.op !== op) return;
    if (f.kind === 'crash') {
      this.dead = true;
      throw new SimCrash(op, what);
    }
    throw errno(f.kind, what);
  }
}

function applyDirOp(m: Map<string, Inode>, op: DirOp): void {
  if (op.op === 'link') m.set(op.name, op.inode);
  else if (op.op === 'unlink') m.delete(op.name);
  else {
    const inode = m.get(op.from);
    if (!inode) return;
    m.delete(op.from);
    m.set(op.to, inode);
  }
}
