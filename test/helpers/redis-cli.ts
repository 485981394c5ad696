/**
 * `redis-cli` as the tests' own Redis client (a client we did not write, as opposed to ioredis inside
 * meshgate). Every call is bounded in time; a non-zero exit throws with redis-cli's output.
 */
import { execFile } from 'node:child_process';
import { REDIS_CLI } from './redis-server.js';

export async function cli(port: number, args: readonly string[], opts: { password?: string; timeoutMs?: number } = {}): Promise<string> {
  const auth = opts.password !== undefined ? ['-a', opts.password, '--no-auth-warning'] : [];
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** `INFO section` as key → value. */
export async function info(port: number, section: string, opts: { password?: string } = {}): Promise<Map<string, string>> {
  const out = await cli(port, ['INFO', section], opts);
  const m = new Map<string, string>();
  for (const line of out.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/**
 * Poll `cond` every `intervalMs` until true; throw with `describe()` after `timeoutMs` (a hang guard).
 * The Redis helpers poll through redis-cli child processes, so they poll slower than waitFor's 25 ms:
 * spawning dozens of processes a second would stall the test's own event loop, which also measures
 * request latency under load.
 */
export async function poll(cond: () => Promise<boolean>, timeoutMs: number, describe: () => string, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
