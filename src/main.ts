#!/usr/bin/env node
/**
 * The meshgate command line (DESIGN.md §1):
 *   meshgate --config <file>     start a peer
 *   meshgate check <file>        validate a config; `file:line:column: message` per problem, exit 1
 *   meshgate --version
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file.
 */
import { loadConfigFile, formatIssue } from './config/load.js';
import { Peer } from './app/peer.js';
import { VERSION } from './app/version.js';

const USAGE = `usage: meshgate --config <file> [--pretty]
       meshgate check <file>
       meshgate --version`;

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--version') || argv.includes('-v')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (argv[0] === 'check') {
    const file = argv[1];
    if (!file) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    const r = loadConfigFile(file);
    if (!r.ok) {
      for (const i of r.issues) process.stderr.write(`${formatIssue(i)}\n`);
      return 1;
    }
    process.stdout.write(`${file}: ok (${Object.keys(r.config.services).length} services, ${r.config.routes.length} routes)\n`);
    return 0;
  }
  const at = argv.indexOf('--config');
  const file = at === -1 ? undefined : argv[at + 1];
  if (!file) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const peer = new Peer({ configFile: file, prettyLogs: argv.includes('--pretty') });
  let started;
  try {
    started = await peer.start();
  } catch (err) {
    process.stderr.write(`meshgate: failed to start: ${(err as Error).message}\n`);
    await peer.stop().catch(() => undefined);
    return 1;
  }
  if (!started.ok) {
    for (const i of started.issues) process.stderr.write(`${formatIssue(i)}\n`);
    return 1;
  }
  const stop = (signal: string) => {
    peer.log.info({ signal }, 'shutting down');
    void peer.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void peer.reload('SIGHUP'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`meshgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
