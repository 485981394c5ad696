/**
 * Watches the config file for changes. It watches the file's directory, not the file: an editor's
 * rename-on-save and a Kubernetes ConfigMap symlink swap (`..data` renamed) replace the inode, which a
 * watch on the file itself would miss. Any event in the directory schedules a debounced check; the
 * check fires only when the file's content actually changed (sha256), so unrelated files and
 * touch-without-change cost nothing.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';

/** 50 ms: coalesces the truncate+write pair of an in-place save and a burst of editor events. */
export const DEBOUNCE_MS = 50;

export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastHash: string | undefined;

  constructor(private readonly file: string, private readonly onChange: () => void) {
    this.lastHash = this.hashNow();
  }

  start(): void {
    this.watcher = watch(dirname(this.file), { persistent: false }, () => this.schedule());
    this.watcher.on('error', () => undefined);
  }

  /** Record the content that is now in effect (after a reload triggered elsewhere). */
  markSeen(): void {
    this.lastHash = this.hashNow();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const h = this.hashNow();
      if (h === undefined || h === this.lastHash) return;
      this.lastHash = h;
      this.onChange();
    }, DEBOUNCE_MS);
    this.timer.unref();
  }

  private hashNow(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.file)).digest('hex');
    } catch {
      return undefined;
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
  }
}
