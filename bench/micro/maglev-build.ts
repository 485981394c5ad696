/**
 * Micro-benchmark of a Maglev table build (issue 14): CPU time of a full build of the default
 * 65,537-slot table at 10, 100 and 1,000 upstreams (weights 1–3), and of the update a routing refresh
 * makes when one upstream joins, leaves or changes weight — built from the balancer it replaces, so the
 * upstreams' permutations come from it and only the fill runs.
 *
 * Invariant: inputs are fixed, so runs differ only by machine noise. Time is this process's CPU time
 * (process.cpuUsage), median of ROUNDS interleaved rounds (the bench machine is shared).
 * Run standalone: `node dist/bench/micro/maglev-build.js` after `npm run build`.
 */
import { pathToFileURL } from 'node:url';
import type { PickCandidate } from '../../src/balance/index.js';
import { createMaglevBalancer, type MaglevBalancer } from '../../src/balance/maglev.js';

interface Row { name: string; value: number; unit: string }

const SIZES = [10, 100, 1000];
const ROUNDS = 7;

function candidates(n: number): PickCandidate[] {
  return Array.from({ length: n }, (_, i) => ({ id: `upstream-${i}`, weight: 1 + (i % 3) }));
}

/** CPU time of this process in ms (user + system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Case { label: string; from: PickCandidate[]; to: PickCandidate[] }

function cases(n: number): Case[] {
  const all = candidates(n);
  const joined = [...all, { id: `upstream-${n}`, weight: 2 }];
  const reweighted = all.map((c, i) => (i === n >> 1 ? { ...c, weight: c.weight + 1 } : c));
  return [
    { label: 'full build', from: [], to: all },
    { label: 'one joins', from: all, to: joined },
    { label: 'one leaves', from: all, to: all.filter((_, i) => i !== n >> 1) },
    { label: 'one changes weight', from: all, to: reweighted },
  ];
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of SIZES) {
    const cs = cases(n).map((c) => ({ c, prev: c.from.length > 0 ? createMaglevBalancer({ candidates: c.from }) : undefined, times: [] as number[] }));
    let sink = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const x of cs) {
        const t = cpuMs();
        const b: MaglevBalancer = createMaglevBalancer({ candidates: x.c.to }, {}, x.prev);
        x.times.push(cpuMs() - t);
        sink += b.tableSize;
      }
    }
    if (sink < 0) console.log(sink);
    for (const x of cs) {
      x.times.sort((a, b) => a - b);
      rows.push({ name: `maglev ${x.c.label} n=${n} (65537 slots, median of ${ROUNDS})`, value: Math.round(x.times[ROUNDS >> 1]! * 100) / 100, unit: 'ms CPU' });
    }
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await run()) console.log(`${r.name.padEnd(64)} ${String(r.value).padStart(10)} ${r.unit}`);
}
