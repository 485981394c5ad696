/**
 * The external clients of the conformance suite, spawned as real processes: curl with its defaults,
 * Python's http.client (an inline script) and nghttp (HTTP/2). Each run is bounded in time.
 */
import { spawn } from 'node:child_process';

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `curl -sS <args>` (its defaults otherwise: Expect: 100-continue over 1 MiB, keep-alive, …). */
export function curl(args: readonly string[], timeoutMs = 20_000): Promise<Run> {
  return run('curl', ['-sS', ...args], timeoutMs);
}

/** `python3 -c <script> <args>`. */
export function python(script: string, args: readonly string[], timeoutMs = 20_000): Promise<Run> {
  return run('python3', ['-c', script, ...args], timeoutMs);
}

/** `nghttp <args>` (nghttp2's client, Debian nghttp2-client): the response body on stdout. */
export function nghttp(args: readonly string[], timeoutMs = 20_000): Promise<Run> {
  return run('nghttp', args, timeoutMs);
}
