/**
 * Sticky load for the Redis failover tests: `workers` loops send GET /echo with each session's cookie,
 * alternating between meshgate peers, and record every answer: HTTP status, latency, the fence the
 * upstream received (x-meshgate-fence) and which backend answered. Requests are bounded (a per-request
 * abort after `requestTimeoutMs`), so a hang shows up as a failure sample, never as a stuck test.
 */
import { performance } from 'node:perf_hooks';

export interface LoadSample {
  /** ms since the load started, when the request was sent. */
  readonly at: number;
  readonly session: number;
  readonly peer: number;
  /** 0 = network error or timeout. */
  readonly status: number;
  readonly ms: number;
  readonly fence: number;
  readonly backend: string;
}

export interface StickyLoad {
  /** ms since the load started. */
  now(): number;
  readonly samples: LoadSample[];
  stop(): Promise<LoadSample[]>;
}

/** Create `n` sessions: one request each without a cookie, alternating peers; returns the cookies. */
export async function createSessions(peers: readonly string[], n: number, path = '/echo'): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${peers[i % peers.length]}${path}`);
    await r.arrayBuffer();
    const sc = r.headers.get('set-cookie');
    if (r.status !== 200 || !sc) throw new Error(`session ${i}: status ${r.status}, set-cookie ${sc}`);
    cookies.push(sc.split(';')[0]!);
  }
  return cookies;
}

export function startStickyLoad(peers: readonly string[], cookies: readonly string[], opts: { workers?: number; requestTimeoutMs?: number } = {}): StickyLoad {
  const t0 = performance.now();
  const samples: LoadSample[] = [];
  let running = true;
  const workers = opts.workers ?? 6;
  const loops = Array.from({ length: workers }, async (_, w) => {
    let i = w;
    while (running) {
      const session = i % cookies.length;
      const peer = (i + Math.floor(i / cookies.length)) % peers.length;
      i += workers;
      const at = performance.now() - t0;
      let status = 0;
      let fence = -1;
      let backend = '';
      try {
        const r = await fetch(`${peers[peer]}/echo`, { headers: { cookie: cookies[session]! }, signal: AbortSignal.timeout(opts.requestTimeoutMs ?? 5000) });
        status = r.status;
        const body = (await r.json().catch(() => ({}))) as { backend?: string; headers?: Record<string, string> };
        backend = body.backend ?? '';
        fence = Number(body.headers?.['x-meshgate-fence'] ?? -1);
      } catch {
        status = 0;
      }
      samples.push({ at, session, peer, status, ms: performance.now() - t0 - at, fence, backend });
    }
  });
  return {
    now: () => performance.now() - t0,
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

/**
 * Fence check across an event at `eventAt` (ms on the load's clock): for each session, every non-zero
 * fence sent after the event is ≥ the highest fence sent before it. Fence 0 means "routed without a
 * lease" (degraded mode) and carries no order. Returns the violations.
 */
export function fenceRegressions(samples: readonly LoadSample[], eventAt: number): Array<{ session: number; before: number; after: number }> {
  const maxBefore = new Map<number, number>();
  for (const s of samples) if (s.at + s.ms < eventAt && s.fence > 0) maxBefore.set(s.session, Math.max(maxBefore.get(s.session) ?? 0, s.fence));
  const out: Array<{ session: number; before: number; after: number }> = [];
  for (const s of samples) {
    if (s.at <= eventAt || s.fence <= 0) continue;
    const b = maxBefore.get(s.session);
    if (b !== undefined && s.fence < b) out.push({ session: s.session, before: b, after: s.fence });
  }
  return out;
}

/** `fn` over `items` with at most `limit` in flight, results in order (agreement checks, not load). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
