/**
 * The expensive part of a ring-hash or Maglev balancer — its ring or lookup table — as a job that can
 * run away from the event loop (a builder thread, proxy/table-builds.ts), and the cheap part that
 * wraps a finished table into the balancer on the loop. Pure: the same job gives the same table
 * wherever it runs, and the balancer made from it is the one a direct build makes (the tables are in
 * shared memory, so they cross to the thread and back without a copy).
 *
 * Why: at 1,000 upstreams a ring of ~2 M points takes 120–180 ms to build and 25–55 ms to derive —
 * long enough to stall every request a peer is serving (issue 14); a Maglev table takes ~3 ms, more
 * with a larger tableSize (its cost is linear in the slots).
 */
import type { Balancer, BalancerOptions, PickCandidate } from './balancer.js';
import { DEFAULT_MAGLEV_TABLE_SIZE, MaglevBalancer, type MaglevParts } from './maglev.js';
import type { MaglevPermutations } from './maglev-table.js';
import { DEFAULT_VNODES_PER_WEIGHT, RingHashBalancer, type RingParts, type RingSource } from './ring-hash.js';

export type TableKind = 'ring-hash' | 'maglev';

export interface TableJob {
  readonly kind: TableKind;
  readonly candidates: readonly PickCandidate[];
  readonly opts: BalancerOptions;
  /** ring-hash: the ring this one replaces, so only the changed upstreams' points are made. */
  readonly previous?: RingSource;
  /** maglev: the permutations of the table this one replaces, so only new upstreams are hashed. */
  readonly permutations?: MaglevPermutations;
}

export type TableResult = { readonly kind: 'ring-hash'; readonly ring: RingParts } | { readonly kind: 'maglev'; readonly parts: MaglevParts };

/** Runs the job (in the builder thread). */
export function buildTable(job: TableJob): TableResult {
  if (job.kind === 'maglev') return { kind: 'maglev', parts: new MaglevBalancer({ candidates: job.candidates }, job.opts, job.permutations).parts };
  return { kind: 'ring-hash', ring: new RingHashBalancer({ candidates: job.candidates }, job.opts, job.previous).ringParts };
}

/** The job of a balancer for (kind, candidates, opts) replacing `previous`. */
export function tableJob(kind: TableKind, candidates: readonly PickCandidate[], opts: BalancerOptions, previous: Balancer | undefined): TableJob {
  if (kind === 'ring-hash' && previous instanceof RingHashBalancer) return { kind, candidates, opts, previous: previous.source };
  const permutations = kind === 'maglev' && previous instanceof MaglevBalancer ? previous.permutations : undefined;
  return permutations === undefined ? { kind, candidates, opts } : { kind, candidates, opts, permutations };
}

/** The balancer of a finished job (on the event loop: O(upstreams)). */
export function balancerFromTable(job: TableJob, result: TableResult): Balancer {
  if (result.kind === 'maglev') return new MaglevBalancer({ candidates: job.candidates }, job.opts, undefined, result.parts);
  return new RingHashBalancer({ candidates: job.candidates }, job.opts, undefined, result.ring);
}

/**
 * About how many table entries a direct build writes — the unit its time scales with: a ring's points;
 * a Maglev table's slots, weighted by the upstream count (bench/micro/maglev-build.ts, 2 Dec 2026:
 * 65,537 slots take ~2 ms with 10 upstreams and ~3 ms with 100–1,000; 7 / 11 / 11 ms before the fill
 * went to integer arithmetic).
 */
export function tableCost(kind: TableKind, candidates: readonly PickCandidate[], opts: BalancerOptions): number {
  if (kind === 'maglev') return (opts.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE) * (1 + candidates.length / 50);
  const perWeight = opts.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT;
  let total = 0;
  for (const c of candidates) total += Math.max(1, Math.round(perWeight * c.weight));
  return Math.max(total, opts.minRingSize ?? 0);
}
