/**
 * Three real RaftNodes in one process on loopback TCP with their own temp dataDirs: election, writes
 * through a follower, failover, restart from disk (catch-up by snapshot), consistent reads, and a peer
 * with the wrong cluster secret that can neither join nor disturb the group.
 * Waits are bounded polls on observable state, never fixed sleeps.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaftNode, type MembershipCommand, type RaftNodeOptions } from '../../src/cluster/index.js';
import { EventBus, type BusEvent } from '../../src/observability/events.js';

const SECRET = 'integration-test-cluster-secret';
/** 20 ms ticks → heartbeat 20 ms, election timeout 200–400 ms: fast, yet far above loopback RTT. */
const TIMING = { tickMs: 20, electionTick: 10, heartbeatTick: 1 } as const;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Member {
  id: string;
  address: string;
  dataDir: string;
  node: RaftNode | undefined;
  events: BusEvent[];
}

const members: Member[] = [];
const extra: RaftNode[] = [];
let root: string;
let seq = 0;
/** Last log index of the peer stopped in the failover test. */
let stoppedAt = 0;
const put = (id: string): MembershipCommand => ({ op: 'put-upstream', service: 'api', id, url: `http://127.0.0.1:${9000 + (seq % 1000)}`, clientId: 'itest', seq: ++seq });

function options(m: Member, overrides: Partial<RaftNodeOptions> = {}): RaftNodeOptions {
  const bus = new EventBus();
  bus.subscribe((e) => m.events.push(e));
  return {
    id: m.id,
    listen: m.address,
    dataDir: m.dataDir,
    secret: SECRET,
    bootstrap: members.map((x) => ({ id: x.id, address: x.address })),
    events: bus,
    snapshotEvery: 8,
    trailingEntries: 2,
    proposalTimeoutMs: 10_000,
    transportForTest: { backoffBaseMs: 20, backoffMaxMs: 200 },
    ...TIMING,
    ...overrides,
  };
}

async function startMember(m: Member): Promise<RaftNode> {
  const n = new RaftNode(options(m));
  await n.start();
  m.node = n;
  return n;
}

const live = (): Member[] => members.filter((m) => m.node !== undefined);

/** The leader of the highest term among live peers (a restarted peer may not know it yet). */
function leaderOf(): Member | undefined {
  const leaders = live().filter((m) => m.node!.status().role === 'leader');
  leaders.sort((a, b) => b.node!.status().term - a.node!.status().term);
  return leaders[0];
}

/** Every live peer names the same leader. */
function agreedLeader(): Member | undefined {
  const l = leaderOf();
  return l && live().every((m) => m.node!.status().leader === l.id) ? l : undefined;
}

function describeCluster(): string {
  return JSON.stringify(live().map((m) => ({ id: m.id, ...pick(m.node!.status()) })));
}
const pick = (s: ReturnType<RaftNode['status']>) => ({ role: s.role, term: s.term, leader: s.leader, commit: s.commitIndex, applied: s.appliedIndex });

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mg-raft-'));
  for (const id of ['gw-1', 'gw-2', 'gw-3']) {
    members.push({ id, address: `127.0.0.1:${await freePort()}`, dataDir: path.join(root, id), node: undefined, events: [] });
  }
  await Promise.all(members.map(startMember));
});

afterAll(async () => {
  await Promise.all([...live().map((m) => m.node!.close({ transferLeadership: false })), ...extra.map((n) => n.close({ transferLeadership: false }))]);
  await rm(root, { recursive: true, force: true });
});

describe('raft cluster of three RaftNodes on loopback', () => {
  it('elects one leader that every peer agrees on, and reports quorum', async () => {
    await waitFor(() => agreedLeader() !== undefined && live().every((m) => m.node!.status().hasQuorum), () => `no agreed leader: ${describeCluster()}`);
    const leader = leaderOf()!;
    expect(leader.events.some((e) => e.type === 'raft:leader' && (e.data as { leader?: string }).leader === leader.id)).toBe(true);
    const st = leader.node!.status();
    expect(st.voters).toEqual(['gw-1', 'gw-2', 'gw-3']);
    expect(st.peers.filter((p) => p.suffrage === 'voter')).toHaveLength(2);
  });

  it('applies a write proposed through a follower on every peer', async () => {
    const leader = leaderOf()!;
    const follower = live().find((m) => m !== leader)!;
    const updates: number[] = [];
    const off = members[0]!.node!.onMembershipChange((u) => updates.push(u.index));
    const { index, result } = await follower.node!.propose(put('u1'));
    off();
    expect(result).toMatchObject({ ok: true, created: true });
    // Resolved after apply on the proposing peer itself.
    expect(follower.node!.membership().get('api')?.get('u1')?.url).toMatch(/^http:/);
    await waitFor(() => live().every((m) => m.node!.status().appliedIndex >= index), describeCluster);
    for (const m of live()) expect(m.node!.membership().get('api')?.has('u1')).toBe(true);
    await waitFor(() => updates.includes(index), () => `membership callback for ${index}: ${updates}`);
    expect(members.every((m) => m.events.some((e) => e.type === 'membership:changed'))).toBe(true);

    // A consistent read on a follower sees the write.
    const read = await follower.node!.readMembership();
    expect(read.index).toBeGreaterThanOrEqual(index);
    expect(read.membership.get('api')?.has('u1')).toBe(true);
  });

  it('elects a new leader when the leader stops, and writes continue', async () => {
    const old = leaderOf()!;
    const oldTerm = old.node!.status().term;
    stoppedAt = old.node!.status().lastIndex;
    await old.node!.close({ transferLeadership: false }); // like a crash: no handover
    old.node = undefined;
    await waitFor(() => agreedLeader() !== undefined && agreedLeader()!.node!.status().term > oldTerm, () => `no new leader: ${describeCluster()}`);
    const follower = live().find((m) => m !== agreedLeader())!;
    for (let i = 0; i < 12; i++) {
      const r = await follower.node!.propose(put(`w${i}`));
      expect(r.result.ok).toBe(true);
    }
    // 12 writes with snapshotEvery 8 / trailing 2: the stopped peer is now behind the compacted log.
    const leader = leaderOf()!;
    await waitFor(() => leader.node!.status().peers.some((p) => p.id === follower.id && (p.match ?? 0) >= leader.node!.status().commitIndex), describeCluster);
  });

  it('restarts the stopped peer from its dataDir and catches it up (by snapshot)', async () => {
    const down = members.find((m) => m.node === undefined)!;
    const n = await startMember(down);
    const target = leaderOf()!.node!.status().commitIndex;
    await waitFor(() => n.status().appliedIndex >= target, () => `restarted peer behind: ${describeCluster()}`);
    // The leader had compacted past what this peer had, so it must have been sent a snapshot.
    expect(n.status().snapshotIndex).toBeGreaterThan(stoppedAt);
    const expected = JSON.stringify([...leaderOf()!.node!.membership().get('api')!].sort());
    expect(JSON.stringify([...n.membership().get('api')!].sort())).toBe(expected);
    await waitFor(() => agreedLeader() !== undefined, describeCluster);
    // And it takes writes again.
    const r = await n.propose(put('after-restart'));
    expect(r.result.ok).toBe(true);
  });

  it('transfers leadership on request, and a graceful close hands over too', async () => {
    await waitFor(() => agreedLeader() !== undefined, describeCluster);
    const first = agreedLeader()!;
    const to = live().find((m) => m !== first)!.id;
    // Resolves once the old leader sees the new one: no election timeout involved.
    await expect(first.node!.transferLeadership(to, { timeoutMs: 10_000 })).resolves.toBe(to);
    expect(leaderOf()!.id).toBe(to);

    const leader = leaderOf()!;
    await leader.node!.close(); // transfers first (best effort), then stops
    leader.node = undefined;
    await waitFor(() => agreedLeader() !== undefined, describeCluster);
    expect(agreedLeader()!.id).not.toBe(leader.id);
    await startMember(leader);
    await waitFor(() => agreedLeader() !== undefined && live().length === 3, describeCluster);
  });

  it('a new peer joins as a learner, catches up, is promoted to voter, and can be removed', async () => {
    await waitFor(() => agreedLeader() !== undefined, describeCluster);
    const leader = agreedLeader()!;
    const m4: Member = { id: 'gw-4', address: `127.0.0.1:${await freePort()}`, dataDir: path.join(root, 'gw-4'), node: undefined, events: [] };
    // Not in its own bootstrap list → starts empty and waits to be added (etcd "existing" cluster).
    const n4 = new RaftNode({ ...options(m4), bootstrap: members.map((x) => ({ id: x.id, address: x.address })) });
    extra.push(n4);
    await n4.start();
    expect(n4.status().voters).toEqual([]);

    // Proposed through a follower: conf changes are forwarded to the leader like any proposal.
    const via = live().find((m) => m !== leader)!;
    await via.node!.addPeer('gw-4', m4.address, 'learner');
    const target = leader.node!.status().commitIndex;
    await waitFor(() => n4.status().appliedIndex >= target, () => `learner behind: ${JSON.stringify(pick(n4.status()))} ${describeCluster()}`);
    expect(n4.membership().get('api')?.has('u1')).toBe(true);
    expect(leader.node!.status().learners).toContain('gw-4');

    // Promote once the leader itself sees the learner caught up (its match, not the learner's own
    // applied index: the leader's ack may still be on its way, and the catch-up gate reads the leader's).
    await waitFor(() => {
      const st = agreedLeader()?.node!.status();
      const match = st?.peers.find((p) => p.id === 'gw-4')?.match ?? 0;
      return st !== undefined && match >= st.commitIndex;
    }, () => `leader does not see gw-4 caught up: ${describeCluster()}`);
    await agreedLeader()!.node!.addPeer('gw-4', m4.address, 'voter');
    await waitFor(() => n4.status().voters.includes('gw-4'), () => JSON.stringify(n4.status().voters));
    expect(agreedLeader()!.node!.status().voters).toEqual(['gw-1', 'gw-2', 'gw-3', 'gw-4']);
    const r = await n4.propose(put('from-gw-4'));
    expect(r.result.ok).toBe(true);

    await agreedLeader()!.node!.removePeer('gw-4');
    await waitFor(() => live().every((m) => !m.node!.status().voters.includes('gw-4')), describeCluster);
    await n4.close({ transferLeadership: false });
  });

  it('a peer with the wrong secret can neither join nor raise the term', async () => {
    await waitFor(() => agreedLeader() !== undefined, describeCluster);
    const before = agreedLeader()!;
    const termBefore = before.node!.status().term;
    const evilMember: Member = { id: 'gw-evil', address: `127.0.0.1:${await freePort()}`, dataDir: path.join(root, 'evil'), node: undefined, events: [] };
    // It claims to be a bootstrap voter of a four-node group and keeps campaigning.
    const evil = new RaftNode({
      ...options(evilMember),
      secret: 'a different secret',
      bootstrap: [...members, evilMember].map((x) => ({ id: x.id, address: x.address })),
    });
    extra.push(evil);
    await evil.start();
    // Let it fail its handshakes with every member repeatedly (several election timeouts).
    await waitFor(() => evil.transportStats().handshakeFailures >= 9, () => JSON.stringify(evil.transportStats()));
    // And the group tries to talk to it as a learner: it cannot be reached either.
    await expect(before.node!.addPeer('gw-evil', evilMember.address, 'learner', { timeoutMs: 5_000 })).resolves.toMatchObject({ index: expect.any(Number) });
    await waitFor(() => before.node!.transportStats().handshakeFailures > 0, () => JSON.stringify(before.node!.transportStats()));

    expect(evil.status().leader).toBeUndefined();
    expect(evil.status().appliedIndex).toBe(0);
    expect(evil.membership().size).toBe(0);
    const after = leaderOf();
    expect(after?.id).toBe(before.id);
    expect(after!.node!.status().term).toBe(termBefore);
    for (const m of live()) expect(m.node!.transportStats().delivered).toBeGreaterThan(0);
    const learnerProgress = after!.node!.status().peers.find((p) => p.id === 'gw-evil');
    expect(learnerProgress?.suffrage).toBe('learner');
    expect(learnerProgress?.match ?? 0).toBe(0);
  });
});
