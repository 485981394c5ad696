/**
 * Watches the config file and the files it names (the TLS certificates and keys) for changes. It
 * watches each file's directory, not the file: an editor's rename-on-save, a Kubernetes ConfigMap or
 * Secret symlink swap (`..data` renamed) and cert-manager / certbot renewals replace the inode, which a
 * watch on the file itself would miss. An event for one of the watched names (or for a `..`-prefixed
 * name: the `..data` swap of Kubernetes' atomic writer) schedules a check DEBOUNCE_MS later; the check
 * fires only when the content of one of the files actually changed (sha256 over all of them), so
 * touch-without-change costs nothing, and a certificate and its key replaced one after the other
 * within the debounce give one reload. Events for other files in the directory (an access log written
 * beside the config) are ignored, and a burst of events never postpones the check past DEBOUNCE_MS
 * after its first event: a timer reset on every event never fired while a neighbour was being written.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';

/** 50 ms: coalesces the truncate+write pair of an in-place save and a burst of editor events. */
export const DEBOUNCE_MS = 50;

export class ConfigWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  /** Per watched directory, the names in it whose events matter. */
  private readonly names = new Map<string, Set<string>>();
  private files: string[];
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private lastHash: string | undefined;

  /** `files`: the config file first, then any file it names. */
  constructor(files: string | readonly string[], private readonly onChange: () => void) {
    this.files = normalise(files);
    this.lastHash = this.hashNow();
  }

  start(): void {
    this.started = true;
    this.watchDirectories();
  }

  /** The set of files changed (a reload named other certificates): watch those from now on. */
  setFiles(files: readonly string[]): void {
    this.files = normalise(files);
    if (this.started) this.watchDirectories();
  }

  /** Record the content that is now in effect (after a reload triggered elsewhere). */
  markSeen(): void {
    this.lastHash = this.hashNow();
  }

  private watchDirectories(): void {
    this.names.clear();
    for (const f of this.files) {
      const dir = dirname(f);
      if (!this.names.has(dir)) this.names.set(dir, new Set());
      this.names.get(dir)!.add(basename(f));
    }
    for (const [dir, w] of this.watchers) {
      if (this.names.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of this.names.keys()) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || name.startsWith('..') || this.names.get(dir)?.has(name)) this.schedule();
        });
        w.on('error', () => undefined);
        this.watchers.set(dir, w);
      } catch {
        // A directory that does not exist (yet): the file's load error says so; nothing to watch.
      }
    }
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const h = this.hashNow();
      if (h === undefined || h === this.lastHash) return;
      this.lastHash = h;
      this.onChange();
    }, DEBOUNCE_MS);
    this.timer.unref();
  }

  /** undefined while the config file itself cannot be read (mid-replace); a missing named file hashes as absent. */
  private hashNow(): string | undefined {
    const h = createHash('sha256');
    for (let i = 0; i < this.files.length; i++) {
      try {
        h.update(readFileSync(this.files[i]!));
      } catch {
        if (i === 0) return undefined;
        h.update('\0absent');
      }
      h.update('\0');
    }
    return h.digest('hex');
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.started = false;
  }
}

function normalise(files: string | readonly string[]): string[] {
  return [...new Set((typeof files === 'string' ? [files] : files).map((f) => resolve(f)))];
}
