/**
 * Conformance of the Raft core with the Raft paper §5 (Ongaro & Ousterhout 2014), one test per rule,
 * laid out init / step / check like etcd-io/raft raft_paper_test.go. Each test builds a node in a
 * chosen state, feeds messages or ticks, and asserts the outgoing messages and resulting state.
 */
import { describe, expect, it } from 'vitest';
import type { Raft } from '../../../../src/cluster/raft/raft.js';
import type { Message } from '../../../../src/cluster/raft/types.js';
import { ent, msg, newTestRaft, persistRaft, readMessages, storageWith, tickN } from './helpers.js';

const P3 = ['1', '2', '3'];
const P5 = ['1', '2', '3', '4', '5'];

function commitNoopAsLeader(r: Raft, peers: string[]): void {
  r.becomeCandidate();
  r.becomeLeader();
  const li = r.raftLog.lastIndex();
  for (const p of peers) if (p !== r.id) r.step(msg('MsgAppResp', p, r.id, r.term, { index: li }));
  readMessages(r);
}

describe('§5.1 terms', () => {
  for (const role of ['follower', 'candidate', 'leader'] as const) {
    it(`a ${role} that sees a higher term adopts it and becomes a follower`, () => {
      const r = newTestRaft('1', P3);
      if (role === 'candidate') r.becomeCandidate();
      if (role === 'leader') { r.becomeCandidate(); r.becomeLeader(); }
      r.step(msg('MsgApp', '2', '1', 5, { index: 0, logTerm: 0, entries: [], commit: 0 }));
      expect(r.term).toBe(5);
      expect(r.role).toBe('follower');
      expect(r.lead).toBe('2');
    });
  }

  it('ignores a stale-term MsgApp (no state change, no reply without PreVote/CheckQuorum)', () => {
    const r = newTestRaft('1', P3);
    r.becomeFollower(2, '2');
    r.step(msg('MsgApp', '3', '1', 1, { index: 0, logTerm: 0, entries: [ent(1, 1)], commit: 0 }));
    expect(r.term).toBe(2);
    expect(r.raftLog.lastIndex()).toBe(0);
    expect(readMessages(r)).toEqual([]);
  });

  it('refuses a stale-term RequestVote with its term (Figure 2: "for candidate to update itself"), and the candidate updates', () => {
    const r = newTestRaft('1', P3);
    r.becomeCandidate();
    r.becomeCandidate(); // term 2
    readMessages(r);
    r.step(msg('MsgVote', '3', '1', 1, { index: 5, logTerm: 1 }));
    expect(r.term).toBe(2);
    expect(readMessages(r)).toEqual([msg('MsgVoteResp', '1', '3', 2, { reject: true })]);
    // The stale candidate learns the term: without this, a candidate whose own vote requests reach no
    // one that counts it could only out-race that term by chance (raft sim, 2 voters, seed 98493783).
    const c = newTestRaft('3', P3);
    c.becomeCandidate();
    c.step(msg('MsgVoteResp', '1', '3', 2, { reject: true }));
    expect([c.role, c.term]).toEqual(['follower', 2]);
  });

  it('answers a stale-term MsgApp with its term when CheckQuorum is on, so the stale leader steps down', () => {
    const r = newTestRaft('1', P3, 10, 1, undefined, { checkQuorum: true });
    r.becomeFollower(2, '2');
    r.step(msg('MsgApp', '3', '1', 1, { index: 0, logTerm: 0, entries: [], commit: 0 }));
    const out = readMessages(r);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: 'MsgAppResp', to: '3', term: 2 });
  });
});

describe('§5.2 leader election', () => {
  it('starts as a follower', () => {
    const r = newTestRaft('1', P3);
    expect(r.role).toBe('follower');
    expect(r.term).toBe(0);
  });

  it('a leader sends heartbeats to every peer each heartbeat interval', () => {
    const hb = 1;
    const r = newTestRaft('1', P3, 10, hb);
    r.becomeCandidate();
    r.becomeLeader();
    persistRaft(r, r.raftLog.storage as never);
    readMessages(r);
    tickN(r, hb);
    const out = readMessages(r).sort((a, b) => a.to.localeCompare(b.to));
    expect(out.map((m) => [m.type, m.to, m.term, m.commit])).toEqual([['MsgHeartbeat', '2', 1, 0], ['MsgHeartbeat', '3', 1, 0]]);
  });

  for (const role of ['follower', 'candidate'] as const) {
    it(`a ${role} whose election timeout elapses starts an election: term+1, votes for itself, asks every voter`, () => {
      const r = newTestRaft('1', P3);
      if (role === 'candidate') r.becomeCandidate();
      const term0 = r.term;
      tickN(r, 2 * 10);
      expect(r.role).toBe('candidate');
      expect(r.term).toBe(term0 + 1);
      expect(r.vote).toBe('1');
      const out = readMessages(r).filter((m) => m.term === r.term).sort((a, b) => a.to.localeCompare(b.to));
      expect(out.map((m) => [m.type, m.to, m.term])).toEqual([['MsgVote', '2', term0 + 1], ['MsgVote', '3', term0 + 1]]);
    });
  }

  it('a candidate wins with a majority, loses with a majority of rejections, else keeps waiting', () => {
    const cases: [number, Record<string, boolean>, string][] = [
      [1, {}, 'leader'],
      [3, { '2': true, '3': true }, 'leader'],
      [3, { '2': true }, 'leader'],
      [5, { '2': true, '3': true, '4': true, '5': true }, 'leader'],
      [5, { '2': true, '3': true, '4': true }, 'leader'],
      [5, { '2': true, '3': true }, 'leader'],
      [3, { '2': false, '3': false }, 'follower'],
      [5, { '2': false, '3': false, '4': false, '5': false }, 'follower'],
      [5, { '2': true, '3': false, '4': false, '5': false }, 'follower'],
      [3, {}, 'candidate'],
      [5, { '2': true }, 'candidate'],
      [5, { '2': false, '3': false }, 'candidate'],
      [5, {}, 'candidate'],
    ];
    for (const [size, votes, want] of cases) {
      const peers = Array.from({ length: size }, (_, i) => String(i + 1));
      const r = newTestRaft('1', peers);
      r.step(msg('MsgHup', '1', '1', 0));
      for (const [id, granted] of Object.entries(votes)) r.step(msg('MsgVoteResp', id, '1', r.term, { reject: !granted }));
      expect(r.role, `size ${size} votes ${JSON.stringify(votes)}`).toBe(want);
      expect(r.term).toBe(1);
    }
  });

  it('a follower grants at most one vote per term, first come first served', () => {
    const cases: [string, string, boolean][] = [
      ['', '2', false], ['', '3', false], ['2', '2', false], ['3', '3', false], ['2', '3', true], ['3', '2', true],
    ];
    for (const [vote, nvote, wreject] of cases) {
      const r = newTestRaft('1', P3);
      r.term = 1;
      r.vote = vote;
      r.step(msg('MsgVote', nvote, '1', 1, { index: 0, logTerm: 0 }));
      const out = readMessages(r);
      expect(out).toEqual([{ type: 'MsgVoteResp', from: '1', to: nvote, term: 1, ...(wreject ? { reject: true } : {}) }]);
    }
  });

  it('a candidate that hears from a leader of at least its term becomes its follower', () => {
    for (const term of [1, 2]) {
      const r = newTestRaft('1', P3);
      r.step(msg('MsgHup', '1', '1', 0));
      expect(r.role).toBe('candidate');
      r.step(msg('MsgApp', '2', '1', term, { index: 0, logTerm: 0, entries: [], commit: 0 }));
      expect(r.role).toBe('follower');
      expect(r.term).toBe(term);
    }
  });

  for (const role of ['follower', 'candidate'] as const) {
    it(`a ${role}'s election timeout is randomized within [electionTick, 2*electionTick)`, () => {
      const et = 10;
      const r = newTestRaft('1', P3, et, 1, undefined, { seed: 42 });
      const seen = new Set<number>();
      for (let round = 0; round < 50 * et; round++) {
        if (role === 'follower') r.becomeFollower(r.term + 1, '2');
        else r.becomeCandidate();
        let time = 0;
        while (readMessages(r).length === 0) { r.tick(); time++; }
        seen.add(time);
      }
      for (let d = et; d < 2 * et; d++) expect(seen.has(d), `timeout ${d} seen`).toBe(true);
      expect([...seen].every((d) => d >= et && d < 2 * et)).toBe(true);
    });
  }

  for (const role of ['follower', 'candidate'] as const) {
    it(`in most cases only one ${role} times out first (randomization avoids split votes)`, () => {
      const et = 10;
      let conflicts = 0;
      const rounds = 1000;
      for (let round = 0; round < rounds; round++) {
        const rs = P5.map((id) => newTestRaft(id, P5, et, 1, undefined, { seed: round * 7 + Number(id) }));
        for (const r of rs) { if (role === 'follower') r.becomeFollower(r.term + 1, 'x'); else r.becomeCandidate(); readMessages(r); }
        let timedOut = 0;
        while (timedOut === 0) {
          for (const r of rs) { r.tick(); if (readMessages(r).length > 0) timedOut++; }
        }
        if (timedOut > 1) conflicts++;
      }
      // etcd asserts ≤ 30% conflicts for 5 nodes with this timeout range.
      expect(conflicts / rounds).toBeLessThanOrEqual(0.3);
    });
  }
});

describe('§5.3 log replication', () => {
  it('a leader appends a proposal to its log and sends it to every follower', () => {
    const r = newTestRaft('1', P3);
    commitNoopAsLeader(r, P3);
    const li = r.raftLog.lastIndex();
    r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'some data')] }));
    expect(r.raftLog.lastIndex()).toBe(li + 1);
    const out = readMessages(r).sort((a, b) => a.to.localeCompare(b.to));
    expect(out.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit, m.entries?.map((e) => [e.index, e.term])])).toEqual([
      ['MsgApp', '2', li, 1, li, [[li + 1, 1]]],
      ['MsgApp', '3', li, 1, li, [[li + 1, 1]]],
    ]);
  });

  it('a leader commits an entry once a majority stored it and tells followers the new commit index', () => {
    const r = newTestRaft('1', P3);
    commitNoopAsLeader(r, P3);
    const li = r.raftLog.lastIndex();
    r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x')] }));
    for (const m of readMessages(r)) r.step(msg('MsgAppResp', m.to, '1', 1, { index: (m.index ?? 0) + (m.entries?.length ?? 0) }));
    expect(r.raftLog.committed).toBe(li + 1);
    const commits = readMessages(r).filter((m) => m.type === 'MsgApp').map((m) => m.commit);
    expect(commits).toEqual([li + 1, li + 1]);
  });

  it('a leader commits once a majority (not fewer) acknowledged', () => {
    const cases: [number, string[], boolean][] = [
      [1, [], true], [3, [], false], [3, ['2'], true], [3, ['2', '3'], true],
      [5, [], false], [5, ['2'], false], [5, ['2', '3'], true], [5, ['2', '3', '4', '5'], true],
    ];
    for (const [size, acks, want] of cases) {
      const peers = Array.from({ length: size }, (_, i) => String(i + 1));
      const s = storageWith(peers);
      const r = newTestRaft('1', peers, 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      const li = r.raftLog.lastIndex();
      r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x')] }));
      persistRaft(r, s); // the leader's own copy is durable: it counts as one acknowledgement
      for (const id of acks) r.step(msg('MsgAppResp', id, '1', 1, { index: li + 1 }));
      expect(r.raftLog.committed > li, `size ${size} acks ${acks.join(',')}`).toBe(want);
    }
  });

  it('the leader counts its own copy only once it is durable; a majority of followers needs no leader copy (thesis §10.2.1)', () => {
    /** A leader of `peers` with a proposal it has not yet written; returns it, its storage and the proposal's index. */
    const leaderWithUnwrittenProposal = (peers: string[]) => {
      const s = storageWith(peers);
      const r = newTestRaft('1', peers, 10, 1, s);
      r.becomeCandidate();
      r.becomeLeader();
      persistRaft(r, s);
      r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x')] }));
      return { r, s, li: r.raftLog.lastIndex() };
    };
    const { r, s, li } = leaderWithUnwrittenProposal(P3);
    r.step(msg('MsgAppResp', '2', '1', 1, { index: li }));
    expect(r.raftLog.committed).toBe(li - 1); // one follower + an in-flight leader write is not a majority
    persistRaft(r, s);
    expect(r.raftLog.committed).toBe(li); // the leader's write completed: now it is

    const five = leaderWithUnwrittenProposal(P5);
    for (const id of ['2', '3']) five.r.step(msg('MsgAppResp', id, '1', 1, { index: five.li }));
    expect(five.r.raftLog.committed).toBe(five.li - 1);
    five.r.step(msg('MsgAppResp', '4', '1', 1, { index: five.li }));
    expect(five.r.raftLog.committed).toBe(five.li); // three of five followers, leader write still in flight
  });

  it('committing an entry of the current term also commits all preceding entries, including earlier terms', () => {
    const prior = [ent(1, 1), ent(2, 2)];
    const r = newTestRaft('1', P3, 10, 1, storageWith(P3, [], prior, 2));
    r.becomeCandidate(); // term 3
    r.becomeLeader();
    r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x')] }));
    for (const m of readMessages(r)) {
      if (m.type === 'MsgApp') r.step(msg('MsgAppResp', m.to, '1', 3, { index: (m.index ?? 0) + (m.entries?.length ?? 0) }));
    }
    expect(r.raftLog.committed).toBe(4);
    expect(r.raftLog.slice(1, 5).map((e) => e.term)).toEqual([1, 2, 3, 3]);
  });

  it('a follower commits up to min(leaderCommit, index of last new entry)', () => {
    const cases: [Message['entries'], number][] = [
      [[ent(1, 1, 'a')], 1],
      [[ent(1, 1, 'a'), ent(2, 1, 'b')], 2],
      [[ent(1, 1, 'a'), ent(2, 1, 'b')], 1],
    ];
    for (const [ents, commit] of cases) {
      const r = newTestRaft('1', P3);
      r.becomeFollower(1, '2');
      r.step(msg('MsgApp', '2', '1', 1, { index: 0, logTerm: 0, entries: ents, commit }));
      expect(r.raftLog.committed).toBe(commit);
    }
    const r = newTestRaft('1', P3);
    r.becomeFollower(1, '2');
    r.step(msg('MsgApp', '2', '1', 1, { index: 0, logTerm: 0, entries: [ent(1, 1)], commit: 5 }));
    expect(r.raftLog.committed).toBe(1); // never beyond what this message proved to match
  });

  it('a follower rejects MsgApp whose prevLogIndex/prevLogTerm it does not hold, with a back-off hint', () => {
    const ents = [ent(1, 1), ent(2, 2)];
    const cases: [number, number, boolean, number, number][] = [
      // prevTerm, prevIndex, reject, rejectHint, logTermHint
      [0, 0, false, 0, 0],
      [1, 1, false, 0, 0],
      [2, 2, false, 0, 0],
      [1, 2, true, 1, 1], // conflicting term at 2: hint = index 1 with term 1
      [3, 3, true, 2, 2], // beyond our log: hint our last entry
    ];
    for (const [term, index, wreject, whint, wterm] of cases) {
      const r = newTestRaft('1', P3, 10, 1, storageWith(P3, [], ents));
      r.becomeFollower(2, '2');
      r.step(msg('MsgApp', '2', '1', 2, { logTerm: term, index, entries: [], commit: 1 }));
      const [m] = readMessages(r);
      expect(m).toMatchObject({ type: 'MsgAppResp', to: '2' });
      expect(!!m!.reject).toBe(wreject);
      if (wreject) expect([m!.index, m!.rejectHint, m!.logTermHint]).toEqual([index, whint, wterm]);
    }
  });

  it('a follower deletes a conflicting entry and all that follow, then appends the new ones', () => {
    const cases: [number, number, ReturnType<typeof ent>[], [number, number][]][] = [
      [2, 2, [ent(3, 3)], [[1, 1], [2, 2], [3, 3]]],
      [1, 1, [ent(2, 3), ent(3, 4)], [[1, 1], [2, 3], [3, 4]]],
      [0, 0, [ent(1, 1)], [[1, 1], [2, 2]]],
      [0, 0, [ent(1, 3)], [[1, 3]]],
    ];
    for (const [index, term, ents, want] of cases) {
      const r = newTestRaft('1', P3, 10, 1, storageWith(P3, [], [ent(1, 1), ent(2, 2)]));
      r.becomeFollower(2, '2');
      r.step(msg('MsgApp', '2', '1', 2, { logTerm: term, index, entries: ents, commit: 0 }));
      expect(r.raftLog.slice(1, r.raftLog.lastIndex() + 1).map((e) => [e.index, e.term])).toEqual(want);
    }
  });

  it('a leader brings any follower log of Figure 7 into agreement with its own', () => {
    const terms = (ts: number[]) => ts.map((t, i) => ent(i + 1, t));
    const leaderLog = terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
    const followers = [
      terms([1, 1, 1, 4, 4, 5, 5, 6, 6]),
      terms([1, 1, 1, 4]),
      terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
      terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
      terms([1, 1, 1, 4, 4, 4, 4]),
      terms([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
    ];
    for (const fl of followers) {
      const lead = newTestRaft('1', P3, 10, 1, storageWith(P3, [], leaderLog, 8));
      lead.raftLog.committed = leaderLog.length;
      const fol = newTestRaft('2', P3, 10, 1, storageWith(P3, [], fl, 7));
      // The leader is elected with '3''s vote, then exchanges messages only with '2'.
      lead.becomeCandidate();
      lead.becomeLeader();
      readMessages(lead);
      lead.step(msg('MsgHeartbeatResp', '2', '1', lead.term));
      for (let i = 0; i < 100; i++) {
        const out = readMessages(lead).filter((m) => m.to === '2');
        if (out.length === 0) break;
        for (const m of out) {
          fol.step(m);
          for (const resp of readMessages(fol)) lead.step(resp);
        }
      }
      persistRaft(fol, fol.raftLog.storage as never);
      const want = lead.raftLog.slice(1, lead.raftLog.lastIndex() + 1).map((e) => [e.index, e.term]);
      expect(fol.raftLog.slice(1, fol.raftLog.lastIndex() + 1).map((e) => [e.index, e.term])).toEqual(want);
    }
  });
});

describe('§5.4 safety', () => {
  it('a candidate sends its last log index and term in vote requests', () => {
    for (const [ents, wterm] of [[[ent(1, 1)], 2], [[ent(1, 1), ent(2, 2)], 3]] as const) {
      const r = newTestRaft('1', P3, 10, 1, storageWith(P3, [], [...ents]));
      r.step(msg('MsgApp', '2', '1', wterm - 1, { index: 0, logTerm: 0, entries: [...ents], commit: 0 }));
      readMessages(r);
      tickN(r, 20);
      const votes = readMessages(r).filter((m) => m.type === 'MsgVote');
      expect(votes.length).toBe(2);
      for (const m of votes) {
        expect(m.index).toBe(ents[ents.length - 1]!.index);
        expect(m.logTerm).toBe(ents[ents.length - 1]!.term);
        expect(m.term).toBe(wterm);
      }
    }
  });

  it('a voter denies its vote when its own log is more up to date (§5.4.1)', () => {
    const cases: [ReturnType<typeof ent>[], number, number, boolean][] = [
      // voter log, candidate logTerm, candidate index, reject
      [[ent(1, 1)], 1, 1, false],
      [[ent(1, 1)], 1, 2, false],
      [[ent(1, 1), ent(2, 1)], 1, 1, true],
      [[ent(1, 1)], 2, 1, false],
      [[ent(1, 1)], 2, 2, false],
      [[ent(1, 1), ent(2, 1)], 2, 1, false],
      [[ent(1, 2)], 1, 1, true],
      [[ent(1, 2)], 1, 2, true], // longer candidate log with older last term loses (skiff's bug)
      [[ent(1, 2), ent(2, 1)], 1, 1, true],
    ];
    for (const [log, logTerm, index, wreject] of cases) {
      const r = newTestRaft('1', P3, 10, 1, storageWith(P3, [], log));
      r.step(msg('MsgVote', '2', '1', 3, { logTerm, index }));
      const [m] = readMessages(r);
      expect(m?.type).toBe('MsgVoteResp');
      expect(!!m?.reject, JSON.stringify([log.map((e) => e.term), logTerm, index])).toBe(wreject);
    }
  });

  it('a leader commits by counting replicas only entries of its current term (§5.4.2)', () => {
    const cases: [number, number][] = [[1, 0], [2, 0], [3, 3]];
    for (const [index, wcommit] of cases) {
      const s = storageWith(P3, [], [ent(1, 1), ent(2, 2)], 2);
      const r = newTestRaft('1', P3, 10, 1, s);
      r.becomeCandidate(); // term 3
      r.becomeLeader(); // appends the term-3 no-op at index 3
      persistRaft(r, s);
      readMessages(r);
      r.step(msg('MsgAppResp', '2', '1', r.term, { index }));
      expect(r.raftLog.committed).toBe(wcommit);
    }
  });
});
