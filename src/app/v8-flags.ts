/**
 * V8 settings the data path measured better with, set before the peer allocates anything:
 * src/main.ts imports this module first (ES modules run in import order).
 *
 * `--no-concurrent-array-buffer-sweeping`. Every socket read is a fresh 64 KiB ArrayBuffer, and V8
 * counts its memory as external until a sweep of dead ArrayBuffers takes it off again. Done
 * concurrently, that sweep waits for a helper thread, which on a busy core (the proxy alone on one,
 * or N workers on N cores) runs late; the dead buffers it has not yet subtracted count against the
 * old generation's limit, and under 1 MiB responses V8 ran a full mark-compact about every 100 ms
 * with under 1 MiB of new objects between two. Swept on the main thread at the end of each scavenge
 * instead: half the mark-compacts (36–49 → 20–23 per 5 s round), user CPU per 1 MiB response 630–777 →
 * 413–572 µs, 1.06–1.25× the 1 MiB req/s without it (six alternated pairs); 64-byte keep-alive and
 * `Connection: close` unchanged (docs/benchmarks.md, 4 Dec 2026).
 *
 * An operator's own choice wins: a flag named on node's command line (`process.execArgv`, which
 * node:cluster workers inherit) is left alone. NODE_OPTIONS cannot carry it (node refuses the flag there).
 */
import { setFlagsFromString } from 'node:v8';

const FLAGS = ['concurrent-array-buffer-sweeping'] as const;

const given = process.execArgv.join(' ').replaceAll('_', '-');
for (const flag of FLAGS) {
  if (!given.includes(flag)) setFlagsFromString(`--no-${flag}`);
}
