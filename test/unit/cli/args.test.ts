import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/cli/args.js';

describe('command line', () => {
  it('parses the documented forms', () => {
    expect(parseArgs(['--config', 'c.yaml'])).toEqual({ kind: 'run', file: 'c.yaml', pretty: false });
    expect(parseArgs(['-c', 'c.yaml', '--pretty'])).toEqual({ kind: 'run', file: 'c.yaml', pretty: true });
    expect(parseArgs(['--config=c.yaml'])).toEqual({ kind: 'run', file: 'c.yaml', pretty: false });
    expect(parseArgs(['check', 'c.yaml'])).toEqual({ kind: 'check', file: 'c.yaml' });
    expect(parseArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseArgs(['--config', 'x', '-h'])).toEqual({ kind: 'help' });
    expect(parseArgs(['-v'])).toEqual({ kind: 'version' });
  });

  it('names what is wrong', () => {
    expect(parseArgs(['--confg', 'c.yaml'])).toEqual({ kind: 'error', message: 'unknown option "--confg"; did you mean "--config"?' });
    expect(parseArgs(['--config'])).toMatchObject({ kind: 'error', message: 'option --config needs a file: --config <file>' });
    expect(parseArgs(['chekc', 'c.yaml'])).toEqual({ kind: 'error', message: 'unknown command "chekc"; did you mean "check"?' });
    expect(parseArgs(['check'])).toMatchObject({ kind: 'error' });
    expect(parseArgs([])).toMatchObject({ kind: 'error', message: 'no config file: meshgate --config <file>' });
  });
});
