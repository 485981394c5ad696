// Macro bench "raft-commit" (issue 6, raft.md R-H1/R-H2/R-H4): commit latency and throughput of the
// embedded Raft group. Three RaftNodes in THIS process on loopback TCP, fsync on, ~256-byte membership
// commands proposed on the leader; a write counts when the leader has applied it (commit + apply).
// Also prints this machine's fdatasync p50/p99 for a 256-byte append so results can be compared (R-H4).
// Caveat: the three peers and the proposer share one event loop, so figures are pessimistic versus one
// process per peer (the multi-process bench comes with the meshgate binary).
// Invariant: every node and temp dir is closed/removed even when a case fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RaftNode, type MembershipCommand } from '../../src/cluster/index.js';
import { Histogram } from '../lib/histogram.js';
import { fdatasyncSamplesMs } from '../lib/fsync-probe.js';
import { freePort } from '../lib/procs.js';
import { fmtMs, fmtRps, markdownTable } from '../lib/table.js';
import type { BenchContext, MacroResult, ResultRow } from '../lib/types.js';

/** R-H2: 64 concurrent proposers. */
const CONCURRENCY = 64;
/** Samples for the fdatasync probe: enough for a stable p99. */
const FSYNC_SAMPLES = 500;

async function fdatasyncProbe(dir: string): Promise<Histogram> {
  const h = new Histogram();
  for (const ms of await fdatasyncSamplesMs(dir, FSYNC_SAMPLES)) h.record(ms * 1000);
  return h;
}

let seq = 0;
/** A put-upstream command whose JSON entry is about 256 bytes (R-H: 256-byte commands). */
function command(): MembershipCommand {
  seq++;
  return { op: 'put-upstream', service: 'bench', id: `u${seq % 500}`, url: `http://${'p'.repeat(60)}.${'p'.repeat(60)}.h${seq}.example:8080`, weight: 1 + (seq % 7), clientId: 'bench', seq };
}

export async function run(ctx: BenchContext): Promise<MacroResult> {
  const title = `Raft commit — 3 in-process peers on loopback, fsync on, ~256 B commands, ${ctx.durationSec} s per case`;
  const dir = await mkdtemp(join(ctx.tmpDir, 'raft-'));
  const nodes: RaftNode[] = [];
  const rows: ResultRow[] = [];
  try {
    const fsync = await fdatasyncProbe(dir);
    const ids = ['r1', 'r2', 'r3'];
    const peers = await Promise.all(ids.map(async (id) => ({ id, address: `127.0.0.1:${await freePort()}` })));
    for (const p of peers) {
      // 50 ms ticks: the research note's latency-oriented timing (R-G1); irrelevant to steady-state commits.
      const n = new RaftNode({ id: p.id, listen: p.address, dataDir: join(dir, p.id), secret: 'bench-secret', bootstrap: peers, tickMs: 50, snapshotEvery: 10_000, trailingEntries: 5_000 });
      await n.start();
      nodes.push(n);
    }
    const deadline = Date.now() + 30_000;
    let leader: RaftNode | undefined;
    while (!(leader = nodes.find((n) => n.status().role === 'leader')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!leader) throw new Error('no leader elected within 30 s');
    ctx.log('raft-commit: leader elected; warming up');
    const warmEnd = Date.now() + ctx.warmupSec * 1000;
    while (Date.now() < warmEnd) await leader.propose(command());

    ctx.log('raft-commit: one sequential proposer');
    const seqHist = new Histogram();
    let end = Date.now() + ctx.durationSec * 1000;
    while (Date.now() < end) {
      const t = performance.now();
      await leader.propose(command());
      seqHist.record((performance.now() - t) * 1000);
    }

    ctx.log(`raft-commit: ${CONCURRENCY} concurrent proposers`);
    const parHist = new Histogram();
    end = Date.now() + ctx.durationSec * 1000;
    const started = performance.now();
    const l = leader;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (Date.now() < end) {
          const t = performance.now();
          await l.propose(command());
          parHist.record((performance.now() - t) * 1000);
        }
      }),
    );
    const elapsedS = (performance.now() - started) / 1000;

    const ms = (us: number): number => us / 1000;
    rows.push(
      { case: 'fdatasync 256 B (this disk)', ops: fsync.count, 'ops/s': null, p50Ms: ms(fsync.percentile(50)), p99Ms: ms(fsync.percentile(99)) },
      { case: '1 sequential proposer', ops: seqHist.count, 'ops/s': seqHist.count / ctx.durationSec, p50Ms: ms(seqHist.percentile(50)), p99Ms: ms(seqHist.percentile(99)) },
      { case: `${CONCURRENCY} concurrent proposers`, ops: parHist.count, 'ops/s': parHist.count / elapsedS, p50Ms: ms(parHist.percentile(50)), p99Ms: ms(parHist.percentile(99)) },
    );
  } finally {
    await Promise.all(nodes.map((n) => n.close({ transferLeadership: false })));
    await rm(dir, { recursive: true, force: true });
  }
  const table = markdownTable(
    ['case', 'ops', 'commits/s', 'p50 ms', 'p99 ms'],
    rows.map((r) => [String(r.case), Number(r.ops), r['ops/s'] === null ? '—' : fmtRps(Number(r['ops/s'])), fmtMs(Number(r.p50Ms)), fmtMs(Number(r.p99Ms))]),
  );
  return { title, table: `${table}\n\nBars (raft.md R-H1/R-H2): sequential p50 ≤ 2 ms, p99 ≤ 10 ms; ≥ 5,000 commits/s with ${CONCURRENCY} proposers. Node ${process.version}.`, rows };
}
