/**
 * WebSocket messages cross meshgate unchanged: the real `ws` client against a real `ws` backend,
 * text and binary messages of random sizes up to 1 MiB (plus the frame-length boundaries of RFC 6455
 * §5.2: 125/126 and 65535/65536), compared by sha256; several connections at once; afterwards every
 * in-flight slot is released and no tunnel is left open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import WebSocket from 'ws';
import { waitFor } from '../helpers/meshgate.js';
import { nothingInFlight, startWsRig, status, type WsRig } from './lib/ws-peer.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: false });
});
afterAll(async () => {
  await rig?.close();
});

const MiB = 1024 * 1024;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function open(path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}${path}`, { maxPayload: 2 * MiB });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends each message and collects the echoes in order (ws keeps order within a connection). */
function echoAll(ws: WebSocket, messages: Array<Buffer | string>): Promise<Array<{ data: Buffer; binary: boolean }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    ws.on('message', (data: Buffer, binary: boolean) => {
      got.push({ data, binary });
      if (got.length === messages.length) resolve(got);
    });
    ws.once('error', reject);
    ws.once('close', () => reject(new Error(`closed after ${got.length}/${messages.length} echoes`)));
    for (const m of messages) ws.send(m, { binary: typeof m !== 'string' });
  });
}

/** Random text of about `bytes` UTF-8 bytes, with multi-byte characters. */
function randomText(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 é€😀\n';
  const chars = [...alphabet];
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const run = chars[randomInt(chars.length)]!.repeat(1 + randomInt(64));
    parts.push(run);
    n += Buffer.byteLength(run);
  }
  return parts.join('');
}

describe('WebSocket echo through meshgate', () => {
  it('text and binary messages of random sizes up to 1 MiB arrive unchanged (sha256)', async () => {
    const sizes = [0, 1, 125, 126, 65535, 65536, MiB, ...Array.from({ length: 9 }, () => randomInt(1, MiB + 1))];
    const messages: Array<Buffer | string> = [];
    for (const n of sizes) messages.push(randomBytes(n), randomText(n));
    const ws = await open('/echo');
    const got = await echoAll(ws, messages);
    ws.close();
    messages.forEach((m, i) => {
      const g = got[i]!;
      expect(g.binary, `message ${i} (${Buffer.byteLength(m)} bytes) kept its type`).toBe(typeof m !== 'string');
      expect(sha(g.data), `message ${i} (${Buffer.byteLength(m)} bytes)`).toBe(sha(m));
    });
  });

  it('eight connections at once each get their own echoes, then leave nothing open', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => open('/echo')));
    await waitFor(async () => (await status(rig.peer)).websockets === 8, 5_000, () => 'tunnels not counted');
    const results = await Promise.all(conns.map(async (ws, i) => {
      const msgs = [randomBytes(randomInt(1, 256 * 1024)), `conn ${i}`];
      const got = await echoAll(ws, msgs);
      return msgs.every((m, j) => sha(got[j]!.data) === sha(m));
    }));
    expect(results.every(Boolean)).toBe(true);
    for (const ws of conns) ws.close();
    await waitFor(async () => (await status(rig.peer)).websockets === 0 && (await nothingInFlight(rig.peer)), 5_000, () => 'tunnels or in-flight left after close');
  });
});
