/**
 * Cluster identity: the derived cluster id, the identity file (durable, refused when damaged), and the
 * first-boot rule case by case.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterIdentity, decideFirstBoot, deriveClusterId, IDENTITY_FILE, type ProbeAnswer } from '../../../src/cluster/identity.js';
import { noopLogger } from '../../../src/cluster/logger.js';
import { NodeIdentity, REMOVED_GRACE_MS } from '../../../src/cluster/node-identity.js';
import { realNodeIo } from '../../../src/cluster/node-io.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'meshgate-identity-'));
  dirs.push(d);
  return d;
}

const BOOT = [
  { id: 'gw-1', address: '10.0.0.1:7000' },
  { id: 'gw-2', address: '10.0.0.2:7000' },
  { id: 'gw-3', address: '10.0.0.3:7000' },
];

describe('deriveClusterId', () => {
  it('is the same for every order of the bootstrap list, and differs when an id or an address does', () => {
    const id = deriveClusterId(BOOT);
    expect(id).toHaveLength(16);
    expect(deriveClusterId([...BOOT].reverse())).toEqual(id);
    expect(deriveClusterId([...BOOT.slice(1), { id: 'gw-1', address: '10.0.0.9:7000' }])).not.toEqual(id);
    expect(deriveClusterId([...BOOT.slice(1), { id: 'gw-9', address: '10.0.0.1:7000' }])).not.toEqual(id);
  });
});

describe('ClusterIdentity', () => {
  it('persists the cluster id and the heard-from record; a removed peer is forgotten', async () => {
    const d = await dir();
    const a = await ClusterIdentity.open(d);
    expect(a.clusterId).toBeUndefined();
    await a.setClusterId(deriveClusterId(BOOT));
    await Promise.all([a.recordHeard('gw-2'), a.recordHeard('gw-3'), a.recordHeard('gw-2')]);
    const b = await ClusterIdentity.open(d);
    expect(b.clusterId).toEqual(deriveClusterId(BOOT));
    expect([b.hasHeard('gw-2'), b.hasHeard('gw-3'), b.hasHeard('gw-4')]).toEqual([true, true, false]);
    await b.forget('gw-3');
    expect((await ClusterIdentity.open(d)).hasHeard('gw-3')).toBe(false);
    expect(JSON.parse(await readFile(join(d, IDENTITY_FILE), 'utf8'))).toMatchObject({ format: 1, heard: ['gw-2'] });
  });

  it('refuses to change a cluster id once set', async () => {
    const a = await ClusterIdentity.open(await dir());
    await a.setClusterId(Buffer.alloc(16, 1));
    await a.setClusterId(Buffer.alloc(16, 1));
    await expect(a.setClusterId(Buffer.alloc(16, 2))).rejects.toThrow(/refusing to change/);
  });

  it('a damaged identity file stops the start with the file named', async () => {
    const d = await dir();
    await writeFile(join(d, IDENTITY_FILE), '{"format":1,"clusterId":"zz","heard":[]}');
    await expect(ClusterIdentity.open(d)).rejects.toThrow(/cluster\.json is not a format-1 identity file/);
    await writeFile(join(d, IDENTITY_FILE), '{"format":1,');
    await expect(ClusterIdentity.open(d)).rejects.toThrow(/unreadable/);
  });
});

describe('decideFirstBoot', () => {
  const cid = deriveClusterId(BOOT);
  const ans = (o: Partial<Exclude<ProbeAnswer, 'unreachable'>> = {}): ProbeAnswer => ({ clusterId: cid, term: 0, heardFromYou: false, ...o });
  const decide = (answers: Record<string, ProbeAnswer>, derived: Buffer | null = cid) => decideFirstBoot('gw-1', derived ?? undefined, new Map(Object.entries(answers)));

  it('all fresh together (nobody bootstrapped, or everybody at term 0): start', () => {
    expect(decide({ 'gw-2': 'unreachable', 'gw-3': 'unreachable' }).action).toBe('start');
    expect(decide({ 'gw-2': ans({ clusterId: undefined }), 'gw-3': 'unreachable' }).action).toBe('start');
    expect(decide({ 'gw-2': ans(), 'gw-3': ans() }).action).toBe('start');
  });

  it('a late first start: the cluster exists, everybody answered, nobody heard from us: start', () => {
    expect(decide({ 'gw-2': ans({ term: 4 }), 'gw-3': ans({ term: 4 }) }).action).toBe('start');
  });

  it('somebody heard from us before: refuse, saying how to re-add', () => {
    const d = decide({ 'gw-2': ans({ term: 4, heardFromYou: true }), 'gw-3': 'unreachable' });
    expect(d.action).toBe('refuse');
    expect(d.action === 'refuse' && d.reason).toMatch(/DELETE \/api\/v1\/cluster\/peers\/gw-1/);
  });

  it('the cluster exists and somebody is silent: wait (the silent one may hold our vote)', () => {
    const d = decide({ 'gw-2': ans({ term: 4 }), 'gw-3': 'unreachable' });
    expect(d).toMatchObject({ action: 'wait', missing: ['gw-3'] });
  });

  it('another cluster id: refuse, before looking at heard-from (that would be another peer with our id)', () => {
    const d = decide({ 'gw-2': ans({ clusterId: Buffer.alloc(16, 9), heardFromYou: true, term: 3 }), 'gw-3': ans() });
    expect(d.action === 'refuse' && d.reason).toMatch(/belongs to cluster 09090909/);
  });

  it('a joiner (no derived id) only refuses on heard-from', () => {
    expect(decide({ 'gw-2': ans({ clusterId: Buffer.alloc(16, 9), term: 3 }), 'gw-3': ans({ term: 3 }) }, null).action).toBe('start');
    expect(decide({ 'gw-2': ans({ term: 3, heardFromYou: true }) }, null).action).toBe('refuse');
  });
});

describe('NodeIdentity admission (who may send frames)', () => {
  it('admits the applied configuration and the address book, refuses other ids, and a removed peer after its grace', async () => {
    // A lagging learner: its snapshot's configuration predates the current leader gw-9, which it knows
    // from its address book (cluster.bootstrap); without the book it refused the leader for ever.
    let now = 0;
    const book = new Set(['gw-9']);
    const id = await NodeIdentity.open(await dir(), noopLogger, { ...realNodeIo, now: () => now });
    const t = id.forTransport({ term: () => 3, confState: () => ({ voters: ['gw-1', 'gw-2'], learners: ['gw-3'] }), known: (p) => book.has(p) });
    expect(['gw-1', 'gw-2', 'gw-3', 'gw-9'].map((p) => t.isMember(p))).toEqual([true, true, true, true]);
    expect(t.isMember('gw-removed')).toBe(false);
    // Applying a removal drops the peer from the book (node.ts) and starts its grace here.
    book.delete('gw-9');
    id.forget('gw-9');
    now += REMOVED_GRACE_MS - 1;
    expect(t.isMember('gw-9')).toBe(true);
    now += 2;
    expect(t.isMember('gw-9')).toBe(false);
  });
});
