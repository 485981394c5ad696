// Child-process ownership for the bench harness. Targets, backends and the load generator each run
// in their own process so none shares an event loop with the process it measures.
// Invariants:
// - every child is registered here and killed by `killAll()`, which run.ts calls on normal exit,
//   on 'exit' (synchronously, SIGKILL) and on SIGINT/SIGTERM;
// - our own child scripts also exit when their stdin closes (see `exitWhenParentGone`), so even a
//   SIGKILLed harness leaves nothing behind: the kernel closes the pipe when the parent dies;
// - a child's stdout/stderr are always drained (or sent to a file), so a chatty child never blocks
//   on a full pipe and skews the figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Grace given to a child after SIGTERM before SIGKILL: long enough for a drain, short for a bench. */
const STOP_GRACE_MS = 3_000;
/** Kept stderr/stdout tail per child, for error messages. */
const TAIL_CHARS = 4_000;

export interface ChildHandle {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the first stdout line that parses as JSON (our scripts print `{"port":…}`). */
  firstJsonLine<T>(timeoutMs: number): Promise<T>;
  /** Resolves with the last JSON line on stdout once the child exits with code 0. */
  result<T>(): Promise<T>;
  /** Output tail (stderr, or the log file) for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

export class ProcessGroup {
  private readonly children = new Set<ChildProcess>();

  /** Starts `node <script> <json(args)>`; stdout is parsed line by line, stderr kept as a tail. */
  spawnNode(name: string, script: string, args: unknown, opts: { nodeArgs?: string[] } = {}): ChildHandle {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, JSON.stringify(args)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return this.track(name, child, undefined);
  }

  /** Starts any program (wrk, …); stdout is parsed line by line like spawnNode's. */
  spawnProgram(name: string, argv: string[]): ChildHandle {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    return this.track(name, child, undefined);
  }

  /** Starts a program whose stdout+stderr go to `logFile` (meshgate: its access log may be large). */
  spawnToFile(name: string, argv: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildHandle {
    const fd = openSync(logFile, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', fd, fd], env: env ?? process.env });
    closeSync(fd);
    return this.track(name, child, logFile);
  }

  private track(name: string, child: ChildProcess, logFile: string | undefined): ChildHandle {
    this.children.add(child);
    let stdoutTail = '';
    let stderrTail = '';
    let lineBuf = '';
    const jsonLines: unknown[] = [];
    const waiters: Array<() => void> = [];
    // undefined while running; the exit code (-1 for a signal or spawn error) once it has exited.
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => {
      const onGone = (code: number | null): void => {
        if (exitCode !== undefined) return;
        exitCode = code;
        this.children.delete(child);
        resolve(code);
        for (const w of waiters.splice(0)) w();
      };
      // 'close', not 'exit': it fires after stdout is drained, so the result line is never lost.
      child.once('close', (code, signal) => onGone(code ?? (signal ? -1 : null)));
      child.once('error', (err) => {
        stderrTail += `\nspawn error: ${err.message}`;
        onGone(-1);
      });
    });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdoutTail = (stdoutTail + chunk).slice(-TAIL_CHARS);
      lineBuf += chunk;
      let nl: number;
      while ((nl = lineBuf.indexOf('\n')) >= 0) {
        const line = lineBuf.slice(0, nl).trim();
        lineBuf = lineBuf.slice(nl + 1);
        if (line.startsWith('{')) {
          try {
            jsonLines.push(JSON.parse(line));
            for (const w of waiters.splice(0)) w();
          } catch {
            /* not one of our protocol lines */
          }
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-TAIL_CHARS);
    });
    // Our scripts watch stdin (exitWhenParentGone); meshgate ignores it. Never write to it.
    child.stdin?.on('error', () => {});

    const tail = (): string => {
      if (logFile) {
        try {
          return readFileSync(logFile, 'utf8').slice(-TAIL_CHARS);
        } catch {
          return '';
        }
      }
      return (stderrTail || stdoutTail).trim();
    };

    return {
      name,
      child,
      tail,
      firstJsonLine: <T>(timeoutMs: number) =>
        new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${name}: no ready line within ${timeoutMs} ms; ${tail()}`)), timeoutMs);
          const check = (): void => {
            if (jsonLines.length > 0) {
              clearTimeout(timer);
              resolve(jsonLines[0] as T);
            } else if (exitCode !== undefined) {
              clearTimeout(timer);
              reject(new Error(`${name} exited (${exitCode}) before ready: ${tail()}`));
            } else {
              waiters.push(check);
            }
          };
          check();
        }),
      result: async <T>() => {
        const code = await exited;
        if (code !== 0) throw new Error(`${name} exited with ${code}: ${tail()}`);
        const last = jsonLines[jsonLines.length - 1];
        if (last === undefined) throw new Error(`${name} printed no result: ${tail()}`);
        return last as T;
      },
      stop: async () => {
        if (exitCode !== undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      },
    };
  }

  /** SIGTERM everything, then SIGKILL what is left after the grace time. */
  async stopAll(): Promise<void> {
    const all = [...this.children];
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }

  /** Synchronous last resort for process 'exit': SIGKILL every child still running. */
  killAllSync(): void {
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.children.clear();
  }
}

/** In a child script: exit when the parent's stdin pipe closes (the parent died or let go of us). */
export function exitWhenParentGone(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

/**
 * A port free right now on 127.0.0.1 (bind to 0, read, close). Racy by nature; used only where the
 * program under test needs its port in a config file (meshgate). Our own scripts bind to 0.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One GET; resolves with status and body length, rejects on transport error or after timeoutMs.
 * An https URL is fetched without verifying the certificate: the TLS bench's are self-signed.
 */
export function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; bytes: number; headers: Record<string, string | string[] | undefined> }> {
  const get = url.startsWith('https:') ? httpsRequest : request;
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `url` until it answers 200 (bounded: `timeoutMs`), or the child exits. Used for meshgate's
 * admin /healthz readiness.
 */
export async function waitForHttp200(url: string, timeoutMs: number, handle?: ChildHandle): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (handle && (handle.child.exitCode !== null || handle.child.signalCode !== null)) {
      throw new Error(`${handle.name} exited (${handle.child.exitCode ?? handle.child.signalCode}) before ready: ${handle.tail()}`);
    }
    try {
      const r = await httpGet(url, 1_000);
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (last: ${last})${handle ? `; ${handle.tail()}` : ''}`);
}
