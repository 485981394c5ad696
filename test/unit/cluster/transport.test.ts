/**
 * PeerTransport over real loopback sockets: authenticated delivery, and every way a frame can be refused
 * (wrong secret, bad HMAC, oversize, malformed, replayed, misaddressed) without being delivered.
 */
import { createHmac } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  deriveSessionKeyForTest,
  encodeDataFrameForTest,
  MAX_FRAME_BYTES,
  PeerTransport,
  type TransportOptions,
} from '../../../src/cluster/transport.js';

const SECRET = 'correct horse battery staple';
const open: PeerTransport[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Node {
  t: PeerTransport;
  got: { from: string; text: string; bytes: number }[];
  unreachable: string[];
  warnings: object[];
  addr: string;
}

async function node(id: string, opts: Partial<TransportOptions> = {}): Promise<Node> {
  const got: Node['got'] = [];
  const unreachable: string[] = [];
  const warnings: object[] = [];
  const t = new PeerTransport({
    id,
    listen: '127.0.0.1:0',
    secret: SECRET,
    backoffBaseMs: 10,
    backoffMaxMs: 100,
    onMessage: (from, payload) => got.push({ from, text: Buffer.from(payload.subarray(0, 64)).toString(), bytes: payload.length }),
    onUnreachable: (p) => unreachable.push(p),
    logger: { info() {}, error() {}, warn: (o) => warnings.push(o) },
    ...opts,
  });
  open.push(t);
  const a = await t.start();
  return { t, got, unreachable, warnings, addr: `127.0.0.1:${a.port}` };
}

/** A raw client that completes the listener's challenge and returns the nonce it was given. */
async function rawClient(addr: string): Promise<{ s: net.Socket; nonce: Buffer; closed: Promise<void> }> {
  const [host, port] = addr.split(':');
  const s = net.connect({ host: host!, port: Number(port) });
  sockets.push(s);
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  const first = await new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
        s.off('data', onData);
        resolve(buf);
      }
    };
    s.on('data', onData);
  });
  return { s, nonce: first.subarray(6, 22), closed };
}

describe('PeerTransport', () => {
  it('delivers messages between peers, including a chunked 3 MiB message', async () => {
    const a = await node('a');
    const b = await node('b');
    a.t.setPeer('b', b.addr);
    b.t.setPeer('a', a.addr);
    const done: boolean[] = [];
    a.t.send('b', Buffer.from('hello b'), (ok) => done.push(ok));
    b.t.send('a', Buffer.from('hello a'));
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    big.write('BIG', 0);
    a.t.send('b', big);
    await waitFor(() => b.got.length === 2 && a.got.length === 1, 'delivery');
    expect(b.got[0]).toMatchObject({ from: 'a', text: 'hello b' });
    expect(b.got[1]).toMatchObject({ from: 'a', bytes: big.length });
    expect(b.got[1]!.text.startsWith('BIG')).toBe(true);
    expect(a.got[0]).toMatchObject({ from: 'b', text: 'hello a' });
    expect(done).toEqual([true]);
  });

  it('a peer with the wrong secret delivers nothing and is reported unreachable', async () => {
    const evil = await node('a', { secret: 'not the cluster secret' });
    const b = await node('b');
    evil.t.setPeer('b', b.addr);
    for (let i = 0; i < 5; i++) evil.t.send('b', Buffer.from(`vote for me in term ${1000 + i}`));
    await waitFor(() => evil.t.stats().handshakeFailures >= 2, 'handshake failures');
    expect(b.got).toEqual([]);
    expect(b.t.stats().delivered).toBe(0);
    expect(evil.unreachable).toContain('b');
  });

  it('drops a frame whose HMAC was made with another secret, closes the connection and logs once per interval', async () => {
    const b = await node('b');
    for (let i = 0; i < 3; i++) {
      const { s, nonce, closed } = await rawClient(b.addr);
      const wrongKey = deriveSessionKeyForTest(Buffer.from('guessed secret'), nonce);
      s.write(encodeDataFrameForTest(wrongKey, 1, 'a', 'b', 0, Buffer.from('MsgVote term=99')));
      await closed;
    }
    expect(b.t.stats().droppedBadMac).toBe(3);
    expect(b.got).toEqual([]);
    expect(b.warnings).toHaveLength(1);
  });

  it('drops oversize frames before buffering them', async () => {
    const b = await node('b');
    const { s, closed } = await rawClient(b.addr);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
    s.write(head);
    await closed;
    expect(b.t.stats().droppedOversize).toBe(1);
    expect(b.got).toEqual([]);
  });

  it('drops authenticated but malformed, misaddressed and replayed frames', async () => {
    const b = await node('b');
    const secret = Buffer.from(SECRET);

    // Valid MAC over garbage: malformed.
    let c = await rawClient(b.addr);
    let key = deriveSessionKeyForTest(secret, c.nonce);
    const garbage = Buffer.from([1, 9, 0xff]);
    const body = Buffer.concat([garbage, createHmac('sha256', key).update(garbage).digest()]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length, 0);
    c.s.write(Buffer.concat([len, body]));
    await c.closed;
    expect(b.t.stats().droppedMalformed).toBe(1);

    // Addressed to someone else.
    c = await rawClient(b.addr);
    key = deriveSessionKeyForTest(secret, c.nonce);
    c.s.write(encodeDataFrameForTest(key, 1, 'a', 'z', 0, Buffer.from('x')));
    await c.closed;
    expect(b.t.stats().droppedWrongDestination).toBe(1);

    // A good frame is delivered; the same frame replayed on the same connection is refused...
    c = await rawClient(b.addr);
    key = deriveSessionKeyForTest(secret, c.nonce);
    const good = encodeDataFrameForTest(key, 1, 'a', 'b', 0, Buffer.from('once'));
    c.s.write(good);
    await waitFor(() => b.got.length === 1, 'first delivery');
    c.s.write(good);
    await c.closed;
    expect(b.t.stats().droppedMalformed).toBe(2);
    // ...and on a new connection its MAC no longer verifies (new nonce, new key).
    const c2 = await rawClient(b.addr);
    c2.s.write(good);
    await c2.closed;
    expect(b.t.stats().droppedBadMac).toBe(1);
    expect(b.got.map((g) => g.text)).toEqual(['once']);
  });

  /** a talks to b, b goes down until a reports it unreachable, b restarts on the same port. */
  async function restartPeerB(aOpts: Partial<TransportOptions> = {}): Promise<{ a: Node; b2: Node }> {
    const a = await node('a', aOpts);
    const b = await node('b');
    a.t.setPeer('b', b.addr);
    a.t.send('b', Buffer.from('before'));
    await waitFor(() => b.got.length === 1, 'first delivery');
    const port = Number(b.addr.split(':')[1]);
    await b.t.close();
    a.t.send('b', Buffer.from('while down'));
    await waitFor(() => a.unreachable.includes('b'), 'unreachable report');
    return { a, b2: await node('b', { listen: `127.0.0.1:${port}` }) };
  }

  it('reconnects with backoff after the listener restarts', async () => {
    const { a, b2 } = await restartPeerB();
    const deadline = Date.now() + 10_000;
    while (!b2.got.some((g) => g.text === 'after') && Date.now() < deadline) {
      a.t.send('b', Buffer.from('after'));
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(b2.got.some((g) => g.text === 'after')).toBe(true);
    expect(a.t.peerStatus()).toEqual([expect.objectContaining({ id: 'b', connected: true })]);
  });

  it('redials at once, not after its backoff, when the restarted peer reaches us first', async () => {
    // A minute of backoff: without the redial-on-inbound rule the message below would wait that long.
    const { a, b2 } = await restartPeerB({ backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    // b comes back and speaks first (as a restarted Raft peer does when it campaigns or answers).
    b2.t.setPeer('a', a.addr);
    b2.t.send('a', Buffer.from('hello from b'));
    await waitFor(() => a.got.some((g) => g.text === 'hello from b'), 'inbound from the restarted peer');
    a.t.send('b', Buffer.from('reply'));
    await waitFor(() => b2.got.some((g) => g.text === 'reply'), 'reply over the redialled link', 10_000);
  });

  it('an urgent send (a vote request) dials at once instead of waiting out the backoff', async () => {
    // The restarted peer never speaks first here (a follower only answers the leader), so only the
    // urgent flag can cut the minute of backoff short.
    const { a, b2 } = await restartPeerB({ backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    a.t.send('b', Buffer.from('heartbeat'));
    a.t.send('b', Buffer.from('vote'), undefined, true);
    await waitFor(() => b2.got.some((g) => g.text === 'vote'), 'urgent message over a fresh link', 10_000);
    // Queued messages go out in order on the new link.
    expect(b2.got.map((g) => g.text).filter((t) => t !== 'while down')).toEqual(['heartbeat', 'vote']);
  });

  it('never blocks the caller: a full queue drops the oldest message and reports the peer unreachable', async () => {
    const a = await node('a', { queueLimit: 3, backoffBaseMs: 5_000, backoffMaxMs: 5_000 });
    const dead = await node('dead');
    const deadAddr = dead.addr;
    await dead.t.close();
    a.t.setPeer('dead', deadAddr);
    const results: [number, boolean][] = [];
    for (let i = 0; i < 5; i++) a.t.send('dead', Buffer.from(`m${i}`), (ok) => results.push([i, ok]));
    expect(a.t.stats().droppedQueueFull).toBe(2);
    expect(results).toEqual([
      [0, false],
      [1, false],
    ]);
    expect(a.unreachable).toContain('dead');
    // Unknown peers are refused too, without throwing.
    a.t.send('nobody', Buffer.from('x'), (ok) => results.push([99, ok]));
    expect(results.at(-1)).toEqual([99, false]);
  });
});
