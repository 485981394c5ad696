import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { trackConnections } from '../../../src/observability/connections.js';

// Real sockets on a real listener: the counts meshgate_downstream_* report.
let server: Server | undefined;
afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

async function listening(): Promise<{ port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  server = createServer((s) => {
    accepted.push(s);
    s.on('data', (d) => s.write(Buffer.alloc(d.length * 2, 0x61)));
    s.on('end', () => s.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, accepted };
}

/** Connects, sends `bytes`, reads the 2× answer, and leaves the connection open. */
async function client(port: number, bytes: number): Promise<Socket> {
  const c = connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.write(Buffer.alloc(bytes, 0x62));
  let got = 0;
  await new Promise<void>((resolve) => c.on('data', (d: Buffer) => {
    got += d.length;
    if (got === bytes * 2) resolve();
  }));
  return c;
}

async function closeClient(c: Socket): Promise<void> {
  c.end();
  await once(c, 'close');
}

describe('trackConnections (meshgate_downstream_*)', () => {
  it('counts open connections and the bytes of live and closed ones exactly', async () => {
    const { port } = await listening();
    const counts = trackConnections([server!]);
    const a = await client(port, 10);
    const b = await client(port, 100);
    expect(counts()).toEqual({ open: 2, received: 110, sent: 220 });
    await closeClient(a);
    await waitFor(() => counts().open === 1);
    // A closed connection's bytes stay counted.
    expect(counts()).toEqual({ open: 1, received: 110, sent: 220 });
    const c = await client(port, 1000);
    expect(counts()).toEqual({ open: 2, received: 1110, sent: 2220 });
    await closeClient(b);
    await closeClient(c);
    await waitFor(() => counts().open === 0);
    expect(counts()).toEqual({ open: 0, received: 1110, sent: 2220 });
  });

  it('stays exact over many connections opening and closing out of order (slots are reused)', async () => {
    const { port } = await listening();
    const counts = trackConnections([server!]);
    const open: Socket[] = [];
    let expected = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) {
        const n = 1 + round * 10 + i;
        open.push(await client(port, n));
        expected += n;
      }
      // Close every other one, from the middle outwards, so freed slots are scattered.
      for (let i = open.length - 2; i >= 0; i -= 2) await closeClient(open.splice(i, 1)[0]!);
      await waitFor(() => counts().open === open.length);
      expect(counts()).toEqual({ open: open.length, received: expected, sent: expected * 2 });
    }
    for (const c of open.splice(0)) await closeClient(c);
    await waitFor(() => counts().open === 0);
    expect(counts()).toEqual({ open: 0, received: expected, sent: expected * 2 });
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}
