/**
 * The expensive part of a ring-hash or Maglev balancer — its ring or lookup table — as a job that can
 * run away from the event loop (a builder thread, proxy/table-builds.ts), and the cheap part that
 * wraps a finished table into the balancer on the loop. Pure: the same job gives the same table
 * wherever it runs, and the balancer made from it is the one a direct build makes (the tables are in
 * shared memory, so they cross to the thread and back without a copy).
 *
 * Why: at 1,000 upstreams a ring of ~2 M points takes 120–180 ms to build and 25–55 ms to derive, a
 * Maglev table tens of ms — long enough to stall every request a peer is serving (issue 14).
 */
import type { Balancer, BalancerOptions, PickCandidate } from './balancer.js';
import { MaglevBalancer } from './maglev.js';
import { DEFAULT_MAGLEV_TABLE_SIZE } from './maglev.js';
import { DEFAULT_VNODES_PER_WEIGHT, RingHashBalancer, type RingParts, type RingSource } from './ring-hash.js';

export type TableKind = 'ring-hash' | 'maglev';

export interface TableJob {
  readonly kind: TableKind;
  readonly candidates: readonly PickCandidate[];
  readonly opts: BalancerOptions;
  /** ring-hash: the ring this one replaces, so only the changed upstreams' points are made. */
  readonly previous?: RingSource;
}

export type TableResult = { readonly kind: 'ring-hash'; readonly ring: RingParts } | { readonly kind: 'maglev'; readonly table: Uint32Array };

/** Runs the job (in the builder thread). */
export function buildTable(job: TableJob): TableResult {
  if (job.kind === 'maglev') return { kind: 'maglev', table: new MaglevBalancer({ candidates: job.candidates }, job.opts).tablePart };
  return { kind: 'ring-hash', ring: new RingHashBalancer({ candidates: job.candidates }, job.opts, job.previous).ringParts };
}

/** The job of a balancer for (kind, candidates, opts) replacing `previous`. */
export function tableJob(kind: TableKind, candidates: readonly PickCandidate[], opts: BalancerOptions, previous: Balancer | undefined): TableJob {
  return kind === 'ring-hash' && previous instanceof RingHashBalancer ? { kind, candidates, opts, previous: previous.source } : { kind, candidates, opts };
}

/** The balancer of a finished job (on the event loop: O(upstreams)). */
export function balancerFromTable(job: TableJob, result: TableResult): Balancer {
  if (result.kind === 'maglev') return new MaglevBalancer({ candidates: job.candidates }, job.opts, result.table);
  return new RingHashBalancer({ candidates: job.candidates }, job.opts, undefined, result.ring);
}

/**
 * About how many table entries a direct build writes — the unit its time scales with: a ring's points;
 * a Maglev table's slots, weighted by the upstream count (measured here: 65,537 slots take ~5 ms with
 * 10–100 upstreams and 30–40 ms with 1,000).
 */
export function tableCost(kind: TableKind, candidates: readonly PickCandidate[], opts: BalancerOptions): number {
  if (kind === 'maglev') return (opts.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE) * (1 + candidates.length / 50);
  const perWeight = opts.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT;
  let total = 0;
  for (const c of candidates) total += Math.max(1, Math.round(perWeight * c.weight));
  return Math.max(total, opts.minRingSize ?? 0);
}
