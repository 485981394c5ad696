/**
 * Starts real meshgate peer processes (`node dist/src/main.js --config <file>`) for integration tests
 * and guarantees none outlives the test run (SIGKILL on exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export { freePort } from './redis-server.js';

export interface PeerProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  readonly configFile: string;
  readonly dir: string;
  output(): string;
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempDir(prefix = 'meshgate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `yaml` to a temp config file and starts a peer with it; waits for admin /healthz. */
export async function startPeer(yaml: string, opts: { dir?: string; env?: Record<string, string>; adminPort: number; dataPort: number; waitReady?: boolean }): Promise<PeerProcess> {
  const dir = opts.dir ?? tempDir();
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, yaml);
  const proc = spawn(process.execPath, [MAIN, '--config', configFile], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  proc.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  const peer: PeerProcess = {
    proc,
    url: `http://127.0.0.1:${opts.dataPort}`,
    adminUrl: `http://127.0.0.1:${opts.adminPort}`,
    configFile,
    dir,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  if (opts.waitReady !== false) {
    try {
      await waitFor(async () => (await fetch(`${peer.adminUrl}/healthz`).then((r) => r.ok, () => false)), 15_000, () => `peer did not become ready:\n${out}`, exited);
    } catch (err) {
      // Nobody gets a handle on a peer that failed to start: stop it here, or it outlives the test
      // (vitest ends its forks with a signal, so the exit hook above does not run).
      proc.kill('SIGKILL');
      throw err;
    }
  }
  return peer;
}

/** Polls `cond` until true; throws with `describe()` after `timeoutMs` (a hang guard, not a timing assertion). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string = () => 'condition not met', abortOn?: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void abortOn?.then(() => (ended = true));
  for (;;) {
    if (await cond()) return;
    if (ended) throw new Error(`process exited: ${describe()}`);
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((r) => setTimeout(r, 25));
  }
}
