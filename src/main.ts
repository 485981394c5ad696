#!/usr/bin/env node
/**
 * The meshgate command line (DESIGN.md §1; parsed in cli/args.ts):
 *   meshgate --config <file>     start a peer
 *   meshgate check <file>        validate a config; `file:line:column: message` per problem, exit 1
 *   meshgate --version | --help  exit 0; a bad option exits 2 naming it
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file.
 */
// First: V8 flags that must be in effect before anything allocates (app/v8-flags.ts).
import './app/v8-flags.js';
import { formatIssue } from './config/load.js';
import { loadConfigWithFiles } from './app/config-files.js';
import { Peer } from './app/peer.js';
import { VERSION } from './app/version.js';
import { parseArgs, USAGE } from './cli/args.js';
import cluster from 'node:cluster';
import { runWorker } from './app/worker.js';

async function main(argv: string[]): Promise<number> {
  const cmd = parseArgs(argv);
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'error':
      process.stderr.write(`meshgate: ${cmd.message}\n${USAGE}\n`);
      return 2;
    case 'check': {
      // The certificate files are loaded too (DESIGN.md §9), as a start or a reload would.
      const r = loadConfigWithFiles(cmd.file);
      if (!r.ok) {
        for (const i of r.issues) process.stderr.write(`${formatIssue(i)}\n`);
        return 1;
      }
      const cfg = r.loaded.config;
      const tls = r.certificates ? `, ${r.certificates.certificates.length} TLS certificates` : '';
      process.stdout.write(`${cmd.file}: ok (${Object.keys(cfg.services).length} services, ${cfg.routes.length} routes${tls})\n`);
      return 0;
    }
    case 'run':
      break;
  }
  const file = cmd.file;
  const peer = new Peer({ configFile: file, prettyLogs: cmd.pretty });
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

// A data-plane worker of a peer with `node.workers > 1` (forked by the primary with the same argv).
if (cluster.isWorker) runWorker();
else main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`meshgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
