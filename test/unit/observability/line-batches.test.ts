import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { BATCH_BYTES, LineBatches } from '../../../src/observability/line-batches.js';

const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'line-batches-'));
  dirs.push(d);
  return d;
}

/** Lines of varied length and content: ASCII, multi-byte UTF-8, and one longer than a batch. */
function lines(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = i % 97 === 5 ? `é€😀 ${'ü'.repeat(i % 300)}` : 'x'.repeat((i * 37) % 900);
    out.push(`{"n":${i},"v":"${body}"}\n`);
  }
  out.splice(count >> 1, 0, `{"huge":"${'h'.repeat(BATCH_BYTES)}"}\n`);
  return out;
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

describe('access-log line batches', () => {
  it('writes every line to a file, whole and in order, once flushed', async () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'a');
    fds.push(fd);
    const errors: string[] = [];
    const b = new LineBatches(fd, 1000, (e) => errors.push(e));
    const all = lines(3000);
    for (const l of all) b.push(l);
    await b.flush();
    const got = readFileSync(file);
    const want = Buffer.from(all.join(''), 'utf8');
    expect(got.length).toBe(want.length);
    expect(sha(got)).toBe(sha(want));
    expect(errors).toEqual([]);
  });

  it('a line waits at most maxDelay when no more come', async () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'a');
    fds.push(fd);
    const b = new LineBatches(fd, 50, () => undefined);
    b.push('one\n');
    expect(readFileSync(file, 'utf8')).toBe('');
    const t0 = Date.now();
    while (readFileSync(file, 'utf8') === '' && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(file, 'utf8')).toBe('one\n');
  });

  it('flushSync writes what is still open (an exit that cannot wait)', () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'a');
    fds.push(fd);
    const b = new LineBatches(fd, 1000, () => undefined);
    b.push('a\n');
    b.push('b\n');
    b.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
  });

  it.each(['file', 'shared-stream', 'non-blocking-pipe'] as const)('a non-blocking pipe with a slow reader (EAGAIN, partial writes) still gets every byte in order (%s mode)', async (mode) => {
    const fifo = join(tempDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    // O_RDWR opens a FIFO without waiting for a reader; O_NONBLOCK makes a full pipe answer EAGAIN.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    fds.push(fd);
    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo, { highWaterMark: 4096 });
    let received = 0;
    reader.on('data', (c) => {
      chunks.push(c as Buffer);
      received += c.length;
      reader.pause();
      setTimeout(() => reader.resume(), 1);
    });
    const errors: unknown[] = [];
    const b = new LineBatches(fd, 1000, (e) => errors.push(e), undefined, mode);
    const all = lines(2000);
    const want = Buffer.from(all.join(''), 'utf8');
    for (const l of all) b.push(l);
    await b.flush();
    const t0 = Date.now();
    while (received < want.length && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    reader.destroy();
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(want.length);
    expect(sha(got)).toBe(sha(want));
    expect(errors).toEqual([]);
  });

  it('a write error is reported once per error code, drops that batch, and the log goes on', async () => {
    const file = join(tempDir(), 'read-only.log');
    writeFileSync(file, '');
    const fd = openSync(file, 'r');
    fds.push(fd);
    const problems: string[] = [];
    const b = new LineBatches(fd, 1000, (p) => problems.push(p));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 500; i++) b.push(`${'y'.repeat(400)}\n`);
      await b.flush();
    }
    expect(problems).toEqual(['writing failed (EBADF); the lines of that batch are lost']);
    b.push('still taking lines\n');
    b.flushSync();
    expect(problems).toHaveLength(1);
  });

  it('behind a reader that stalls, memory stays bounded: lines past the bound are dropped, counted and reported', async () => {
    const fifo = join(tempDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    fds.push(fd);
    const problems: string[] = [];
    const bound = 1024 * 1024;
    const b = new LineBatches(fd, 1000, (p) => problems.push(p), bound);
    const line = `${'z'.repeat(499)}\n`;
    const total = 20_000; // 10 MB, ten times the bound; nobody reads yet
    for (let i = 0; i < total; i++) b.push(line);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^the target is not keeping up \(1 MiB wait to be written\): new lines are dropped until it catches up$/);
    // The reader arrives: everything kept is written, then the episode's count is reported.
    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo);
    reader.on('data', (c) => chunks.push(c as Buffer));
    await b.flush();
    await waitUntil(() => problems.length === 2);
    const dropped = Number(/^(\d+) lines were dropped while the target did not keep up$/.exec(problems[1]!)?.[1]);
    const kept = total - dropped;
    await waitUntil(() => Buffer.concat(chunks).length === kept * line.length);
    reader.destroy();
    expect(dropped).toBeGreaterThan(total / 2);
    expect(Buffer.concat(chunks).toString()).toBe(line.repeat(kept));
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 10_000) throw new Error('condition not met in 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}
