// CPU pinning for the throughput bench. On a 2-core machine, three busy processes (load generator,
// backend, proxy) otherwise share both cores at the scheduler's whim, and the same build's CPU per
// request moved 77–186 µs between back-to-back runs. Pinned, the proxy under test owns one core and
// the load generator and backend share the other — "one proxy process on one core", the way proxy
// benchmarks are usually run — for every target alike. BENCH_PIN=0 turns it off.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

export interface CpuPlan {
  /** Core for the process under test (the proxy; the backend for `direct`). */
  readonly target: number;
  /** Core shared by the load generator and, for proxy targets, the backend. */
  readonly harness: number;
}

/** The pinning plan for this run, or undefined when pinning is off or impossible here. */
export function cpuPlan(): CpuPlan | undefined {
  if (process.env.BENCH_PIN === '0' || process.platform !== 'linux' || cpus().length < 2) return undefined;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  } catch {
    return undefined; // no taskset (util-linux) on this machine
  }
  return { target: 1, harness: 0 };
}

/** Sets the CPU affinity of every thread of `pid` (libuv's pool included). */
export function pin(pid: number | undefined, cpu: number): void {
  if (pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}
