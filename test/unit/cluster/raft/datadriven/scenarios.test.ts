/**
 * Golden-output Raft scenarios (raft.md R-B2): each file in testdata/ is a script of commands, each
 * followed by `----` and the output it must print (interpreter.ts). A change in the core's behaviour
 * shows up as a diff of what the nodes did, message by message. After a deliberate change, regenerate
 * with `MESHGATE_REWRITE_GOLDEN=1 npx vitest run test/unit/cluster/raft/datadriven` and review the diff
 * like code: the golden files are only as right as the reading they got.
 *
 * These are behaviour pins, not a safety search (the simulator is that): a core that grants a pre-vote
 * inside the leader lease, for one, changes prevote_checkquorum's output; mutants of paths no scenario
 * takes (divergent logs, learners in the quorum) pass here and are caught by test/sim.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommand, ScriptedNetwork } from './interpreter.js';

const DIR = new URL('./testdata/', import.meta.url).pathname;
const REWRITE = process.env.MESHGATE_REWRITE_GOLDEN === '1';

interface Block { comment: string[]; command: string; expected: string }

/** Blocks: optional `#` comment lines, one command line, `----`, the output up to a blank line. */
function parse(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const comment: string[] = [];
    while (i < lines.length && (lines[i]!.startsWith('#') || lines[i]!.trim() === '')) comment.push(lines[i++]!);
    if (i >= lines.length) break;
    const command = lines[i++]!;
    if (lines[i] !== '----') throw new Error(`expected ---- after "${command}" (line ${i + 1})`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    blocks.push({ comment: comment.filter((c) => c.startsWith('#')), command, expected: out.join('\n') });
  }
  return blocks;
}

describe('datadriven Raft scenarios (golden output)', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort();
  it('has the R-B2 scenarios', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });
  for (const file of files) {
    it(file.replace(/\.txt$/, ''), () => {
      const blocks = parse(readFileSync(join(DIR, file), 'utf8'));
      const net = new ScriptedNetwork();
      const rewritten: string[] = [];
      for (const b of blocks) {
        let actual: string;
        try {
          actual = net.run(parseCommand(b.command));
        } catch (err) {
          actual = `error: ${(err as Error).message}`;
        }
        if (REWRITE) rewritten.push(...b.comment, b.command, '----', actual, '');
        else expect(actual, `${file}: ${b.command}`).toBe(b.expected);
      }
      if (REWRITE) writeFileSync(join(DIR, file), rewritten.join('\n'));
    });
  }
});
