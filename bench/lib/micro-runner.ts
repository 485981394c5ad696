// Runs one micro bench in a fresh process: `node micro-runner.js '{"file":"/abs/bench/micro/x.js"}'`.
// A fresh process per micro bench keeps one bench's JIT feedback, heap and leftover timers out of
// the next one's figures, and lets run.ts cut off a bench that hangs.
// Prints `{"rows":[…]}` or `{"error":"…"}` as its last stdout line, then exits.
import { pathToFileURL } from 'node:url';
import { exitWhenParentGone } from './procs.js';
import type { MicroBench, MicroRow } from './types.js';

async function main(file: string): Promise<MicroRow[]> {
  const mod = (await import(pathToFileURL(file).href)) as { run?: MicroBench };
  if (typeof mod.run !== 'function') throw new Error('exports no run()');
  const rows = await mod.run();
  if (!Array.isArray(rows)) throw new Error('run() did not return an array');
  return rows.map((r) => ({ name: String(r.name), value: Number(r.value), unit: String(r.unit) }));
}

exitWhenParentGone();
const { file } = JSON.parse(process.argv[2] ?? '{}') as { file: string };
main(file).then(
  (rows) => {
    // NaN is not JSON; send it as null and let run.ts show it.
    process.stdout.write(`\n${JSON.stringify({ rows: rows.map((r) => ({ ...r, value: Number.isFinite(r.value) ? r.value : null })) })}\n`, () => process.exit(0));
  },
  (err: unknown) => {
    process.stdout.write(`\n${JSON.stringify({ error: (err as Error).stack ?? String(err) })}\n`, () => process.exit(0));
  },
);
