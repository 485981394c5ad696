/**
 * The filesystem operations DiskStorage uses, as an interface, so tests can run the production WAL and
 * snapshot code on a simulated disk that loses unsynced pages on a crash (test/sim/fs/sim-fs.ts). The
 * real implementation (node:fs) lives in storage.ts, the Raft data dir's one importer of node:fs.
 *
 * Only what storage.ts needs, with the durability meaning of each call spelled out, because the simulated
 * disk implements exactly these meanings and nothing stronger.
 */

export interface StorageFile {
  /** Writes at the end (append modes) or at the current position (create); may write fewer bytes. */
  write(buf: Uint8Array, offset: number, length: number): Promise<number>;
  /** fsync: data, size and inode metadata durable. On a directory: its entries (create, rename, unlink). */
  sync(): Promise<void>;
  /** fdatasync: data and size durable. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * append        O_WRONLY|O_APPEND|O_CREAT, nothing durable until a sync
 * append-dsync  O_WRONLY|O_APPEND|O_DSYNC: each write's data and the size it implies are durable when it
 *               returns (earlier unsynced writes to other pages of the file are not)
 * create        O_WRONLY|O_CREAT|O_TRUNC
 * update        O_RDWR (the file exists)
 * dir           O_RDONLY on a directory, only to sync() it
 */
export type StorageOpenMode = 'append' | 'append-dsync' | 'create' | 'update' | 'dir';

export interface StorageFs {
  mkdirp(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  readFile(file: string): Promise<Uint8Array>;
  open(file: string, mode: StorageOpenMode): Promise<StorageFile>;
  /** Atomic replace; durable only after the directory is synced. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. Durable only after the directory is synced. */
  unlink(file: string): Promise<void>;
}
