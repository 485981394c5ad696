/**
 * A follower's (and a compacting leader's) life as a sequence of DiskStorage calls, with the state each
 * call acknowledges, for the crash-point tests. The model is computed once, without a disk; replaying it
 * on a SimFs with a fault planned at call n tells which calls were acknowledged before the fault.
 */
import type { RecoveredState, DiskStorage, PersistRequest } from '../../../src/cluster/storage.js';
import type { Entry, Snapshot } from '../../../src/cluster/raft/types.js';

export interface ModelState {
  /** Last log index (entries or snapshot). */
  readonly last: number;
  /** Term of every index ≤ last that the log or a snapshot defines. */
  readonly terms: ReadonlyMap<number, number>;
  /** Index of the newest installed snapshot: entries at or below it exist only in the snapshot. */
  readonly floor: number;
  readonly term: number;
  readonly vote: string;
  readonly commit: number;
  /** The commit index of the last durable (synced) hard state: never lost. */
  readonly durableCommit: number;
}

export interface WorkloadOp {
  readonly name: string;
  run(s: DiskStorage): Promise<void>;
  readonly after: ModelState;
  /** A state the call passes through on its way to `after`, which a fault may leave (not acknowledged). */
  readonly mid?: ModelState;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const entryData = (index: number, term: number): Uint8Array => enc.encode(`e${index}t${term}`);
const snapshotData = (index: number, term: number): Uint8Array => enc.encode(`s${index}t${term}`);
const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: entryData(index, term) });
const snapshot = (index: number, term: number): Snapshot => ({ metadata: { index, term, confState: { voters: ['a', 'b', 'c'], learners: [] } }, data: snapshotData(index, term) });

export const EMPTY_MODEL: ModelState = { last: 0, terms: new Map(), floor: 0, term: 0, vote: '', commit: 0, durableCommit: 0 };

type Intent =
  | ['term', number, string]
  | ['append', number, number]
  | ['commit', number]
  | ['overwrite', number, number]
  | ['compact', number]
  | ['install', number, number]
  | ['install-conflict', number]
  /** A leader's snapshot and the entries after it in one Ready (an empty joiner's first append). */
  | ['install-append', number, number];

/** The script: every kind of call, interleaved so compactions and installs happen with unsynced commits. */
const SCRIPT: Intent[] = [
  ['term', 1, 'a'], ['append', 3, 0], ['commit', 1], ['commit', 1], ['append', 2, 1], ['commit', 2], ['append', 1, 0],
  ['commit', 1], ['compact', 2], ['append', 3, 1], ['commit', 2], ['append', 3, 0], ['term', 2, 'b'], ['overwrite', 2, 3],
  ['commit', 2], ['append', 2, 0], ['commit', 3], ['compact', 1], ['append', 4, 2], ['commit', 1], ['commit', 1],
  ['install', 5, 2], ['append', 2, 1], ['commit', 1], ['term', 3, ''], ['install', 3, 4], ['append', 3, 2], ['commit', 1],
  ['compact', 0], ['append', 3, 0], ['install-conflict', 5], ['append', 3, 1], ['commit', 2], ['compact', 2],
  ['append', 2, 0], ['term', 6, 'c'], ['overwrite', 1, 2], ['commit', 1], ['commit', 1], ['install', 4, 6], ['commit', 0],
  ['append', 5, 2], ['commit', 3], ['compact', 3], ['append', 2, 2], ['commit', 2], ['install-append', 2, 3], ['commit', 0],
];

/** Names of the calls in order, with the state after each; for debugging a failing kill point. */
export function describeWorkload(ops: readonly WorkloadOp[]): string[] {
  return ops.map((o, i) => `${i + 1} ${o.name} → last ${o.after.last} commit ${o.after.commit} term ${o.after.term} floor ${o.after.floor}`);
}

/** The script twice; the second round in terms 6 higher (≥ 200 filesystem calls in all). */
const ROUNDS: Intent[] = [
  ...SCRIPT,
  ...SCRIPT.map((it): Intent => (it[0] === 'term' ? ['term', it[1] + 6, it[2]] : it[0] === 'install' ? ['install', it[1], it[2] + 6] : it)),
];

export function buildWorkload(): WorkloadOp[] {
  const ops: WorkloadOp[] = [];
  let m = EMPTY_MODEL;
  const push = (name: string, run: (s: DiskStorage) => Promise<void>, after: ModelState, mid?: ModelState): void => {
    ops.push({ name, run, after, ...(mid ? { mid } : {}) });
    m = after;
  };
  const persist = (req: PersistRequest) => (s: DiskStorage) => s.persist(req);
  for (const it of ROUNDS) {
    const terms = new Map(m.terms);
    switch (it[0]) {
      case 'term': {
        const hs = { term: it[1], vote: it[2], commit: m.commit };
        push(`term ${it[1]}`, persist({ hardState: hs }), { ...m, term: it[1], vote: it[2], durableCommit: m.commit });
        break;
      }
      case 'append':
      case 'overwrite': {
        // An overwrite replaces part of the uncommitted tail (never committed entries: Raft §5.3).
        const from = it[0] === 'append' ? m.last + 1 : Math.max(m.last - it[1] + 1, m.commit + 1, m.floor + 1);
        const n = it[0] === 'append' ? it[1] : it[2];
        for (const k of [...terms.keys()]) if (k >= from) terms.delete(k);
        const entries = Array.from({ length: n }, (_, i) => entry(from + i, m.term));
        for (const e of entries) terms.set(e.index, e.term);
        const last = from + n - 1;
        const commit = it[0] === 'append' ? Math.min(m.commit + it[2], last) : m.commit;
        push(`${it[0]} ${from}..${last}`, persist({ entries, hardState: { term: m.term, vote: m.vote, commit } }), { ...m, last, terms, commit, durableCommit: commit });
        break;
      }
      case 'commit': {
        const commit = Math.min(m.commit + it[1], m.last);
        push(`commit ${commit}`, persist({ hardState: { term: m.term, vote: m.vote, commit }, mustSync: false }), { ...m, commit });
        break;
      }
      case 'compact': {
        // A local snapshot at the applied (= commit) index, keeping `it[1]` trailing entries before it.
        const at = m.commit;
        const keepFrom = Math.max(m.floor, at - it[1]);
        const retained = [...terms].filter(([i]) => i > keepFrom).sort((a, b) => a[0] - b[0]).map(([i, t]) => entry(i, t));
        const snap = snapshot(at, terms.get(at) ?? 0);
        const ct = keepFrom === 0 ? 0 : terms.get(keepFrom)!;
        push(`compact at ${at} keeping ${keepFrom}+`, (s) => s.compact(snap, keepFrom, ct, retained), m);
        break;
      }
      case 'install-append': {
        // The snapshot past our log, then entries after it, committed: one persist call.
        const at = m.last + it[1];
        const next = new Map([[at, m.term]]);
        const entries = Array.from({ length: it[2] }, (_, i) => entry(at + 1 + i, m.term));
        for (const e of entries) next.set(e.index, e.term);
        const last = at + it[2];
        // A fault between the snapshot and the entries leaves the snapshot alone (committed up to it).
        const mid: ModelState = { ...m, last: at, terms: new Map([[at, m.term]]), floor: at, commit: at, durableCommit: at };
        push(`install ${at}@${m.term} + append ${at + 1}..${last}`, persist({ snapshot: snapshot(at, m.term), entries, hardState: { term: m.term, vote: m.vote, commit: last } }), {
          ...m,
          last,
          terms: next,
          floor: at,
          commit: last,
          durableCommit: last,
        }, mid);
        break;
      }
      case 'install':
      case 'install-conflict': {
        // A leader's snapshot: past our log, or (conflict) inside its uncommitted part at a newer term.
        const term = it[0] === 'install' ? it[2] : m.term + 1;
        const at = it[0] === 'install' ? m.last + it[1] : m.commit + 1;
        const next = new Map([[at, term]]);
        const vote = term === m.term ? m.vote : '';
        push(`install ${at}@${term}`, persist({ snapshot: snapshot(at, term), hardState: { term: Math.max(term, m.term), vote, commit: at } }), {
          last: at,
          terms: next,
          floor: at,
          term: Math.max(term, m.term),
          vote,
          commit: at,
          durableCommit: at,
        });
        break;
      }
    }
  }
  return ops;
}

/** Why `r` is not a state reachable from `c` by a crash (undefined when it is). */
export function mismatch(r: RecoveredState, c: ModelState, acked: ModelState): string | undefined {
  const snap = r.snapshot?.metadata;
  const snapIndex = snap?.index ?? 0;
  const last = r.entries.length > 0 ? r.entries[r.entries.length - 1]!.index : snapIndex;
  if (last !== c.last) return `last index ${last}, expected ${c.last}`;
  if (snapIndex < c.floor) return `snapshot ${snapIndex} older than the installed one ${c.floor}`;
  if (snap && snapIndex > 0) {
    if (c.terms.get(snapIndex) !== snap.term) return `snapshot ${snapIndex}@${snap.term} is not on the log (term there ${c.terms.get(snapIndex)})`;
    if (dec.decode(r.snapshot!.data) !== `s${snapIndex}t${snap.term}`) return `snapshot ${snapIndex} data differs`;
  }
  for (const [k, e] of r.entries.entries()) {
    if (e.index !== snapIndex + k + 1) return `entry ${e.index} not contiguous after snapshot ${snapIndex}`;
    if (c.terms.get(e.index) !== e.term) return `entry ${e.index}@${e.term}, expected term ${c.terms.get(e.index)}`;
    if (dec.decode(e.data) !== `e${e.index}t${e.term}`) return `entry ${e.index} data differs`;
  }
  const hs = r.hardState;
  const raisedBySnapshot = snap !== undefined && hs.term === snap.term && hs.vote === '' && hs.term > acked.term && hs.term <= c.term;
  if (!raisedBySnapshot && (hs.term !== c.term || hs.vote !== c.vote)) return `term/vote ${hs.term}/${hs.vote}, expected ${c.term}/${c.vote}`;
  if (hs.commit < acked.durableCommit) return `commit ${hs.commit} below the acknowledged durable commit ${acked.durableCommit}`;
  if (hs.commit < snapIndex) return `commit ${hs.commit} below the snapshot ${snapIndex}`;
  if (hs.commit > Math.max(c.commit, snapIndex)) return `commit ${hs.commit} beyond any commit written (${c.commit})`;
  return undefined;
}
