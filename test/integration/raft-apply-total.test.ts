/**
 * Apply is total (issue 13): a committed entry the state machine refuses — a conf change with port
 * 99999 (it used to throw in the transport's parser inside apply and stop the driver for good), an entry
 * whose URL has a fragment, an entry from another version with a field this one does not know, bytes
 * that are not JSON — is recorded as rejected, the entries after it are applied, and the peer restarts
 * (from its log and from a snapshot taken after the bad entries) with the same state.
 */
import { logStateChanges } from '../../src/observability/state-log.js';
import type { Logger } from '../../src/observability/log.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftNode, type RaftNodeOptions } from '../../src/cluster/index.js';
import { EventBus } from '../../src/observability/events.js';

let dir: string;
const nodes: RaftNode[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mg-raft-total-'));
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  await rm(dir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function start(extra: Partial<RaftNodeOptions> = {}): Promise<RaftNode> {
  const n = new RaftNode({ id: 'solo', listen: '127.0.0.1:0', dataDir: dir, secret: 's3cret-s3cret-s3cret', bootstrap: [{ id: 'solo', address: '127.0.0.1:1' }], tickMs: 20, ...extra });
  nodes.push(n);
  await n.start();
  await waitFor(() => n.status().role === 'leader', () => JSON.stringify(n.status()));
  return n;
}

/** The core under the driver, to append what no front door of this version would (an older peer, a bug). */
function core(n: RaftNode): { propose(data: Uint8Array): void; proposeConfChange(cc: unknown): void } {
  return (n as unknown as { raw: { propose(data: Uint8Array): void; proposeConfChange(cc: unknown): void } }).raw;
}
const kick = (n: RaftNode) => (n as unknown as { scheduleReady(): void }).scheduleReady();
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

async function appendBadEntries(n: RaftNode): Promise<void> {
  // A leader takes conf changes once its own-term entry is applied.
  await waitFor(() => n.status().appliedIndex >= 1 && n.status().appliedIndex === n.status().commitIndex, () => JSON.stringify(n.status()));
  core(n).proposeConfChange({ kind: 'add-learner', node: 'gw-9', address: '127.0.0.1:99999' });
  kick(n);
  await waitFor(() => n.status().rejectedEntries.total >= 1, () => JSON.stringify(n.status()));
  core(n).propose(bytes({ c: { op: 'put-upstream', service: 'web', id: 'frag', url: 'http://127.0.0.1:31003/#x' } }));
  core(n).propose(bytes({ c: { op: 'put-upstream', service: 'web', id: 'newer', url: 'http://127.0.0.1:31004', tags: ['from-a-newer-version'] } }));
  core(n).propose(bytes({ c: { op: 'put-upstream', service: 'web', id: 'older', url: 'http://127.0.0.1:31005', weight: 500_000 } }));
  core(n).propose(bytes('not json {'));
  kick(n);
  await waitFor(() => n.status().rejectedEntries.total >= 5, () => JSON.stringify(n.status().rejectedEntries));
}

describe('RaftNode apply is total', () => {
  it('records refused entries, applies the ones after them, and restarts from the log', async () => {
    const bus = new EventBus();
    const seen: unknown[] = [];
    bus.subscribe((ev) => ev.type === 'raft:entry-rejected' && seen.push(ev.data));
    // The peer's state-change log writes one warn line per refused entry from the same event.
    const lines: string[] = [];
    const capture = (level: string) => (_o: unknown, msg?: string) => lines.push(`${level} ${msg ?? ''}`);
    logStateChanges(bus, { info: capture('info'), warn: capture('warn'), error: capture('error') } as unknown as Logger);
    const metric: string[] = [];
    const a = await start({ events: bus, timings: { entryRejected: (r) => metric.push(r.kind) } });
    await appendBadEntries(a);
    const after = await a.propose({ op: 'put-upstream', service: 'web', id: 'good', url: 'http://127.0.0.1:31006', weight: 2 });
    expect(after.result.ok).toBe(true);
    const st = a.status();
    expect(st.failed).toBeUndefined();
    expect(st.appliedIndex).toBe(after.index);
    expect(st.learners).toEqual([]); // the refused conf change was not applied to the core either
    expect(st.rejectedEntries.recent.map((r) => r.kind)).toEqual(['conf-change', 'entry', 'entry', 'entry', 'entry']);
    expect(st.rejectedEntries.recent[0]!.reason).toMatch(/port 99999 is out of range/);
    expect(st.rejectedEntries.recent[1]!.reason).toMatch(/fragment/);
    expect(st.rejectedEntries.recent[2]!.reason).toMatch(/unknown field.*tags/);
    expect(st.rejectedEntries.recent[3]!.reason).toMatch(/weight must be an integer in 1\.\.10000/);
    expect(seen).toHaveLength(5);
    expect(lines.filter((l) => /^warn raft: committed (entry|conf-change) at index \d+ refused and skipped/.test(l))).toHaveLength(5);
    expect(metric).toEqual(['conf-change', 'entry', 'entry', 'entry', 'entry']);
    expect([...(a.membership().get('web')?.keys() ?? [])]).toEqual(['good']);
    // Conf changes still work after a refused one (the core is not left waiting on it), and the driver's
    // own front door refuses the bad address before it reaches the log.
    await expect(a.addPeer('gw-9', '127.0.0.1:99999', 'learner')).rejects.toMatchObject({ code: 'MG_ERR_RAFT_BAD_COMMAND' });
    await a.addPeer('gw-8', '127.0.0.1:1', 'learner');
    expect(a.status().learners).toEqual(['gw-8']);
    await a.close();
    nodes.length = 0;

    const b = await start();
    await waitFor(() => b.status().appliedIndex >= after.index, () => JSON.stringify(b.status()));
    expect(b.status().failed).toBeUndefined();
    expect(b.status().rejectedEntries.total).toBe(5); // the same entries, refused the same way on replay
    expect(b.status().learners).toEqual(['gw-8']);
    expect(b.membership().get('web')?.get('good')).toEqual({ url: 'http://127.0.0.1:31006', weight: 2, state: 'active' });
    const more = await b.propose({ op: 'delete-upstream', service: 'web', id: 'good' });
    expect(more.result.ok).toBe(true);
  });

  it('restarts from a snapshot taken after refused entries, and refuses a snapshot it cannot read without stopping', async () => {
    const a = await start({ snapshotEvery: 3, trailingEntries: 1 });
    await appendBadEntries(a);
    const lastBad = a.status().rejectedEntries.recent.at(-1)!.index;
    await a.propose({ op: 'put-upstream', service: 'web', id: 'good', url: 'http://127.0.0.1:31006' });
    const last = await a.propose({ op: 'put-upstream', service: 'web', id: 'good2', url: 'http://127.0.0.1:31007' });
    await waitFor(() => a.status().snapshotIndex >= lastBad, () => JSON.stringify(a.status()));
    await a.close();
    nodes.length = 0;
    const b = await start({ snapshotEvery: 3, trailingEntries: 1 });
    await waitFor(() => b.status().appliedIndex >= last.index, () => JSON.stringify(b.status()));
    expect(b.status().failed).toBeUndefined();
    expect([...(b.membership().get('web')?.keys() ?? [])].sort()).toEqual(['good', 'good2']);

    // A snapshot from a version this one cannot read: recorded, state kept, the driver goes on.
    const restore = (b as unknown as { restoreSnapshot(s: unknown, diff: boolean): unknown }).restoreSnapshot.bind(b);
    const table = Buffer.from(JSON.stringify({ peers: { 'gw-9': '127.0.0.1:99999' } }));
    const head = Buffer.alloc(5);
    head.writeUInt8(1, 0);
    head.writeUInt32LE(table.length, 1);
    const bad = Buffer.concat([head, table, Buffer.from('{"v": 2, "services": "from a newer version"}')]);
    expect(() => restore({ metadata: { index: b.status().appliedIndex, term: b.status().term, confState: { voters: ['solo'], learners: [] } }, data: bad }, true)).not.toThrow();
    expect(b.status().rejectedEntries.recent.at(-1)).toMatchObject({ kind: "snapshot" });
    expect(b.status().rejectedEntries.recent.at(-1)!.reason).toMatch(/version 2 is not supported/);
    expect(b.status().peers.map((p) => p.id)).not.toContain('gw-9'); // an address no dialer could use is left out
    expect([...(b.membership().get('web')?.keys() ?? [])].sort()).toEqual(['good', 'good2']);
    expect((await b.propose({ op: 'delete-upstream', service: 'web', id: 'good' })).result.ok).toBe(true);
  });
});
