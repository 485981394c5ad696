/**
 * The Raft port against hostile input, with real meshgate peer processes and raw sockets (issue 13, and
 * the identity part of issue 19): slow-drip and slot-holding attacks leave RSS flat and a restarted
 * peer rejoins; a non-member holding the secret cannot move a term; a peer of another cluster is
 * refused; a peer whose data dir was wiped refuses to start, and comes back as a new member.
 * The last test is the control: the same forged heartbeat under a member's id does move the term.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/cluster/raft/types.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { SECRET, TestCluster, type RaftStatus } from '../helpers/cluster.js';
import { startPeer, waitFor } from '../helpers/meshgate.js';
import { forgedPeer, rawAttack, type Attack } from '../helpers/raft-attacker.js';

let backend: Backend;
let cluster: TestCluster;
const IDS = ['gw-1', 'gw-2', 'gw-3'];

interface Status extends RaftStatus {
  transport: RaftStatus['transport'] & Record<string, number>;
}

beforeAll(async () => {
  backend = await startBackend('b1');
  cluster = new TestCluster(() => `
routes:
  - { match: { pathPrefix: / }, service: api }
services:
  api:
    balancer: round-robin
    upstreams:
      - { id: b1, url: ${backend.url} }
`);
  await cluster.allocate([...IDS, 'other']);
  await Promise.all(IDS.map((id) => cluster.start(id, IDS)));
  await cluster.leader();
});

afterAll(async () => {
  await cluster?.stopAll();
  await backend?.close();
});

const status = async (id: string): Promise<Status> => (await cluster.raft(id)) as Status;
const clusterIdOf = (id: string): Buffer => Buffer.from((JSON.parse(readFileSync(join(cluster.spec(id).dir, 'data', 'cluster.json'), 'utf8')) as { clusterId: string }).clusterId, 'hex');
const heartbeat = (from: string, to: string, term: number): Message => ({ type: 'MsgHeartbeat', from, to, term, commit: 0 });

/**
 * Highest RSS of each peer over `ms`, sampled every 250 ms. An idle peer's RSS alone drifts by 20–30 MB
 * in its first minute (V8 touching the pages of its young generation, heap in use flat at 15–28 MB),
 * so "where it started" is the same window's worth of RSS without the attack, just before it.
 */
async function peakRssMb(ids: string[], ms: number): Promise<number[]> {
  const peak = ids.map(() => 0);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    ids.forEach((id, i) => (peak[i] = Math.max(peak[i]!, rssMb(id))));
    await new Promise((r) => setTimeout(r, 250));
  }
  return peak;
}

/**
 * Proxy traffic first, as on a peer in service: it makes V8 grow and touch its young generation, the
 * largest part of that drift, before the quiet window.
 */
async function warmUp(ids: string[], ms: number): Promise<void> {
  const until = Date.now() + ms;
  await Promise.all(ids.flatMap((id) => Array.from({ length: 8 }, async () => {
    while (Date.now() < until) await (await fetch(`${cluster.procs.get(id)!.url}/id`)).text();
  })));
}

function rssMb(id: string): number {
  const pid = cluster.procs.get(id)!.proc.pid!;
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

async function put(via: string, upId: string): Promise<Response> {
  return cluster.admin(via, `/api/v1/services/api/upstreams/${upId}`, { method: 'PUT', body: JSON.stringify({ url: backend.url }) });
}

describe('the Raft port under hostile input', () => {
  it('every bootstrap peer derived the same cluster id and persisted it', () => {
    const ids = IDS.map((id) => clusterIdOf(id).toString('hex'));
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a non-member id holding the secret and the cluster id cannot move any peer\'s term', async () => {
    const leader = await cluster.leader();
    const before = await Promise.all(IDS.map(status));
    const evilTerm = Math.max(...before.map((s) => s.term)) + 100;
    const cid = clusterIdOf('gw-1');
    for (const id of IDS) {
      const r = await forgedPeer({ port: cluster.spec(id).raftPort, secret: SECRET, from: 'gw-removed', to: id, clusterId: cid, messages: [heartbeat('gw-removed', id, evilTerm)] });
      expect(r).toBe('closed');
    }
    for (const id of IDS) {
      const st = await status(id);
      expect(st.term).toBeLessThan(evilTerm);
      expect(st.transport.droppedNonMember).toBeGreaterThanOrEqual(1);
      const metrics = await (await cluster.admin(id, '/metrics')).text();
      expect(Number(/^meshgate_raft_transport_dropped_frames_total\{reason="non-member"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    }
    expect(await cluster.leader()).toBe(leader);
  });

  it('a peer of another cluster (same secret, same ids) is refused on the wire and at start', async () => {
    const leader = await cluster.leader();
    const termBefore = (await status(leader)).term;
    // On the wire: a member's id and the secret, but another cluster id.
    const other = Buffer.alloc(16, 0x42);
    for (const id of IDS) {
      const from = IDS.find((x) => x !== id)!;
      expect(await forgedPeer({ port: cluster.spec(id).raftPort, secret: SECRET, from, to: id, clusterId: other, messages: [heartbeat(from, id, termBefore + 100)] })).toBe('closed');
      expect((await status(id)).transport.droppedWrongCluster).toBeGreaterThanOrEqual(1);
    }
    expect((await status(leader)).term).toBeLessThan(termBefore + 100);
    // A real process: "gw-1" of a cluster bootstrapped at another address, pointed at our gw-2 and gw-3.
    const spec = cluster.spec('other');
    const boot = [`{ id: gw-1, address: 127.0.0.1:${spec.raftPort} }`, ...['gw-2', 'gw-3'].map((id) => `{ id: ${id}, address: 127.0.0.1:${cluster.spec(id).raftPort} }`)];
    const yaml = cluster.configFor(spec, []).replace(/id: other/, 'id: gw-1').replace('bootstrap: []', `bootstrap: [${boot.join(', ')}]`);
    const p = await startPeer(yaml, { dir: spec.dir, dataPort: spec.dataPort, adminPort: spec.adminPort, waitReady: false });
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    expect(p.output()).toMatch(/belongs to cluster [0-9a-f]{32}, but this peer's cluster.bootstrap derives/);
  });

  it('slow-drip and slot-holding attacks: RSS stays flat and a restarted peer rejoins at once', async () => {
    const leader = await cluster.leader();
    const victim = IDS.find((i) => i !== leader)!;
    const watched = IDS.filter((i) => i !== victim);
    const ports = IDS.map((id) => cluster.spec(id).raftPort);
    // RAFT_ATTACK_SECONDS=25 reproduces the 25-second run (the default keeps the suite short).
    const windowMs = Number(process.env.RAFT_ATTACK_SECONDS ?? 8) * 1000;
    await warmUp(watched, 4000);
    // Each attack is compared with a quiet window of the same length just before it: first the
    // reproduction of issue 13 alone (60 connections announcing 4 MiB, one byte every 2 ms: the issue dripped 1.26 MB in 25 s), then
    // everything at once: that drip, a drip under the pre-authentication limit (held until the
    // handshake timeout) and 100 silent holders. A closed connection is reopened 1 s later.
    const attacks: Attack[] = [];
    try {
      const quiet1 = await peakRssMb(watched, windowMs);
      const drip = rawAttack(ports, { count: 60, announce: 4 * 1024 * 1024, dripMs: 2 });
      attacks.push(drip);
      const rssDrip = await peakRssMb(watched, windowMs);
      drip.stop();
      const quiet2 = await peakRssMb(watched, windowMs);
      attacks.push(
        rawAttack(ports, { count: 60, announce: 4 * 1024 * 1024, dripMs: 2 }),
        rawAttack(ports, { count: 30, announce: 4000, dripMs: 20 }),
        rawAttack(ports, { count: 100, announce: 0, dripMs: 0 }),
      );
      const rssAll = await peakRssMb(watched, windowMs);
      expect(attacks.slice(1).every((a) => a.opened() > ports.length * 30)).toBe(true);
      const show = (from: number[], to: number[]): string => watched.map((id, i) => `${id} ${from[i]!.toFixed(1)}→${to[i]!.toFixed(1)} MB`).join(', ');
      console.log(`peak RSS over ${windowMs / 1000} s windows: quiet → drip: ${show(quiet1, rssDrip)}; quiet → all attacks: ${show(quiet2, rssAll)}`);
      for (const [i, id] of watched.entries()) {
        expect(rssDrip[i]! - quiet1[i]!, `${id} peak RSS under the drip ${quiet1[i]!.toFixed(1)} → ${rssDrip[i]!.toFixed(1)} MB`).toBeLessThan(20);
        expect(rssAll[i]! - quiet2[i]!, `${id} peak RSS under all attacks ${quiet2[i]!.toFixed(1)} → ${rssAll[i]!.toFixed(1)} MB`).toBeLessThan(20);
      }
      await cluster.kill(victim);
      await cluster.start(victim, IDS);
      const t0 = Date.now();
      const target = (await status(leader)).commitIndex;
      await waitFor(async () => {
        const st = await status(victim);
        return st?.leader === leader && st.commitIndex >= target;
      }, 2000, () => `${victim} did not rejoin within 2 s of its restart`);
      const rejoinMs = Date.now() - t0;
      // And it commits: a write through the restarted peer, during the attack.
      expect((await put(victim, `during-${Date.now()}`)).status).toBe(200);
      const st = await status(leader);
      expect((st.transport.handshakeTimeouts ?? 0) + (st.transport.evictedPending ?? 0)).toBeGreaterThan(0);
      expect(st.transport.droppedOversize).toBeGreaterThan(0);
      console.log(`rejoin ${rejoinMs} ms; attack connections ${attacks.map((a) => a.opened()).join('/')}`);
    } finally {
      for (const a of attacks) a.stop();
    }
  });

  it('a peer whose data dir was wiped refuses to start, and comes back as a new member as the error says', async () => {
    const leader = await cluster.leader();
    const victim = IDS.find((i) => i !== leader)!;
    await cluster.kill(victim);
    rmSync(join(cluster.spec(victim).dir, 'data'), { recursive: true, force: true });
    const p = await cluster.start(victim, IDS, { waitReady: false });
    expect((await p.exited).code).toBe(1);
    expect(p.output()).toContain(`has accepted connections from ${victim} before`);
    expect(p.output()).toContain(`DELETE /api/v1/cluster/peers/${victim}`);
    // The rule's way back: remove it, add it as a learner, start it as a joiner (not in its bootstrap list).
    expect((await cluster.admin(leader, `/api/v1/cluster/peers/${victim}`, { method: 'DELETE' })).status).toBe(200);
    const address = `127.0.0.1:${cluster.spec(victim).raftPort}`;
    expect((await cluster.admin(leader, '/api/v1/cluster/peers', { method: 'POST', body: JSON.stringify({ id: victim, address, role: 'learner' }) })).status).toBe(200);
    await cluster.start(victim, IDS.filter((i) => i !== victim));
    const target = (await status(leader)).commitIndex;
    await waitFor(async () => ((await status(victim))?.appliedIndex ?? 0) >= target, 15_000, () => `${victim} did not catch up as a learner`);
    expect(clusterIdOf(victim)).toEqual(clusterIdOf(leader));
    expect((await cluster.admin(leader, '/api/v1/cluster/peers', { method: 'POST', body: JSON.stringify({ id: victim, address, role: 'voter' }) })).status).toBe(200);
    await waitFor(async () => (await status(leader)).voters.includes(victim), 10_000);
    expect((await put(victim, `after-rejoin-${Date.now()}`)).status).toBe(200);
  });

  it('control: the same forged heartbeat under a member\'s id does move the term', async () => {
    const leader = await cluster.leader();
    const from = IDS.find((i) => i !== leader)!;
    const evilTerm = (await status(leader)).term + 100;
    await forgedPeer({ port: cluster.spec(leader).raftPort, secret: SECRET, from, to: leader, clusterId: clusterIdOf(leader), messages: [heartbeat(from, leader, evilTerm)], lingerMs: 300 });
    await waitFor(async () => ((await status(leader))?.term ?? 0) >= evilTerm, 5000, () => 'the member-id heartbeat did not raise the term: the refusals above prove nothing');
  });
});
