// The WebSocket load generator of the `websocket` macro bench, run as its own process:
//   node ws-load.js '{"url":"ws://127.0.0.1:P/","handshakes":1000,"concurrency":16,"echoes":5000,"bulkMiB":64}'
// Prints one JSON line (WsLoadResult) when done. Three phases, one after the other (a phase whose
// count is 0 is skipped, so the caller can time one phase alone):
//   handshakes  `concurrency` loops, each: open a WebSocket, one 1-byte echo, close, until `handshakes`
//               are done (the per-connection cost: two TCP connects and an HTTP exchange per upgrade)
//   echoes      one connection, `echoes` sequential 64-byte round trips (per-message latency)
//   bulk        one connection, `bulkMiB` 1 MiB binary messages echoed with 8 in flight (throughput)
// Invariant: every echo is checked for its length; a short or missing echo fails the run.
import WebSocket from 'ws';
import { exitWhenParentGone } from './procs.js';
import { summarize } from './samples.js';

export interface WsLoadArgs {
  url: string;
  handshakes: number;
  concurrency: number;
  echoes: number;
  bulkMiB: number;
}

export interface WsLoadResult {
  handshakesPerSec?: number;
  echoP50Ms?: number;
  echoP99Ms?: number;
  bulkMiBPerSec?: number;
}

const MiB = 1024 * 1024;
/** Messages in flight in the bulk phase: enough to keep both directions busy, bounded memory. */
const BULK_WINDOW = 8;

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 * MiB });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, msg: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => (data.length === msg.length ? resolve() : reject(new Error(`echo of ${msg.length} B came back as ${data.length} B`))));
    ws.send(msg);
  });
}

async function main(a: WsLoadArgs): Promise<WsLoadResult> {
  const out: WsLoadResult = {};
  if (a.handshakes > 0) {
    let left = a.handshakes;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: a.concurrency }, async () => {
      while (left-- > 0) {
        const ws = await open(a.url);
        await echo(ws, Buffer.alloc(1));
        ws.close();
        await new Promise((r) => ws.once('close', r));
      }
    }));
    out.handshakesPerSec = a.handshakes / ((performance.now() - t0) / 1000);
  }
  if (a.echoes === 0 && a.bulkMiB === 0) return out;
  const ws = await open(a.url);
  if (a.echoes > 0) {
    const small = Buffer.alloc(64, 1);
    const rtts: number[] = [];
    for (let i = 0; i < a.echoes; i++) {
      const s = performance.now();
      await echo(ws, small);
      rtts.push(performance.now() - s);
    }
    const rtt = summarize(rtts);
    out.echoP50Ms = rtt.p50;
    out.echoP99Ms = rtt.p99;
  }
  if (a.bulkMiB > 0) {
    const big = Buffer.alloc(MiB, 7);
    let sent = 0;
    let got = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data: Buffer) => {
        if (data.length !== MiB) return reject(new Error(`bulk echo of ${data.length} B`));
        if (++got === a.bulkMiB) return resolve();
        if (sent < a.bulkMiB) {
          sent++;
          ws.send(big);
        }
      });
      for (; sent < Math.min(BULK_WINDOW, a.bulkMiB); sent++) ws.send(big);
    });
    out.bulkMiBPerSec = a.bulkMiB / ((performance.now() - t0) / 1000);
  }
  ws.close();
  return out;
}

exitWhenParentGone();
main(JSON.parse(process.argv[2] ?? '{}') as WsLoadArgs).then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
