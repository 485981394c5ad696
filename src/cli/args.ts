/**
 * The command line (DESIGN.md §1), parsed without side effects so it can be tested:
 *   meshgate --config <file> [--pretty]   start a peer
 *   meshgate check <file>                 validate a config and exit
 *   meshgate --version | --help
 * An unknown option or a missing value is an error that names it (with "did you mean").
 */
import { didYouMean } from '../config/suggest.js';

export const USAGE = `usage: meshgate --config <file> [--pretty]   start a peer
       meshgate check <file>                 validate a config file (file:line:column: message per problem)
       meshgate --version                    print the version
       meshgate --help                       this text

options:
  -c, --config <file>   the config file (YAML; docs/config.md); SIGHUP or an edit reloads it
      --pretty          human-readable one-line logs (colour only on a terminal)
  -v, --version         print the version and exit
  -h, --help            print this help and exit

signals: SIGTERM/SIGINT drain (node.drainTimeout) and exit 0; SIGHUP reloads the config.
docs: docs/operations.md (running in production), docs/config.md (every key)`;

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'check'; file: string }
  | { kind: 'run'; file: string; pretty: boolean }
  | { kind: 'error'; message: string };

const OPTIONS = ['--config', '--pretty', '--version', '--help', '-c', '-v', '-h'];
const COMMANDS = ['check'];

export function parseArgs(argv: readonly string[]): Command {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  if (argv.includes('--version') || argv.includes('-v')) return { kind: 'version' };
  let file: string | undefined;
  let pretty = false;
  let check = false;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) return { kind: 'error', message: `option ${a} needs a file: ${a} <file>` };
      file = v;
    } else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else if (a === '--pretty') pretty = true;
    else if (a.startsWith('-')) return { kind: 'error', message: `unknown option "${a}"${didYouMean(a.split('=')[0]!, OPTIONS)}` };
    else if (i === 0 && a === 'check') check = true;
    else positional.push(a);
  }
  if (check) {
    const f = positional[0] ?? file;
    if (f === undefined) return { kind: 'error', message: 'check needs a file: meshgate check <file>' };
    if (positional.length > 1) return { kind: 'error', message: `unexpected argument "${positional[1]}"` };
    return { kind: 'check', file: f };
  }
  if (positional.length) return { kind: 'error', message: `unknown command "${positional[0]}"${didYouMean(positional[0]!, COMMANDS)}` };
  if (file === undefined) return { kind: 'error', message: 'no config file: meshgate --config <file>' };
  return { kind: 'run', file, pretty };
}
