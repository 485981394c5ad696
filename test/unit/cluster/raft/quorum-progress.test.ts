/**
 * Quorum arithmetic against a dumb reference (etcd quorum/quick_test.go idea) and the flow-control
 * state machine of Progress/Inflights (etcd tracker tests), plus MemoryStorage's contract.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { committedIndex, voteResult } from '../../../../src/cluster/raft/quorum.js';
import { Inflights, Progress } from '../../../../src/cluster/raft/progress.js';
import { MemoryStorage } from '../../../../src/cluster/raft/memory-storage.js';
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from '../../../../src/cluster/raft/errors.js';
import { ent, enc } from './helpers.js';

describe('quorum', () => {
  it('committedIndex is the largest index that a majority has reached (vs. brute force)', () => {
    fc.assert(fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 7 }), (matches) => {
      const ids = matches.map((_, i) => `n${i}`);
      const got = committedIndex(ids, (id) => matches[Number(id.slice(1))]!);
      const need = Math.floor(matches.length / 2) + 1;
      let want = 0;
      for (let c = 0; c <= 50; c++) if (matches.filter((m) => m >= c).length >= need) want = c;
      expect(got).toBe(want);
    }), { seed: 42, numRuns: 2000 });
  });

  it('voteResult: won with a majority of grants, lost once a majority is impossible, else pending', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 1, maxLength: 7 }), (vs) => {
      const voters = new Set(vs.map((_, i) => `n${i}`));
      const votes = new Map<string, boolean>();
      vs.forEach((v, i) => { if (v !== undefined) votes.set(`n${i}`, v); });
      const q = Math.floor(vs.length / 2) + 1;
      const yes = vs.filter((v) => v === true).length;
      const missing = vs.filter((v) => v === undefined).length;
      const want = yes >= q ? 'won' : yes + missing >= q ? 'pending' : 'lost';
      expect(voteResult(voters, votes)).toBe(want);
    }), { seed: 7, numRuns: 2000 });
  });
});

describe('progress and flow control', () => {
  it('inflights frees everything up to an acknowledged index and reports full at capacity', () => {
    const inf = new Inflights(3);
    inf.add(1); inf.add(2); inf.add(5);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(6)).toThrow();
    inf.freeLE(2);
    expect(inf.count()).toBe(1);
    expect(inf.full()).toBe(false);
    inf.freeLE(10);
    expect(inf.count()).toBe(0);
  });

  it('probe sends one append then pauses until a response; replicate pipelines up to the window', () => {
    const pr = new Progress('2', 5, 2, false);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(1);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeUpdate(5)).toBe(true);
    expect(pr.isPaused()).toBe(false);
    pr.becomeReplicate();
    expect(pr.next).toBe(6);
    pr.sentEntries(2); pr.sentEntries(1);
    expect(pr.next).toBe(9);
    expect(pr.isPaused()).toBe(true);
    pr.maybeUpdate(7); // an ack frees the window up to 7 and resumes sending
    pr.inflights.freeLE(7);
    expect(pr.isPaused()).toBe(false);
    expect(pr.inflights.count()).toBe(1);
  });

  it('a rejection backs off to the hint in probe state and to match+1 in replicate state; stale ones are ignored', () => {
    const pr = new Progress('2', 10, 4, false);
    expect(pr.maybeDecrTo(5, 3)).toBe(false); // not the probe we sent (next-1 = 9)
    expect(pr.maybeDecrTo(9, 3)).toBe(true);
    expect(pr.next).toBe(4);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    pr.sentEntries(3);
    expect(pr.maybeDecrTo(2, 0)).toBe(false); // below match: stale
    expect(pr.maybeDecrTo(6, 0)).toBe(true);
    expect(pr.next).toBe(4);
  });

  it('after a snapshot the probe resumes past the snapshot index', () => {
    const pr = new Progress('2', 3, 4, false);
    pr.becomeSnapshot(20);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(21);
  });
});

describe('MemoryStorage', () => {
  it('serves entries and terms within [firstIndex-1, lastIndex] and throws typed errors outside', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(3);
    expect(s.term(0)).toBe(0);
    expect(s.entries(2, 4).map((e) => e.index)).toEqual([2, 3]);
    expect(() => s.term(4)).toThrow(ErrUnavailable);
    s.createSnapshot(2, { voters: ['1'], learners: [] }, enc('x'));
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1);
    expect(() => s.term(1)).toThrow(ErrCompacted);
    expect(() => s.entries(2, 3)).toThrow(ErrCompacted);
    expect(() => s.createSnapshot(1, { voters: ['1'], learners: [] }, enc('y'))).toThrow(ErrSnapOutOfDate);
  });

  it('an append overlapping existing entries replaces them and everything after', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(() => s.append([ent(5, 2)])).toThrow(/missing log entry/);
  });

  it('size limits always return at least one entry', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')]);
    expect(s.entries(1, 4, 0).length).toBe(1);
    expect(s.entries(1, 4, 41).length).toBe(2);
  });
});
