/**
 * What a RaftNode does with what its peers send: the test plays peer "a" of a two-voter group with a real
 * PeerTransport (same secret, real sockets) and sends frames to the RaftNode "b".
 *  - Input the core refuses (a proposal without entries) is dropped and counted; the peer runs on.
 *  - A message that breaks a core invariant (an append from the leader overwriting an entry b already
 *    committed, which a correct leader never sends) stops b loudly (fail closed, visible in status) instead of
 *    being logged and ignored: etcd panics there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftNode } from '../../src/cluster/index.js';
import { decodeMessage, encodeMessage } from '../../src/cluster/codec.js';
import type { Message } from '../../src/cluster/raft/types.js';
import { deriveClusterId } from '../../src/cluster/identity.js';
import { PeerTransport, staticIdentity } from '../../src/cluster/transport.js';

const SECRET = 'peer-input-secret-0123456789';
let dir: string;
let fake: PeerTransport;
let node: RaftNode;
/** What the fake peer does with each message b sends it. */
let onFake: (m: Message) => void;

async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mg-peer-input-'));
  onFake = () => undefined;
  // The fake peer presents the cluster id b derives from the bootstrap list (known once a has a port).
  let clusterId = Buffer.alloc(16);
  fake = new PeerTransport({ id: 'a', listen: '127.0.0.1:0', secret: SECRET, identity: { ...staticIdentity(), clusterId: () => clusterId }, onMessage: (_from, payload) => onFake(decodeMessage(payload)) });
  const fa = await fake.start();
  const bootstrap = [{ id: 'a', address: `127.0.0.1:${fa.port}` }, { id: 'b', address: '127.0.0.1:1' }];
  clusterId = deriveClusterId(bootstrap);
  // An election tick of an hour: b never campaigns on its own, so only the test's messages move it.
  node = new RaftNode({ id: 'b', listen: '127.0.0.1:0', dataDir: dir, secret: SECRET, tickMs: 3_600_000, bootstrap });
  await node.start();
  fake.setPeer('b', `127.0.0.1:${node.listenAddress().port}`);
});

afterEach(async () => {
  await node.close();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

describe('peer input reaching the Raft core', () => {
  it('drops and counts a message the core refuses, and keeps running', async () => {
    // A heartbeat from a in term 3 makes b its follower; then a proposal with no entries, which the
    // core refuses as invalid input (ErrInvalidMessage), not as a broken invariant.
    fake.send('b', encodeMessage({ type: 'MsgHeartbeat', from: 'a', to: 'b', term: 3, commit: 0 }));
    await waitFor(() => node.status().leader === 'a', () => JSON.stringify(node.status()));
    fake.send('b', encodeMessage({ type: 'MsgProp', from: 'a', to: 'b', term: 3, entries: [] }));
    await waitFor(() => node.status().rejectedMessages >= 1, () => JSON.stringify(node.status()));
    expect(node.status().failed).toBeUndefined();
    expect(node.status().role).toBe('follower');
  });

  it('stops loudly when a message breaks a core invariant, and says why in status', async () => {
    fake.send('b', encodeMessage({ type: 'MsgHeartbeat', from: 'a', to: 'b', term: 3, commit: 0 }));
    await waitFor(() => node.status().leader === 'a', () => JSON.stringify(node.status()));
    // Entry 1 (an empty leader entry) is appended and committed; then a MsgApp that replaces it with
    // another term's entry: a leader never overwrites a committed entry (Leader Completeness).
    const empty = new Uint8Array(0);
    fake.send('b', encodeMessage({ type: 'MsgApp', from: 'a', to: 'b', term: 3, index: 0, logTerm: 0, commit: 1, entries: [{ index: 1, term: 3, type: 'normal', data: empty }] }));
    await waitFor(() => node.status().appliedIndex === 1, () => JSON.stringify(node.status()));
    // (prev index 1 at term 3 matches, but the entry carried is index 1 again, at term 2.)
    fake.send('b', encodeMessage({ type: 'MsgApp', from: 'a', to: 'b', term: 3, index: 1, logTerm: 3, commit: 1, entries: [{ index: 1, term: 2, type: 'normal', data: empty }] }));
    await waitFor(() => node.status().failed !== undefined, () => JSON.stringify(node.status()));
    expect(node.status().failed).toMatch(/invariant violated by a MsgApp from a .*conflicts with committed entry/);
    expect(node.status().hasQuorum).toBe(false);
    await expect(node.propose({ op: 'put-upstream', service: 'web', id: 'x', url: 'http://127.0.0.1:1' })).rejects.toMatchObject({ message: expect.stringMatching(/invariant/) });
  });

  it('forgets a read that timed out while waiting for its index to be applied', async () => {
    fake.send('b', encodeMessage({ type: 'MsgHeartbeat', from: 'a', to: 'b', term: 3, commit: 0 }));
    await waitFor(() => node.status().leader === 'a', () => JSON.stringify(node.status()));
    await waitFor(() => node.status().peers.find((p) => p.id === 'a')?.connected === true, () => 'b to dial a');
    // The leader confirms the read at index 1000, which b has not applied (and never will here).
    onFake = (m) => {
      if (m.type === 'MsgReadIndex') fake.send('b', encodeMessage({ type: 'MsgReadIndexResp', from: 'a', to: 'b', term: 3, index: 1000, context: m.context }));
    };
    const awaiting = (node as unknown as { readsAwaitingApply: Map<string, unknown> }).readsAwaitingApply;
    const read = node.readIndex({ timeoutMs: 300 });
    await waitFor(() => awaiting.size === 1, () => 'the read to get its index');
    await expect(read).rejects.toMatchObject({ code: 'MG_ERR_RAFT_TIMEOUT' });
    expect(awaiting.size).toBe(0);
  });
});
