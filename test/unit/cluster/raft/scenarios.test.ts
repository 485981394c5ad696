/**
 * Multi-node scenario tests of the Raft core on a deterministic in-process network (etcd-io/raft
 * raft_test.go families, raft.md R-B1): PreVote, CheckQuorum, the leader lease, leadership transfer,
 * ReadIndex, learners, membership-change gating (Ongaro 2015), snapshots, leader removal, the
 * Figure 8 scenario, fast log rejection and the RawNode error surface.
 */
import { describe, expect, it } from 'vitest';
import { RawNode } from '../../../../src/cluster/raft/raw-node.js';
import { MemoryStorage } from '../../../../src/cluster/raft/memory-storage.js';
import { RaftError } from '../../../../src/cluster/raft/errors.js';
import { createSeededRandom } from '../../../../src/lib/rng.js';
import type { RaftMutationForTest } from '../../../../src/cluster/raft/config.js';
import type { Message } from '../../../../src/cluster/raft/types.js';
import { dec, enc, ent, msg, Network, newTestRaft, persistRaft, readMessages, storageWith } from './helpers.js';

const P3 = ['1', '2', '3'];
const P5 = ['1', '2', '3', '4', '5'];

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof RaftError ? e.code : `not a RaftError: ${String(e)}`;
  }
  return undefined;
}

describe('elections', () => {
  it('a 3-node cluster elects the campaigning node and every node learns the term and leader', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    expect(nt.leaders()).toEqual(['1']);
    for (const id of P3) expect(nt.get(id).node.status()).toMatchObject({ term: 1, lead: '1' });
  });

  it('a single voter elects itself and commits its proposal in the Ready after the one that persists it', () => {
    const s = storageWith(['1']);
    const n = new RawNode({ id: '1', storage: s, electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(1) });
    n.campaign();
    let rd = n.ready();
    expect(rd.softState?.role).toBe('leader');
    s.append(rd.entries);
    n.advance(rd);
    rd = n.ready();
    n.advance(rd);
    n.propose(enc('x'));
    rd = n.ready();
    const idx = rd.entries[rd.entries.length - 1]!.index;
    // The leader counts its own copy only once durable, so nothing commits before this write completes.
    expect(rd.committedEntries.map((e) => e.index)).not.toContain(idx);
    expect(rd.mustSync).toBe(true);
    expect(rd.sendBeforePersist).toBe(true);
    s.append(rd.entries);
    n.advance(rd);
    rd = n.ready();
    expect(rd.committedEntries.map((e) => e.index)).toContain(idx);
    expect(rd.hardState?.commit).toBe(idx);
    expect(rd.mustSync).toBe(false); // a commit index alone needs no fsync
  });

  it('a batch of proposals is appended in order and replicated in one MsgApp per follower', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.stabilize();
    const before = nt.trace.length;
    nt.get('1').node.proposeBatch([enc('a'), enc('b'), enc('c')]);
    nt.stabilize();
    const apps = nt.trace.slice(before).filter((m) => m.type === 'MsgApp' && (m.entries?.length ?? 0) > 0);
    expect(apps.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of apps) expect(m.entries!.map((e) => dec(e.data))).toEqual(['a', 'b', 'c']);
    const idx = apps[0]!.entries!.map((e) => e.index);
    expect(idx).toEqual([idx[0], idx[0]! + 1, idx[0]! + 2]);
    for (const id of P3) expect(nt.appliedData(id).slice(-3)).toEqual(['a', 'b', 'c']);
  });

  it('a batch proposed on a follower is forwarded as one message and committed in order', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.stabilize();
    const before = nt.trace.length;
    nt.get('2').node.proposeBatch([enc('x'), enc('y')]);
    nt.stabilize();
    const props = nt.trace.slice(before).filter((m) => m.type === 'MsgProp');
    expect(props).toHaveLength(1);
    expect(props[0]!.entries!.map((e) => dec(e.data))).toEqual(['x', 'y']);
    for (const id of P3) expect(nt.appliedData(id).slice(-2)).toEqual(['x', 'y']);
  });

  it('only a leader whose term and vote are unchanged may send before its write is durable', () => {
    const nt = new Network(P3);
    const n2 = nt.get('2').node;
    n2.campaign(); // pre-candidate: messages, no term change yet
    let rd = n2.ready();
    expect(rd.softState?.role).not.toBe('leader');
    expect(rd.sendBeforePersist).toBe(false);
    n2.advance(rd);
    nt.campaign('1');
    const n1 = nt.get('1').node;
    n1.propose(enc('y'));
    rd = n1.ready();
    expect(rd.entries.length).toBe(1);
    expect(rd.messages.some((m) => m.type === 'MsgApp')).toBe(true);
    expect(rd.sendBeforePersist).toBe(true);
    nt.get('1').storage.append(rd.entries);
    n1.advance(rd);
  });

  it('dueling candidates: the candidate with the shorter log loses and everyone converges on the higher term', () => {
    const nt = new Network(P3);
    nt.cutLink('1', '3');
    nt.campaign('1');
    nt.campaign('3'); // '2' voted for '1' in term 1 and knows it as leader: rejects
    expect(nt.raft('3').role).toBe('candidate');
    nt.recover();
    nt.campaign('3'); // term 2, but '3' misses the leader's no-op: '1' and '2' reject
    for (const id of P3) expect(nt.raft(id).term).toBe(2);
    expect(nt.raft('3').role).toBe('follower');
    expect(nt.raft('1').raftLog.committed).toBe(1);
  });

  it('dueling pre-candidates: with PreVote the losing pre-candidate never bumps the term nor deposes the leader', () => {
    const nt = new Network(P3, { preVote: true });
    nt.cutLink('1', '3');
    nt.campaign('1');
    nt.campaign('3');
    nt.recover();
    nt.campaign('3');
    expect(nt.leaders()).toEqual(['1']);
    for (const id of P3) expect(nt.raft(id).term).toBe(1);
  });

  it('disruptive follower without PreVote: a rejoining partitioned node forces the leader to step down', () => {
    const nt = new Network(P3, { checkQuorum: true });
    nt.campaign('1');
    nt.isolate('3');
    nt.tick(25, ['3']); // '3' times out and campaigns alone, raising its term
    expect(nt.raft('3').term).toBeGreaterThan(1);
    nt.recover();
    nt.get('1').node.tick(); // heartbeat reaches '3', which answers with its higher term
    nt.stabilize();
    expect(nt.raft('1').role).toBe('follower');
  });

  it('disruptive follower with PreVote: the partitioned node stays a pre-candidate and the leader keeps its term', () => {
    const nt = new Network(P3, { checkQuorum: true, preVote: true });
    nt.campaign('1');
    nt.isolate('3');
    nt.tick(25, ['3']);
    expect(nt.raft('3').role).toBe('pre-candidate');
    expect(nt.raft('3').term).toBe(1);
    nt.recover();
    nt.tick(3);
    expect(nt.leaders()).toEqual(['1']);
    expect(nt.raft('1').term).toBe(1);
    expect(nt.raft('3').role).toBe('follower');
  });

  it('a node with a smaller term can still complete an election under PreVote (etcd#8243)', () => {
    const nt = new Network(P3, { checkQuorum: true, preVote: true });
    nt.campaign('1');
    nt.isolate('1');
    nt.tick(25, ['2', '3']); // '2' or '3' becomes leader at term 2
    const newLeader = nt.leaders().find((id) => id !== '1')!;
    expect(newLeader).toBeDefined();
    nt.recover();
    nt.tick(5);
    // The old leader learned the new term and the cluster has exactly one leader.
    expect(nt.leaders()).toEqual([newLeader]);
    expect(nt.raft('1').term).toBe(nt.raft(newLeader).term);
  });
});

describe('CheckQuorum and the leader lease', () => {
  it('a leader that cannot reach a quorum steps down within two election timeouts', () => {
    const nt = new Network(P3, { checkQuorum: true });
    nt.campaign('1');
    nt.isolate('1');
    // The first CheckQuorum round still counts the replies from before the partition.
    nt.tick(10, ['1']);
    expect(nt.raft('1').role).toBe('leader');
    nt.tick(10, ['1']);
    expect(nt.raft('1').role).toBe('follower');
    expect(nt.raft('1').term).toBe(1);
  });

  it('a leader that keeps hearing from a quorum stays leader', () => {
    const nt = new Network(P3, { checkQuorum: true });
    nt.campaign('1');
    nt.isolate('3');
    nt.tick(30, ['1', '2']);
    expect(nt.leaders()).toEqual(['1']);
  });

  it('followers that heard from the leader within the election timeout ignore vote requests (lease)', () => {
    const nt = new Network(P3, { checkQuorum: true });
    nt.campaign('1');
    const r2 = nt.raft('2');
    r2.step(msg('MsgVote', '3', '2', 5, { index: 100, logTerm: 5 }));
    expect(readMessages(r2)).toEqual([]); // ignored: no term change, no reply
    expect(r2.term).toBe(1);
    expect(r2.vote).toBe('1');
  });

  it('after the lease expires, a follower grants a vote to an up-to-date candidate', () => {
    const nt = new Network(P3, { checkQuorum: true });
    nt.campaign('1');
    nt.isolate('1');
    nt.tick(10, ['2']);
    const r2 = nt.raft('2');
    readMessages(r2);
    r2.step(msg('MsgVote', '3', '2', 2, { index: 1, logTerm: 1 }));
    expect(readMessages(r2).map((m) => [m.type, m.to, !!m.reject])).toEqual([['MsgVoteResp', '3', false]]);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('transfers to an up-to-date follower via MsgTimeoutNow', () => {
    const nt = new Network(P3, { checkQuorum: true, preVote: true });
    nt.campaign('1');
    nt.get('1').node.transferLeader('2');
    nt.stabilize();
    expect(nt.leaders()).toEqual(['2']);
    expect(nt.raft('2').term).toBe(2);
  });

  it('catches a slow follower up before transferring to it', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.isolate('3');
    nt.propose('1', 'a');
    nt.propose('1', 'b');
    nt.recover();
    nt.get('1').node.transferLeader('3');
    nt.stabilize();
    expect(nt.leaders()).toEqual(['3']);
    expect(nt.appliedData('3')).toEqual(['a', 'b']);
  });

  it('transfer to self, to a non-member or to a learner is a no-op', () => {
    const nt = new Network(P3, {}, ['4']);
    nt.campaign('1');
    for (const to of ['1', '9', '4']) {
      nt.get('1').node.transferLeader(to);
      nt.stabilize();
      expect(nt.leaders()).toEqual(['1']);
      expect(nt.get('1').node.status().leadTransferee).toBeUndefined();
    }
  });

  it('drops proposals while a transfer is in progress and aborts the transfer after an election timeout', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.isolate('3');
    nt.get('1').node.transferLeader('3');
    nt.stabilize();
    expect(nt.get('1').node.status().leadTransferee).toBe('3');
    expect(codeOf(() => nt.get('1').node.propose(enc('x')))).toBe('MG_ERR_RAFT_PROPOSAL_DROPPED');
    nt.tick(10, ['1']);
    expect(nt.get('1').node.status().leadTransferee).toBeUndefined();
    expect(nt.leaders()).toEqual(['1']);
    nt.propose('1', 'after');
    expect(nt.appliedData('2')).toEqual(['after']);
  });

  it('can transfer leadership back to the original leader', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.get('1').node.transferLeader('2');
    nt.stabilize();
    nt.get('2').node.transferLeader('1');
    nt.stabilize();
    expect(nt.leaders()).toEqual(['1']);
    expect(nt.raft('1').term).toBe(3);
  });

  it('a transfer request on a follower is forwarded to the leader', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.get('3').node.transferLeader('3');
    nt.stabilize();
    expect(nt.leaders()).toEqual(['3']);
  });
});

describe('ReadIndex (thesis §6.4)', () => {
  it('the leader answers a read after a heartbeat round confirms its leadership', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.propose('1', 'a');
    nt.get('1').node.readIndex('ctx-1');
    nt.stabilize();
    expect(nt.get('1').readStates).toEqual([{ index: 2, context: 'ctx-1' }]);
  });

  it('a follower read is forwarded to the leader and answered with the leader commit index', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.propose('1', 'a');
    nt.get('2').node.readIndex('ctx-f');
    nt.stabilize();
    expect(nt.get('2').readStates).toEqual([{ index: 2, context: 'ctx-f' }]);
  });

  it('a leader cut off from the quorum never answers a read', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.isolate('1');
    nt.get('1').node.readIndex('stale');
    nt.tick(5, ['1']);
    expect(nt.get('1').readStates).toEqual([]);
  });

  it('a new leader answers reads only after committing an entry of its own term', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.ignore('MsgAppResp'); // the new leader's no-op cannot commit
    nt.campaign('2');
    expect(nt.leaders()).toEqual(['2']);
    nt.get('2').node.readIndex('early');
    nt.stabilize();
    expect(nt.get('2').readStates).toEqual([]);
    nt.recover();
    nt.tick(1, ['2']); // heartbeat → responses → probe/append → commit of the no-op
    nt.stabilize();
    expect(nt.get('2').readStates).toEqual([{ index: 2, context: 'early' }]);
  });

  it('readIndex without a known leader throws ErrReadIndexDropped', () => {
    const nt = new Network(P3);
    expect(codeOf(() => nt.get('1').node.readIndex('x'))).toBe('MG_ERR_RAFT_READ_INDEX_DROPPED');
  });
});

describe('learners and membership changes', () => {
  it('a learner receives entries, never campaigns and is not counted in the quorum', () => {
    const nt = new Network(['1', '2'], {}, ['3']);
    nt.tick(50, ['3']);
    expect(nt.raft('3').role).toBe('follower');
    expect(nt.raft('3').term).toBe(0);
    nt.campaign('1');
    nt.propose('1', 'a');
    expect(nt.appliedData('3')).toEqual(['a']);
    nt.isolate('2');
    nt.propose('1', 'b'); // only the leader and the learner hold it: no voter majority
    expect(nt.raft('1').raftLog.committed).toBe(2);
  });

  it('a learner grants its vote when asked (it may have been promoted without knowing yet, etcd#10998)', () => {
    const r = newTestRaft('3', ['1', '2'], 10, 1, storageWith(['1', '2'], ['3']));
    r.step(msg('MsgVote', '2', '3', 2, { index: 0, logTerm: 0 }));
    expect(readMessages(r).map((m) => [m.type, !!m.reject])).toEqual([['MsgVoteResp', false]]);
  });

  it('promotes a caught-up learner to voter, which can then campaign and win', () => {
    const nt = new Network(['1', '2'], {}, ['3']);
    nt.campaign('1');
    nt.get('1').node.proposeConfChange({ kind: 'add-voter', node: '3' });
    nt.stabilize();
    for (const id of ['1', '2', '3']) expect(nt.get(id).confState.voters).toEqual(['1', '2', '3']);
    nt.campaign('3');
    expect(nt.leaders()).toEqual(['3']);
  });

  it('a peer that joins with empty storage learns the bootstrap voters, so once promoted it is never a majority alone', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.propose('1', 'a');
    nt.add('4', new MemoryStorage()); // no configuration at all, as a driver starts a non-bootstrap peer
    nt.get('1').node.proposeConfChange({ kind: 'add-learner', node: '4' });
    nt.stabilize();
    nt.tick(1, ['1']);
    nt.get('1').node.proposeConfChange({ kind: 'add-voter', node: '4' });
    nt.stabilize();
    expect(nt.get('4').confState).toEqual({ voters: ['1', '2', '3', '4'], learners: [] });
    expect(nt.get('4').storage.snapshot().metadata.confState.voters).toEqual(P3);
    expect(nt.appliedData('4')).toEqual(['a']);
    nt.isolate('4');
    nt.tick(60, ['4']);
    expect(nt.raft('4').role).not.toBe('leader');
  });

  it('a joiner with empty storage gets the snapshot when the leader snapshotted without compacting (its log still starts at 1)', () => {
    // The driver snapshots while fewer entries exist than it keeps, so the leader's log still starts at
    // index 1 behind a snapshot past 0. An append from index 1 would carry no configuration (it is in
    // the snapshot), and the joiner, once promoted, would count itself a majority of a configuration
    // without the bootstrap voters. (Found by the driver simulator, 3 voters + 2 spares, seed 113; the
    // simulator has since changed, so this test, not that seed, is the regression check.)
    const nt = new Network(P3);
    nt.campaign('1');
    for (const v of ['a', 'b', 'c']) nt.propose('1', v);
    const lead = nt.get('1');
    const applied = nt.raft('1').raftLog.applied;
    lead.storage.createSnapshot(applied, lead.confState, enc('state@' + applied));
    expect(nt.raft('1').raftLog.firstIndex()).toBe(1);
    nt.add('4', new MemoryStorage());
    lead.node.proposeConfChange({ kind: 'add-learner', node: '4' });
    nt.stabilize();
    nt.tick(1, ['1']);
    nt.stabilize();
    expect(nt.get('4').storage.snapshot().metadata.index).toBeGreaterThanOrEqual(applied);
    expect(nt.get('4').storage.snapshot().metadata.confState.voters).toEqual(P3);
    lead.node.proposeConfChange({ kind: 'add-voter', node: '4' });
    nt.stabilize();
    expect(nt.get('4').confState).toEqual({ voters: ['1', '2', '3', '4'], learners: [] });
    nt.isolate('4');
    nt.tick(60, ['4']);
    expect(nt.raft('4').role).not.toBe('leader');
  });

  it('refuses a second membership change while the first is unapplied', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.isolate('1');
    nt.get('1').node.proposeConfChange({ kind: 'add-learner', node: '4' });
    nt.stabilize();
    expect(codeOf(() => nt.get('1').node.proposeConfChange({ kind: 'add-learner', node: '5' }))).toBe('MG_ERR_RAFT_CONF_CHANGE_PENDING');
    nt.recover();
    nt.tick(1, ['1']);
    expect(nt.get('1').confState.learners).toEqual(['4']);
    expect(codeOf(() => nt.get('1').node.proposeConfChange({ kind: 'add-learner', node: '5' }))).toBeUndefined();
  });

  it('a new leader refuses membership changes until it committed an entry of its own term (2015 fix)', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.ignore('MsgAppResp');
    nt.campaign('2');
    expect(nt.leaders()).toEqual(['2']);
    expect(codeOf(() => nt.get('2').node.proposeConfChange({ kind: 'remove', node: '3' }))).toBe('MG_ERR_RAFT_CONF_CHANGE_PENDING');
    nt.recover();
    nt.tick(1, ['2']);
    expect(nt.raft('2').raftLog.applied).toBe(2);
    expect(codeOf(() => nt.get('2').node.proposeConfChange({ kind: 'remove', node: '3' }))).toBeUndefined();
  });

  it('removing the leader: it steps down once the removal is applied and the rest elect a leader', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.get('1').node.proposeConfChange({ kind: 'remove', node: '1' });
    nt.stabilize();
    expect(nt.raft('1').role).toBe('follower');
    expect(nt.get('2').confState.voters).toEqual(['2', '3']);
    nt.tick(25, ['2', '3']);
    const leaders = nt.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('1');
    nt.tick(40, ['1']);
    expect(nt.raft('1').role).toBe('follower'); // a removed node never campaigns
  });

  it('a removed peer left running with its old configuration never disturbs the leader (R-F4)', () => {
    const nt = new Network(P3, { checkQuorum: true, preVote: true });
    nt.campaign('1');
    nt.isolate('3'); // '3' never learns that it was removed
    nt.get('1').node.proposeConfChange({ kind: 'remove', node: '3' });
    nt.stabilize();
    expect(nt.get('1').confState.voters).toEqual(['1', '2']);
    expect(nt.get('3').confState.voters).toEqual(P3);
    nt.recover();
    const term = nt.raft('1').term;
    nt.tick(10 * 20); // 10 × the maximum election timeout
    expect(nt.leaders()).toEqual(['1']);
    expect(nt.raft('1').term).toBe(term);
    expect(nt.raft('2').term).toBe(term);
  });

  it('a forwarded membership change that the leader refuses becomes a no-op entry', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.get('2').node.proposeConfChange({ kind: 'remove', node: '1' });
    nt.get('3').node.proposeConfChange({ kind: 'remove', node: '2' });
    nt.stabilize();
    expect(nt.get('1').confState.voters).toEqual(['2', '3']);
  });

  it('rejects malformed membership changes and removing the last voter', () => {
    const nt = new Network(['1']);
    nt.campaign('1');
    expect(codeOf(() => nt.get('1').node.proposeConfChange({ kind: 'bogus', node: '2' } as never))).toBe('MG_ERR_RAFT_INVALID_CONF_CHANGE');
    expect(codeOf(() => nt.get('1').node.proposeConfChange({ kind: 'remove', node: '1' }))).toBe('MG_ERR_RAFT_INVALID_CONF_CHANGE');
  });
});

describe('log replication details', () => {
  it('a follower whose next entries were compacted catches up through a snapshot', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.isolate('3');
    for (let i = 0; i < 5; i++) nt.propose('1', `v${i}`);
    const lead = nt.get('1');
    const applied = nt.raft('1').raftLog.applied;
    lead.storage.createSnapshot(applied, lead.confState, enc('state@' + applied));
    lead.storage.compact(applied);
    nt.recover();
    nt.tick(1, ['1']);
    nt.stabilize();
    const s3 = nt.get('3');
    expect(s3.storage.snapshot().metadata.index).toBe(applied);
    expect(s3.node.status().commit).toBe(applied);
    expect(nt.raft('1').trk.progress.get('3')!.match).toBe(applied);
    nt.propose('1', 'after');
    expect(nt.appliedData('3')).toEqual(['after']);
  });

  it('a snapshot is not installed while committed entries of an earlier Ready are still being applied', () => {
    // A conf change among those entries would otherwise be applied on top of the snapshot's configuration.
    const n = new RawNode({ id: '3', storage: storageWith(P3), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(5) });
    n.step(msg('MsgApp', '1', '3', 1, { index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1)], commit: 2 }));
    const rd = n.ready(); // the driver now applies entries 1..2
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    const snap = { metadata: { index: 10, term: 1, confState: { voters: P3, learners: [] } }, data: enc('s') };
    n.step(msg('MsgSnap', '1', '3', 1, { snapshot: snap }));
    expect(n.status().commit).toBe(2); // refused
    n.advance(rd);
    n.step(msg('MsgSnap', '1', '3', 1, { snapshot: snap }));
    expect(n.status().commit).toBe(10);
    expect(n.ready().snapshot?.metadata.index).toBe(10);
  });

  it('fast log rejection: a follower with a long conflicting log is fixed in few round trips', () => {
    const leaderLog = [ent(1, 1), ent(2, 2), ent(3, 2), ent(4, 4), ent(5, 4), ent(6, 4), ent(7, 4)];
    const followerLog = [ent(1, 1), ent(2, 2), ent(3, 2), ent(4, 3), ent(5, 3), ent(6, 3), ent(7, 3), ent(8, 3), ent(9, 3), ent(10, 3), ent(11, 3)];
    const lead = newTestRaft('1', P3, 10, 1, storageWith(P3, [], leaderLog, 4));
    const fol = newTestRaft('2', P3, 10, 1, storageWith(P3, [], followerLog, 3));
    lead.becomeCandidate();
    lead.becomeLeader();
    readMessages(lead);
    lead.step(msg('MsgHeartbeatResp', '2', '1', lead.term));
    let rejects = 0;
    for (let round = 0; round < 20; round++) {
      const out = readMessages(lead).filter((m) => m.to === '2');
      if (out.length === 0) break;
      for (const m of out) {
        fol.step(m);
        for (const r of readMessages(fol)) { if (r.reject) rejects++; lead.step(r); }
      }
    }
    expect(rejects).toBeLessThanOrEqual(2); // one term skip per round trip, not one index
    expect(fol.raftLog.slice(1, fol.raftLog.lastIndex() + 1).map((e) => e.term)).toEqual([1, 2, 2, 4, 4, 4, 4, 5]);
  });

  it('ignores a stale (reordered) append response instead of regressing progress', () => {
    const nt = new Network(P3);
    nt.campaign('1');
    nt.propose('1', 'a');
    const r1 = nt.raft('1');
    const match = r1.trk.progress.get('2')!.match;
    r1.step(msg('MsgAppResp', '2', '1', 1, { index: 1 }));
    r1.step(msg('MsgAppResp', '2', '1', 1, { index: 0, reject: true, rejectHint: 0 }));
    expect(r1.trk.progress.get('2')!.match).toBe(match);
    expect(r1.trk.progress.get('2')!.state).toBe('replicate');
  });

  it('flow control: in replicate state at most maxInflightMsgs appends are outstanding', () => {
    const nt = new Network(P3, { maxInflightMsgs: 3, maxSizePerMsg: 1 });
    nt.campaign('1');
    nt.ignore('MsgAppResp');
    const r1 = nt.raft('1');
    for (let i = 0; i < 10; i++) r1.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, `e${i}`)] }));
    const apps = readMessages(r1).filter((m) => m.type === 'MsgApp' && m.to === '2');
    expect(apps.length).toBe(3);
    expect(r1.trk.progress.get('2')!.isPaused()).toBe(true);
  });
});

describe('follower append handling (etcd TestHandleMsgApp), with a follower log longer than the MsgApp', () => {
  // Follower log [1@1, 2@2]; each case: the message, then the follower's last index, commit, and reply.
  type Case = { m: Partial<Message> & { term: number }; last: number; commit: number; reject: boolean; ack?: number };
  const CASES: Case[] = [
    // Reply false if the log has no entry at prevLogIndex whose term matches prevLogTerm.
    { m: { term: 2, logTerm: 3, index: 2, commit: 3 }, last: 2, commit: 0, reject: true },
    { m: { term: 2, logTerm: 3, index: 3, commit: 3 }, last: 2, commit: 0, reject: true },
    // Append, replacing a conflicting suffix; the ack is the last entry the message matched (lastNew).
    { m: { term: 2, logTerm: 1, index: 1, commit: 1 }, last: 2, commit: 1, reject: false, ack: 1 },
    { m: { term: 2, logTerm: 0, index: 0, commit: 1, entries: [ent(1, 2)] }, last: 1, commit: 1, reject: false, ack: 1 },
    { m: { term: 2, logTerm: 2, index: 2, commit: 3, entries: [ent(3, 2), ent(4, 2)] }, last: 4, commit: 3, reject: false, ack: 4 },
    { m: { term: 2, logTerm: 2, index: 2, commit: 4, entries: [ent(3, 2)] }, last: 3, commit: 3, reject: false, ack: 3 },
    { m: { term: 2, logTerm: 1, index: 1, commit: 4, entries: [ent(2, 2)] }, last: 2, commit: 2, reject: false, ack: 2 },
    // Commit = min(leaderCommit, index of the last new entry), not the follower's last index.
    { m: { term: 1, logTerm: 1, index: 1, commit: 3 }, last: 2, commit: 1, reject: false, ack: 1 },
    { m: { term: 1, logTerm: 1, index: 1, commit: 3, entries: [ent(2, 2)] }, last: 2, commit: 2, reject: false, ack: 2 },
    { m: { term: 2, logTerm: 2, index: 2, commit: 3 }, last: 2, commit: 2, reject: false, ack: 2 },
    { m: { term: 2, logTerm: 2, index: 2, commit: 4 }, last: 2, commit: 2, reject: false, ack: 2 },
  ];
  const run = (c: Case, mutation?: RaftMutationForTest): { last: number; commit: number; reject: boolean; ack: number | undefined } => {
    const storage = storageWith(['1', '2', '3'], [], [ent(1, 1), ent(2, 2)]);
    const r = newTestRaft('1', ['1', '2', '3'], 10, 1, storage, { mutationsForTest: mutation ? new Set([mutation]) : undefined });
    r.becomeFollower(c.m.term, '2');
    r.step(msg('MsgApp', '2', '1', c.m.term, c.m));
    const resp = readMessages(r).find((x) => x.type === 'MsgAppResp');
    return { last: r.raftLog.lastIndex(), commit: r.raftLog.committed, reject: !!resp?.reject, ack: resp?.reject ? undefined : resp?.index };
  };

  it.each(CASES.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
    const got = run(c);
    expect(got).toEqual({ last: c.last, commit: c.commit, reject: c.reject, ack: c.ack });
  });

  it.each(['follower-acks-past-last-new', 'follower-commits-past-last-new'] as const)('the mutant %s fails a case', (mutation) => {
    const failing = CASES.filter((c) => {
      const got = run(c, mutation);
      return got.commit !== c.commit || got.ack !== c.ack;
    });
    expect(failing.length).toBeGreaterThan(0);
  });

  it('a leader ignores a MsgAppResp from an older term; the stale-term mutant acts on it', () => {
    for (const mutate of [false, true]) {
      const r = newTestRaft('1', ['1', '2', '3'], 10, 1, undefined, { mutationsForTest: mutate ? new Set(['accept-stale-term-app-resp'] as const) : undefined });
      r.becomeCandidate();
      r.becomeCandidate(); // term 2
      r.becomeLeader();
      readMessages(r);
      // An acknowledgement sent to this node when it led term 1, delivered now (a transport flush).
      r.step(msg('MsgAppResp', '2', '1', 1, { index: 1 }));
      expect(r.trk.progress.get('2')!.match).toBe(mutate ? 1 : 0);
    }
  });
});

describe('byte bounds (etcd MaxInflightBytes, MaxUncommittedEntriesSize)', () => {
  it('in replicate state the appends in flight to a follower stop at maxInflightBytes', () => {
    // 100-byte entries, one per message; 350 bytes allowed: the 4th message is admitted (below the
    // bound when sent), the 5th is not — etcd TestMsgAppFlowControlWithMaxInflightBytes.
    const nt = new Network(P3, { maxInflightMsgs: 100, maxInflightBytes: 350, maxSizePerMsg: 1 });
    nt.campaign('1');
    nt.ignore('MsgAppResp');
    const r1 = nt.raft('1');
    readMessages(r1);
    for (let i = 0; i < 10; i++) r1.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x'.repeat(100))] }));
    const apps = readMessages(r1).filter((m) => m.type === 'MsgApp' && m.to === '2' && (m.entries?.length ?? 0) > 0);
    expect(apps.length).toBe(4);
    const pr = r1.trk.progress.get('2')!;
    expect(pr.inflights.bytes()).toBe(400);
    expect(pr.isPaused()).toBe(true);
    // An acknowledgement of two frees 200 bytes: exactly two more appends go out, back at the bound.
    r1.step(msg('MsgAppResp', '2', '1', r1.term, { index: apps[1]!.entries![0]!.index }));
    expect(readMessages(r1).filter((m) => m.type === 'MsgApp' && m.to === '2' && (m.entries?.length ?? 0) > 0).length).toBe(2);
    expect(pr.inflights.bytes()).toBe(400);
  });

  it('the leader drops proposals beyond maxUncommittedEntriesSize until entries are applied, but always takes one', () => {
    const storage = storageWith(['1']);
    const r = newTestRaft('1', ['1'], 10, 1, storage, { maxUncommittedEntriesSize: 250 });
    r.becomeCandidate();
    r.becomeLeader();
    // A proposal stepped directly (not through RawNode.propose) is dropped silently: watch the log.
    const prop = (n: number): string | undefined => {
      const before = r.raftLog.lastIndex();
      r.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'y'.repeat(n))] }));
      return r.raftLog.lastIndex() > before ? undefined : 'MG_ERR_RAFT_PROPOSAL_DROPPED';
    };
    expect(prop(100)).toBeUndefined();
    expect(prop(100)).toBeUndefined();
    expect(prop(100)).toBe('MG_ERR_RAFT_PROPOSAL_DROPPED'); // 300 > 250
    expect(r.uncommittedSize).toBe(200);
    // Applying the entries releases them (the driver's advance).
    r.reduceUncommittedSize([ent(2, 1, 'y'.repeat(100)), ent(3, 1, 'y'.repeat(100))]);
    expect(r.uncommittedSize).toBe(0);
    // With nothing uncommitted, one proposal larger than the bound is still accepted (etcd).
    expect(prop(1000)).toBeUndefined();
    expect(prop(1)).toBe('MG_ERR_RAFT_PROPOSAL_DROPPED');
    // A new term starts from zero.
    r.becomeFollower(r.term + 1, '');
    expect(r.uncommittedSize).toBe(0);
  });
});

describe('Figure 8 (Raft §5.4.2)', () => {
  it('a leader does not commit a previous-term entry that a later leader could overwrite', () => {
    // Explicit logs at the moment S1 (term 4) has replicated (2, term 2) to S2 and S3.
    const logs: Record<string, number[]> = { '1': [1, 2], '2': [1, 2], '3': [1, 2], '4': [1], '5': [1, 3] };
    const build = (mutate: boolean) => {
      const storages = Object.fromEntries(P5.map((id) => [id, storageWith(P5, [], logs[id]!.map((t, i) => ent(i + 1, t)), 3)]));
      const rafts = Object.fromEntries(P5.map((id) => [id, newTestRaft(id, P5, 10, 1, storages[id],
        { mutationsForTest: mutate ? new Set(['commit-prior-term-by-counting'] as const) : undefined })]));
      const s1 = rafts['1']!;
      s1.becomeCandidate(); // term 4
      s1.becomeLeader(); // no-op (3, term 4), not yet replicated
      persistRaft(s1, storages['1']!); // …but durable on S1
      readMessages(s1);
      // S2 and S3 acknowledge index 2 only (the no-op is still in flight).
      s1.step(msg('MsgAppResp', '2', '1', 4, { index: 2 }));
      s1.step(msg('MsgAppResp', '3', '1', 4, { index: 2 }));
      return { s1, rafts };
    };
    const correct = build(false);
    expect(correct.s1.raftLog.committed).toBe(0);
    // Once the term-4 no-op is on a majority, index 2 commits indirectly — and S5 can no longer win.
    correct.s1.step(msg('MsgAppResp', '2', '1', 4, { index: 3 }));
    correct.s1.step(msg('MsgAppResp', '3', '1', 4, { index: 3 }));
    expect(correct.s1.raftLog.committed).toBe(3);
    for (const id of ['2', '3']) {
      const r = correct.rafts[id]!;
      r.step(msg('MsgApp', '1', id, 4, { index: 2, logTerm: 2, entries: [ent(3, 4)], commit: 3 }));
      readMessages(r);
      r.step(msg('MsgVote', '5', id, 5, { index: 2, logTerm: 3 }));
      expect(readMessages(r).map((m) => !!m.reject)).toEqual([true]);
    }
    const broken = build(true);
    expect(broken.s1.raftLog.committed).toBe(2); // the mutation "commits" (2, term 2)…
    // …yet S5 (last term 3) can still win term 5 with S2, S3, S4, whose last terms are ≤ 2.
    for (const id of ['2', '3', '4']) {
      const r = broken.rafts[id]!;
      r.step(msg('MsgVote', '5', id, 5, { index: 2, logTerm: 3 }));
      expect(readMessages(r).map((m) => !!m.reject)).toEqual([false]);
    }
  });
});

describe('RawNode error surface', () => {
  it('step rejects local-only, malformed and unknown-peer messages with typed errors', () => {
    const n = new RawNode({ id: '1', storage: storageWith(P3), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(3) });
    expect(codeOf(() => n.step(msg('MsgHup', '2', '1', 1)))).toBe('MG_ERR_RAFT_STEP_LOCAL_MSG');
    expect(codeOf(() => n.step(msg('MsgAppResp', '9', '1', 1, { index: 1 })))).toBe('MG_ERR_RAFT_STEP_PEER_NOT_FOUND');
    expect(codeOf(() => n.step({ type: 'MsgBogus', from: '2', to: '1', term: 1 } as never))).toBe('MG_ERR_RAFT_INVALID_MESSAGE');
    expect(codeOf(() => n.step(msg('MsgApp', '2', '1', 0)))).toBe('MG_ERR_RAFT_INVALID_MESSAGE');
    expect(codeOf(() => n.step(msg('MsgApp', '', '1', 1)))).toBe('MG_ERR_RAFT_INVALID_MESSAGE');
  });

  it('a forwarded request that loops back to its origin is dropped silently, not thrown at the network (sim seed regression)', () => {
    // Two followers that each believe the other leads forward a read/proposal back and forth; once the
    // origin has no leader, the request coming back from the network must not throw out of step().
    const n = new RawNode({ id: '1', storage: storageWith(P3), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(3) });
    expect(codeOf(() => n.step(msg('MsgReadIndex', '1', '1', 0, { context: 'c' })))).toBeUndefined();
    expect(codeOf(() => n.step(msg('MsgProp', '1', '1', 0, { entries: [ent(0, 0, 'x')] })))).toBeUndefined();
    expect(codeOf(() => n.readIndex('local'))).toBe('MG_ERR_RAFT_READ_INDEX_DROPPED');
  });

  it('propose without a leader throws ErrProposalDropped', () => {
    const n = new RawNode({ id: '1', storage: storageWith(P3), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(3) });
    expect(codeOf(() => n.propose(enc('x')))).toBe('MG_ERR_RAFT_PROPOSAL_DROPPED');
  });

  it('rejects invalid configuration', () => {
    const base = { id: '1', storage: new MemoryStorage(), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(1) };
    expect(codeOf(() => new RawNode({ ...base, id: '' }))).toBe('MG_ERR_RAFT_INVALID_CONFIG');
    expect(codeOf(() => new RawNode({ ...base, electionTick: 1 }))).toBe('MG_ERR_RAFT_INVALID_CONFIG');
    expect(codeOf(() => new RawNode({ ...base, heartbeatTick: 0 }))).toBe('MG_ERR_RAFT_INVALID_CONFIG');
  });

  it('a vote response leaves in the same Ready as the hard state recording that vote', () => {
    const n = new RawNode({ id: '2', storage: storageWith(P3), electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(3), checkQuorum: false });
    n.step(msg('MsgVote', '1', '2', 1, { index: 0, logTerm: 0 }));
    const rd = n.ready();
    expect(rd.messages.map((m) => m.type)).toEqual(['MsgVoteResp']);
    expect(rd.hardState).toEqual({ term: 1, vote: '1', commit: 0 });
    expect(rd.mustSync).toBe(true);
  });

  it('restarting from storage restores term, vote, commit and configuration', () => {
    const s = storageWith(P3, [], [ent(1, 1), ent(2, 1)]);
    s.setHardState({ term: 3, vote: '2', commit: 2 });
    const n = new RawNode({ id: '1', storage: s, electionTick: 10, heartbeatTick: 1, rand: createSeededRandom(3) });
    expect(n.status()).toMatchObject({ term: 3, vote: '2', commit: 2, applied: 0, voters: P3, lastIndex: 2 });
    const rd = n.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.hardState).toBeUndefined();
  });
});
