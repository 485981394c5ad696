/**
 * Test doubles for src/health: a fake clock + scheduler that runs timers in time order and lets
 * promise chains settle between them, and a scripted probe.
 */
import type { Probe, Scheduler, TimerHandle } from '../../../src/health/index.js';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeScheduler implements Scheduler {
  now = 0;
  private seq = 0;
  private timers: FakeTimer[] = [];

  readonly nowMs = (): number => this.now;

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = { id: ++this.seq, at: this.now + Math.max(0, ms), fn };
    this.timers.push(t);
    return t as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    const t = handle as unknown as FakeTimer;
    this.timers = this.timers.filter((x) => x !== t);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Runs every timer due up to now + ms, in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    await settle();
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.timers) if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      if (next === undefined) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.now = next.at;
      next.fn();
      await settle();
    }
    this.now = target;
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

export type Answer = number | 'refuse' | 'hang';

export interface ProbeCall {
  url: string;
  path: string;
  timeoutMs: number;
  signal: AbortSignal;
  at: number;
}

/** Answers per url (default 200); 'hang' never settles and ignores the signal. */
export class FakeProbe {
  readonly answers = new Map<string, Answer>();
  readonly calls: ProbeCall[] = [];
  constructor(private readonly clock: () => number) {}

  readonly probe: Probe = (url, path, timeoutMs, signal) => {
    this.calls.push({ url, path, timeoutMs, signal, at: this.clock() });
    const a = this.answers.get(url) ?? 200;
    if (a === 'hang') return new Promise(() => undefined);
    if (a === 'refuse') return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    return Promise.resolve({ status: a });
  };

  callsFor(url: string): ProbeCall[] {
    return this.calls.filter((c) => c.url === url);
  }
}

/** Deterministic random stream cycling through the given values. */
export function cycle(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}
