/**
 * Majority quorum arithmetic (Raft §5.2 elections, §5.3 commitment). Pure functions over a voter
 * set; learners never appear here, so they never count towards a quorum.
 *
 * Invariant: any two majorities of the same voter set intersect; with single-server changes, a
 * majority of C and a majority of C±1 server also intersect (Raft thesis §4.1).
 */
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index replicated on a majority of voters: sort match indexes descending and take the
 * majority-th one. An empty voter set commits nothing (returns 0).
 */
export function committedIndex(voters: Iterable<NodeId>, matchOf: (id: NodeId) => number): number {
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  if (matches.length === 0) return 0;
  matches.sort((a, b) => b - a);
  return matches[majority(matches.length) - 1]!;
}

/** Tally of granted/rejected votes among `voters`; votes from non-voters are ignored. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won'; // etcd convention: an empty config wins trivially (never used by campaign)
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(voters.size);
  if (granted >= q) return 'won';
  if (granted + (voters.size - granted - rejected) >= q) return 'pending';
  return 'lost';
}

/** True when the nodes for which `active` holds form a majority of `voters`. */
export function hasQuorum(voters: ReadonlySet<NodeId>, active: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (active(id)) n++;
  return n >= majority(voters.size);
}
