/**
 * Micro-benchmark of the balancers' hot path and rebuild cost: picks per second for every balancer at
 * 10, 100 and 1,000 upstreams (hash balancers with a fresh-looking key per pick, bounded loads with a
 * live load view, least-request with in-flight counts), and the time to build a ring / Maglev table
 * for 1,000 weighted upstreams (what the proxy pays, off the hot path, on every membership change).
 *
 * Invariant: inputs are seeded, so runs differ only by machine noise. Time is this process's CPU time
 * (process.cpuUsage), not wall time, and each figure is the best of several interleaved rounds: the
 * bench machine is shared, and wall time under contention measured the other processes too.
 * Run standalone: `node dist/bench/micro/balance-pick.js` after `npm run build`.
 */
import { pathToFileURL } from 'node:url';
import { createBalancer, type Balancer, type BalancerName, type BalancerOptions, type PickContext, type UpstreamLoad } from '../../src/balance/index.js';
import { createSeededRandom } from '../../src/lib/rng.js';

interface Row { name: string; value: number; unit: string }

const SIZES = [10, 100, 1000];
const ROUNDS = 5;
const ROUND_MS = 150;

interface Case { label: string; name: BalancerName; opts: BalancerOptions; keyed: boolean; withLoad: boolean }
const CASES: Case[] = [
  { label: 'ring-hash', name: 'ring-hash', opts: {}, keyed: true, withLoad: false },
  { label: 'ring-hash +boundedLoad 1.25', name: 'ring-hash', opts: { boundedLoad: 1.25 }, keyed: true, withLoad: true },
  { label: 'maglev', name: 'maglev', opts: {}, keyed: true, withLoad: false },
  { label: 'maglev +boundedLoad 1.25', name: 'maglev', opts: { boundedLoad: 1.25 }, keyed: true, withLoad: true },
  { label: 'least-request', name: 'least-request', opts: {}, keyed: false, withLoad: true },
  { label: 'least-request weighted', name: 'least-request', opts: {}, keyed: false, withLoad: true },
  { label: 'least-request peakEwma', name: 'least-request', opts: { peakEwma: true }, keyed: false, withLoad: true },
  { label: 'round-robin', name: 'round-robin', opts: {}, keyed: false, withLoad: false },
  { label: 'random', name: 'random', opts: {}, keyed: false, withLoad: false },
];

function candidates(n: number, weighted: boolean) {
  return Array.from({ length: n }, (_, i) => ({ id: `upstream-${i}`, weight: weighted ? 1 + (i % 3) : 1 }));
}

/** CPU time of this process in ms (user + system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** A pick loop over pre-built contexts; returns picks per CPU second for one round. */
function measure(b: Balancer, ctxs: readonly PickContext[], ms: number): number {
  let n = 0;
  let sink = 0;
  const start = cpuMs();
  let elapsed = 0;
  do {
    for (const ctx of ctxs) if (b.pick(ctx) !== undefined) sink++;
    n += ctxs.length;
    elapsed = cpuMs() - start;
  } while (elapsed < ms);
  if (sink < 0) console.log(sink);
  return n / (elapsed / 1000);
}

function contexts(c: Case, n: number): PickContext[] {
  const random = createSeededRandom(1);
  // Realistic load view: a Map lookup per upstream, ~2 in flight each.
  const inFlight = new Map<string, UpstreamLoad>();
  for (let i = 0; i < n; i++) inFlight.set(`upstream-${i}`, { inFlight: Math.floor(random() * 4), latencyEwmaMs: 5 + random() * 20 });
  const load = (id: string) => inFlight.get(id);
  const total = [...inFlight.values()].reduce((a, l) => a + l.inFlight, 0);
  return Array.from({ length: 1024 }, (_, i) => ({
    ...(c.keyed ? { hashKey: `user-${(i * 2654435761) >>> 0}` } : {}),
    ...(c.withLoad ? { load, totalInFlight: total } : {}),
    random,
  }));
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of SIZES) {
    const built = CASES.map((c) => ({ c, b: createBalancer(c.name, { candidates: candidates(n, c.label.includes('weighted')) }, c.opts), ctxs: contexts(c, n) }));
    const best = new Array<number>(built.length).fill(0);
    for (let r = 0; r < ROUNDS; r++) {
      built.forEach((x, i) => { best[i] = Math.max(best[i]!, measure(x.b, x.ctxs, ROUND_MS)); });
    }
    built.forEach((x, i) => rows.push({ name: `pick ${x.c.label} n=${n}`, value: Math.round(best[i]! / 1000), unit: 'kpicks/CPU-s' }));
  }
  const weighted = candidates(1000, true); // weights 1–3, Σ = 1999
  for (const name of ['ring-hash', 'maglev'] as const) {
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = cpuMs();
      createBalancer(name, { candidates: weighted }, {});
      times.push(cpuMs() - t);
    }
    times.sort((a, b) => a - b);
    rows.push({ name: `rebuild ${name} 1000 upstreams weights 1-3 (median of 5)`, value: Math.round(times[2]! * 10) / 10, unit: 'ms CPU' });
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await run()) console.log(`${r.name.padEnd(64)} ${String(r.value).padStart(10)} ${r.unit}`);
}
