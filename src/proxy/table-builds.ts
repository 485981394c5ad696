/**
 * Where the routing refresh gets a big ring-hash or Maglev table built (issue 14: a build that would
 * block the event loop for more than a few ms is done off it): one builder thread, started on the
 * first job and unref'd (it never keeps a process alive), jobs answered in order. `close()` ends it.
 *
 * Run from TypeScript sources (a unit test: there is no compiled thread script), or after the thread
 * failed, jobs are built in this thread: slower for the event loop, never a different table.
 */
import { Worker } from 'node:worker_threads';
import { buildTable, type TableJob, type TableResult } from '../balance/table-build.js';

export interface TableBuilder {
  build(job: TableJob): Promise<TableResult>;
  close(): Promise<void>;
}

const THREAD_SCRIPT = new URL('./table-thread.js', import.meta.url);

export class ThreadTableBuilder implements TableBuilder {
  private worker: Worker | undefined;
  private broken = false;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: TableResult) => void; reject: (e: Error) => void; job: TableJob }>();

  build(job: TableJob): Promise<TableResult> {
    const w = this.thread();
    if (w === undefined) return new Promise((resolve) => resolve(buildTable(job)));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, job });
      w.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.broken = true;
    this.failAll();
    await w?.terminate();
  }

  private thread(): Worker | undefined {
    if (this.worker || this.broken) return this.worker;
    if (import.meta.url.endsWith('.ts')) {
      this.broken = true;
      return undefined;
    }
    const w = new Worker(THREAD_SCRIPT);
    w.unref();
    w.on('message', (m: { id: number; result?: TableResult; error?: string }) => {
      const entry = this.waiting.get(m.id);
      if (!entry) return;
      this.waiting.delete(m.id);
      if (m.result) entry.resolve(m.result);
      else entry.reject(new Error(m.error ?? 'table build failed'));
    });
    // The thread died (out of memory, a bug): every job it held is built here, and later ones too.
    const fail = (): void => {
      this.broken = true;
      this.worker = undefined;
      this.failAll();
    };
    w.on('error', fail);
    w.on('exit', fail);
    this.worker = w;
    return w;
  }

  private failAll(): void {
    const jobs = [...this.waiting.values()];
    this.waiting.clear();
    for (const j of jobs) {
      try {
        j.resolve(buildTable(j.job));
      } catch (err) {
        j.reject(err as Error);
      }
    }
  }
}
