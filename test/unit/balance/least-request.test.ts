/**
 * least-request: conformance, the scoring rules (P2C, Envoy active_request_bias, peak-EWMA), slow
 * start, and a discrete-event simulation showing the behaviour users rely on: an upstream 10× slower
 * than its peers gets clearly fewer requests, and a fast-failing one does not attract traffic when the
 * proxy feeds failures in as penalty latencies (peak-ewma.ts). The lead's integration test repeats
 * the slow-upstream case through the real proxy.
 */
import { describe, expect, it } from 'vitest';
import {
  LeastRequestBalancer,
  RoundRobinBalancer,
  failureSampleMs,
  peakEwmaAt,
  updatePeakEwma,
  type Balancer,
  type PeakEwmaState,
  type UpstreamLoad,
} from '../../../src/balance/index.js';
import { createSeededRandom } from '../../../src/lib/rng.js';
import { runConformance } from './conformance.js';

runConformance({ name: 'least-request', keyed: false });
runConformance({ name: 'least-request', keyed: false, opts: { peakEwma: true } });

/** Fixed sequence of random numbers, to steer which two candidates are drawn. */
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};
const loads = (m: Record<string, number>, ewma: Record<string, number> = {}) => (id: string): UpstreamLoad => ({
  inFlight: m[id] ?? 0,
  latencyEwmaMs: ewma[id] ?? 0,
});

describe('least-request scoring', () => {
  it('equal weights: the less loaded of the two draws wins; equal loads keep the first draw', () => {
    const b = new LeastRequestBalancer({ candidates: [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }] });
    // u = 0.1 → a; second draw u = 0.9 over the other two → c.
    expect(b.pick({ random: seq(0.1, 0.9), load: loads({ a: 3, c: 1 }) })).toBe('c');
    expect(b.pick({ random: seq(0.1, 0.9), load: loads({ a: 1, c: 3 }) })).toBe('a');
    expect(b.pick({ random: seq(0.1, 0.9), load: loads({ a: 2, c: 2 }) })).toBe('a');
  });

  it('different weights: Envoy effective weight w / (inFlight + 1)^bias decides when loads differ', () => {
    const cands = [{ id: 'a', weight: 1 }, { id: 'b', weight: 2 }];
    const ctx = { random: seq(0.5, 0.5), load: loads({ a: 0, b: 1 }) }; // draws b, then a
    expect(new LeastRequestBalancer({ candidates: cands }).pick(ctx)).toBe('b'); // 2/2 = 1/1: tie keeps b
    expect(new LeastRequestBalancer({ candidates: cands }, { activeRequestBias: 2 }).pick({ ...ctx, random: seq(0.5, 0.5) })).toBe('a'); // 2/4 < 1/1
    expect(new LeastRequestBalancer({ candidates: cands }, { activeRequestBias: 0 }).pick({ ...ctx, random: seq(0.5, 0.5) })).toBe('b'); // bias 0: weights only
  });

  it('peak-EWMA: cost = latency × (inFlight + 1) / weight; unmeasured upstreams cost defaultRttMs', () => {
    const b = new LeastRequestBalancer({ candidates: [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }] }, { peakEwma: true, defaultRttMs: 30 });
    expect(b.pick({ random: seq(0.1, 0.5), load: loads({ a: 0, b: 3 }, { a: 200, b: 20 }) })).toBe('b'); // 200 > 80
    expect(b.pick({ random: seq(0.1, 0.5), load: loads({ a: 0, b: 1 }, { a: 50 }) })).toBe('a'); // 50 < 30 × 2
  });
});

describe('peak-EWMA state', () => {
  it('jumps to a higher sample at once and decays towards lower ones with the time constant', () => {
    let s: PeakEwmaState = updatePeakEwma(undefined, 10, 0);
    s = updatePeakEwma(s, 100, 5);
    expect(s.ewmaMs).toBe(100);
    s = updatePeakEwma(s, 10, 5 + 10_000); // one time constant later: 100·e^-1 + 10·(1 − e^-1)
    expect(s.ewmaMs).toBeCloseTo(100 * Math.exp(-1) + 10 * (1 - Math.exp(-1)), 9);
  });

  it('decays towards 0 on read while no response arrives, so a once-slow upstream is tried again', () => {
    const s = updatePeakEwma(undefined, 100, 1_000);
    expect(peakEwmaAt(s, 1_000)).toBe(100);
    expect(peakEwmaAt(s, 11_000)).toBeCloseTo(100 * Math.exp(-1), 9);
    expect(peakEwmaAt(undefined, 5)).toBe(0);
  });

  it('records a failure as at least the penalty latency', () => {
    expect(failureSampleMs(1)).toBe(5_000);
    expect(failureSampleMs(9_000)).toBe(9_000);
  });
});

interface SimOptions {
  /** ms each upstream takes (mean; actual is uniform in [0.5, 1.5] × mean). */
  latencyMs: Record<string, number>;
  /** Upstreams whose every response is a failure. */
  failing?: string[];
  /** How the proxy records a failure: with the penalty (the documented way) or raw. */
  failurePenalty?: boolean;
  meanGapMs: number;
  requests: number;
  seed: number;
}

/**
 * Open-loop discrete-event simulation: Poisson arrivals, every upstream serves requests concurrently;
 * the balancer sees live in-flight counts and peak-EWMA latencies, as the proxy will feed them.
 */
function simulate(b: Balancer, o: SimOptions): Map<string, number> {
  const rnd = createSeededRandom(o.seed);
  const pickRandom = createSeededRandom(o.seed + 1);
  const inFlight = new Map<string, number>();
  const ewma = new Map<string, PeakEwmaState>();
  const picked = new Map<string, number>();
  const pending: Array<{ at: number; id: string; started: number }> = []; // min-heap by `at`
  const push = (e: { at: number; id: string; started: number }) => {
    pending.push(e);
    for (let i = pending.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (pending[p]!.at <= pending[i]!.at) break;
      [pending[p], pending[i]] = [pending[i]!, pending[p]!];
      i = p;
    }
  };
  const pop = () => {
    const top = pending[0]!;
    const last = pending.pop()!;
    if (pending.length > 0) {
      pending[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < pending.length && pending[l]!.at < pending[m]!.at) m = l;
        if (r < pending.length && pending[r]!.at < pending[m]!.at) m = r;
        if (m === i) break;
        [pending[m], pending[i]] = [pending[i]!, pending[m]!];
        i = m;
      }
    }
    return top;
  };
  let now = 0;
  const load = (id: string): UpstreamLoad => ({ inFlight: inFlight.get(id) ?? 0, latencyEwmaMs: peakEwmaAt(ewma.get(id), now) });
  for (let r = 0; r < o.requests; r++) {
    now += -Math.log(1 - rnd()) * o.meanGapMs;
    while (pending.length > 0 && pending[0]!.at <= now) {
      const done = pop();
      inFlight.set(done.id, inFlight.get(done.id)! - 1);
      const took = done.at - done.started;
      const failed = o.failing?.includes(done.id) ?? false;
      const sample = failed && o.failurePenalty !== false ? failureSampleMs(took) : took;
      ewma.set(done.id, updatePeakEwma(ewma.get(done.id), sample, done.at));
    }
    const id = b.pick({ load, random: pickRandom, nowMs: now })!;
    picked.set(id, (picked.get(id) ?? 0) + 1);
    inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
    push({ at: now + o.latencyMs[id]! * (0.5 + rnd()), id, started: now });
  }
  return new Map([...picked].map(([id, c]) => [id, c / o.requests]));
}

describe('least-request simulation: one upstream 10× slower', () => {
  const ids = ['u1', 'u2', 'u3', 'u4', 'slow'];
  const candidates = ids.map((id) => ({ id, weight: 1 }));
  const latencyMs = { u1: 10, u2: 10, u3: 10, u4: 10, slow: 100 };
  // 0.5 requests/ms: ~1 in flight per fast upstream, ~10 on the slow one if traffic were split evenly.
  const busy = { latencyMs, meanGapMs: 2, requests: 20_000, seed: 21 };

  it('in-flight P2C sends the slow upstream well under its fair 20 % (round robin gives exactly 20 %)', () => {
    const rr = simulate(new RoundRobinBalancer({ candidates }), busy).get('slow')!;
    const lr = simulate(new LeastRequestBalancer({ candidates }), busy).get('slow')!;
    expect(rr).toBeCloseTo(0.2, 3);
    expect(lr).toBeLessThan(0.1);
  });

  it('peak-EWMA also sees the slow upstream when load is light and in-flight counts are mostly zero', () => {
    // 0.02 requests/ms: in-flight counts are almost always 0, so P2C on in-flight cannot tell.
    const light = { latencyMs, meanGapMs: 50, requests: 6_000, seed: 22 };
    const plain = simulate(new LeastRequestBalancer({ candidates }), light).get('slow')!;
    const ewma = simulate(new LeastRequestBalancer({ candidates }, { peakEwma: true }), light).get('slow')!;
    expect(ewma).toBeLessThan(0.1);
    expect(ewma).toBeLessThan(plain / 2);
  });

  it('a fast-failing upstream repels traffic when failures are recorded as penalty latency, attracts it when not', () => {
    const failing = { latencyMs: { u1: 20, u2: 20, u3: 20, u4: 20, slow: 1 }, failing: ['slow'], meanGapMs: 5, requests: 10_000, seed: 23 };
    const penalised = simulate(new LeastRequestBalancer({ candidates }, { peakEwma: true }), { ...failing, failurePenalty: true }).get('slow') ?? 0;
    const raw = simulate(new LeastRequestBalancer({ candidates }, { peakEwma: true }), { ...failing, failurePenalty: false }).get('slow') ?? 0;
    expect(penalised).toBeLessThan(0.05);
    expect(raw).toBeGreaterThan(0.2); // the linkerd2-proxy#4537 failure mode the penalty prevents
  });
});

describe('least-request slow start', () => {
  it('a new upstream starts at 10 % weight, so it is drawn about 10/110 as often at idle', () => {
    const b = new LeastRequestBalancer(
      { candidates: [{ id: 'old', weight: 1 }, { id: 'new', weight: 1, eligibleSinceMs: 1_000 }] },
      { slowStartMs: 30_000 },
    );
    const random = createSeededRandom(5);
    let fresh = 0;
    for (let i = 0; i < 40_000; i++) if (b.pick({ random, nowMs: 1_000 }) === 'new') fresh++;
    expect(fresh / 40_000).toBeCloseTo(0.1 / 1.1, 2);
  });
});
