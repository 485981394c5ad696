/**
 * ConfigWatcher on a real directory (inotify through node:fs.watch): a change of a watched file is
 * seen whatever else happens in its directory, a neighbour's writes never trigger or postpone a
 * check, and a replace by rename (GNU `sed -i`; Kubernetes' `..data` swap, done with ln and mv) is seen
 * like an in-place write.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigWatcher, DEBOUNCE_MS } from '../../../src/config/watch.js';

let dir: string;
let watcher: ConfigWatcher | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mg-watch-'));
});

afterEach(() => {
  watcher?.stop();
  watcher = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Counts onChange calls; next(ms) resolves at the next one, or rejects after `ms`. */
function changes(): { count: () => number; next: (ms: number) => Promise<number>; onChange: () => void } {
  let count = 0;
  let waiting: ((t: number) => void) | undefined;
  return {
    count: () => count,
    onChange: () => {
      count++;
      waiting?.(performance.now());
      waiting = undefined;
    },
    next: (ms) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no change seen within ${ms} ms`)), ms);
      waiting = (at) => {
        clearTimeout(t);
        resolve(at);
      };
    }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConfigWatcher', () => {
  it('sees a config change while an access log beside it is written every 5 ms', async () => {
    const config = join(dir, 'meshgate.yaml');
    const log = join(dir, 'access.log');
    writeFileSync(config, 'a: 1\n');
    writeFileSync(log, '');
    const c = changes();
    watcher = new ConfigWatcher(config, c.onChange);
    watcher.start();
    let writing = true;
    const writer = (async () => {
      while (writing) {
        appendFileSync(log, '{"status":200}\n');
        await sleep(5);
      }
    })();
    try {
      await sleep(200);
      expect(c.count(), 'the neighbour alone triggered a check').toBe(0);
      writeFileSync(config, 'a: 2\n');
      await c.next(2_000);
      // Seen while the log is still being written (the old debounce waited for it to go quiet).
      expect(writing).toBe(true);
    } finally {
      writing = false;
      await writer;
    }
    expect(c.count()).toBe(1);
  });

  it('sees an edit by GNU `sed -i` (a temporary file renamed over it), and not a rewrite with the same content', async () => {
    const config = join(dir, 'meshgate.yaml');
    writeFileSync(config, 'a: 1\n');
    const c = changes();
    watcher = new ConfigWatcher(config, c.onChange);
    watcher.start();
    const seen = c.next(2_000);
    execFileSync('sed', ['-i', 's/a: 1/a: 2/', config]);
    await seen;
    writeFileSync(config, 'a: 2\n');
    await sleep(DEBOUNCE_MS * 4);
    expect(c.count()).toBe(1);
  });

  it("sees Kubernetes' atomic writer swap its ..data symlink", async () => {
    mkdirSync(join(dir, '..2026_a'));
    writeFileSync(join(dir, '..2026_a', 'meshgate.yaml'), 'a: 1\n');
    symlinkSync('..2026_a', join(dir, '..data'));
    symlinkSync(join('..data', 'meshgate.yaml'), join(dir, 'meshgate.yaml'));
    const c = changes();
    watcher = new ConfigWatcher(join(dir, 'meshgate.yaml'), c.onChange);
    watcher.start();
    mkdirSync(join(dir, '..2026_b'));
    writeFileSync(join(dir, '..2026_b', 'meshgate.yaml'), 'a: 2\n');
    const seen = c.next(2_000);
    // As the atomic writer does it, with coreutils: a new link beside, renamed over ..data.
    execFileSync('ln', ['-s', '..2026_b', join(dir, '..data_tmp')]);
    execFileSync('mv', ['-T', join(dir, '..data_tmp'), join(dir, '..data')]);
    await seen;
    expect(c.count()).toBe(1);
  });
});
