/**
 * PeerTransport over real loopback sockets: authenticated delivery, and every way a connection or frame
 * can be refused (wrong secret, bad HMAC, oversize, malformed, replayed, misaddressed, another cluster, a
 * non-member, no handshake in time) without being delivered; the pools that bound unauthenticated peers.
 */
import { createHmac } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeProbeReply,
  encodeDataFrame as encodeDataFrameForTest,
  encodeHello,
  encodeProbe,
  MAX_PREAUTH_FRAME_BYTES,
  sessionKey as deriveSessionKeyForTest,
} from '../../../src/cluster/handshake.js';
import { probePeer } from '../../../src/cluster/probe.js';
import {
  MAX_PENDING_PER_SOURCE,
  PeerTransport,
  staticIdentity,
  type TransportIdentity,
  type TransportOptions,
} from '../../../src/cluster/transport.js';

const CID = Buffer.alloc(16, 0x6d); // staticIdentity's default

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

/** A raw client that also authenticated (HELLO) as `from`, presenting `cid`. */
async function helloClient(addr: string, from = 'a', to = 'b', cid: Buffer = CID): Promise<{ s: net.Socket; key: Buffer; closed: Promise<void> }> {
  const c = await rawClient(addr);
  const key = deriveSessionKeyForTest(Buffer.from(SECRET), c.nonce);
  c.s.write(encodeHello(key, from, to, cid));
  return { s: c.s, key, closed: c.closed };
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

  it('drops a frame above the pre-authentication limit before buffering it', async () => {
    const b = await node('b');
    const { s, closed } = await rawClient(b.addr);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(MAX_PREAUTH_FRAME_BYTES + 1, 0);
    s.write(head);
    await closed;
    expect(b.t.stats().droppedOversize).toBe(1);
    expect(b.got).toEqual([]);
  });

  it('drops authenticated but malformed, misaddressed and replayed frames', async () => {
    const b = await node('b');

    // Valid MAC over garbage, after a good HELLO: malformed.
    let c = await helloClient(b.addr);
    let key = c.key;
    const garbage = Buffer.from([1, 9, 0xff]);
    const body = Buffer.concat([garbage, createHmac('sha256', key).update(garbage).digest()]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length, 0);
    c.s.write(Buffer.concat([len, body]));
    await c.closed;
    expect(b.t.stats().droppedMalformed).toBe(1);

    // Addressed to someone else.
    c = await helloClient(b.addr);
    key = c.key;
    c.s.write(encodeDataFrameForTest(key, 1, 'a', 'z', 0, Buffer.from('x')));
    await c.closed;
    expect(b.t.stats().droppedWrongDestination).toBe(1);

    // A good frame is delivered; the same frame replayed on the same connection is refused...
    c = await helloClient(b.addr);
    key = c.key;
    const good = encodeDataFrameForTest(key, 1, 'a', 'b', 0, Buffer.from('once'));
    c.s.write(good);
    await waitFor(() => b.got.length === 1, 'first delivery');
    c.s.write(good);
    await c.closed;
    expect(b.t.stats().droppedMalformed).toBe(2);
    // ...and on a new connection its MAC no longer verifies (new nonce, new key).
    const c2 = await helloClient(b.addr);
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
  it('refuses a HELLO from a peer of another cluster, and the dialer refuses a listener of another cluster', async () => {
    const b = await node('b');
    const c = await helloClient(b.addr, 'a', 'b', Buffer.alloc(16, 0x42));
    await c.closed;
    expect(b.t.stats().droppedWrongCluster).toBe(1);
    // A real dialer with the same secret and ids but another cluster id never opens its link.
    const other = await node('a', { identity: staticIdentity(Buffer.alloc(16, 0x42)) });
    other.t.setPeer('b', b.addr);
    other.t.send('b', Buffer.from('MsgHeartbeat term=99'));
    await waitFor(() => other.t.stats().handshakeFailures >= 2, 'handshake failures');
    expect(other.warnings.some((w) => /another cluster|belongs to cluster/.test(JSON.stringify(w)))).toBe(true);
    expect(b.got).toEqual([]);
  });

  it('refuses a HELLO, and every later frame, from an id that is not a member', async () => {
    const members = new Set(['a']);
    const b = await node('b', { identity: { ...staticIdentity(CID), isMember: (id) => members.has(id) } });
    const evil = await helloClient(b.addr, 'gw-removed');
    evil.s.write(encodeDataFrameForTest(evil.key, 1, 'gw-removed', 'b', 0, Buffer.from('MsgHeartbeat term=99')));
    await evil.closed;
    expect(b.t.stats().droppedNonMember).toBe(1);
    // A member connected, then removed: its next frame is refused and the connection closed.
    const a = await helloClient(b.addr, 'a');
    a.s.write(encodeDataFrameForTest(a.key, 1, 'a', 'b', 0, Buffer.from('one')));
    await waitFor(() => b.got.length === 1, 'member delivery');
    members.delete('a');
    a.s.write(encodeDataFrameForTest(a.key, 1, 'a', 'b', 1, Buffer.from('two')));
    await a.closed;
    expect(b.t.stats().droppedNonMember).toBe(2);
    expect(b.got.map((g) => g.text)).toEqual(['one']);
  });

  it('closes connections that do not authenticate in time: silent, truncated HELLO, data before HELLO', async () => {
    const b = await node('b', { handshakeTimeoutMs: 150 });
    const silent = await rawClient(b.addr);
    const truncated = await rawClient(b.addr);
    const hello = encodeHello(deriveSessionKeyForTest(Buffer.from(SECRET), truncated.nonce), 'a', 'b', CID);
    truncated.s.write(hello.subarray(0, hello.length - 5));
    await Promise.all([silent.closed, truncated.closed]);
    expect(b.t.stats().handshakeTimeouts).toBe(2);
    // A data frame where the HELLO should be is not a HELLO.
    const early = await rawClient(b.addr);
    early.s.write(encodeDataFrameForTest(deriveSessionKeyForTest(Buffer.from(SECRET), early.nonce), 1, 'a', 'b', 0, Buffer.from('x')));
    await early.closed;
    expect(b.t.stats().droppedMalformed).toBe(1);
    expect(b.got).toEqual([]);
  });

  it('unauthenticated connections cannot lock a peer out: the oldest are evicted, the real peer gets in', async () => {
    const b = await node('b');
    const holders = [];
    for (let i = 0; i < MAX_PENDING_PER_SOURCE + 4; i++) holders.push(await rawClient(b.addr));
    const a = await node('a');
    a.t.setPeer('b', b.addr);
    a.t.send('b', Buffer.from('let me in'));
    await waitFor(() => b.got.some((g) => g.text === 'let me in'), 'delivery despite the holders');
    expect(b.t.stats().evictedPending).toBeGreaterThanOrEqual(5);
    // The authenticated connection does not count as pending: more holders do not evict it.
    for (let i = 0; i < MAX_PENDING_PER_SOURCE + 2; i++) holders.push(await rawClient(b.addr));
    a.t.send('b', Buffer.from('still here'));
    await waitFor(() => b.got.some((g) => g.text === 'still here'), 'delivery on the same link');
    expect(a.t.stats().connectFailures + a.t.stats().handshakeFailures).toBe(0);
  });

  it('frames sent right after the HELLO wait for admit() and are delivered in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = await node('b', { identity: { ...staticIdentity(CID), admit: () => gate } });
    const a = await helloClient(b.addr);
    for (let i = 0; i < 3; i++) a.s.write(encodeDataFrameForTest(a.key, 1, 'a', 'b', i, Buffer.from(`m${i}`)));
    await new Promise((r) => setTimeout(r, 50));
    expect(b.got).toEqual([]);
    release();
    await waitFor(() => b.got.length === 3, 'delivery after admission');
    expect(b.got.map((g) => g.text)).toEqual(['m0', 'm1', 'm2']);
  });

  it('a refused admission (e.g. the identity file cannot be written) delivers nothing', async () => {
    const b = await node('b', { identity: { ...staticIdentity(CID), admit: () => Promise.reject(new Error('EIO')) } });
    const a = await helloClient(b.addr);
    a.s.write(encodeDataFrameForTest(a.key, 1, 'a', 'b', 0, Buffer.from('x')));
    await a.closed;
    expect(b.got).toEqual([]);
  });

  it('closes an authenticated connection idle for idleTimeoutMs; the dialer redials when it sends again', async () => {
    const b = await node('b', { idleTimeoutMs: 100 });
    const a = await node('a');
    a.t.setPeer('b', b.addr);
    a.t.send('b', Buffer.from('first'));
    await waitFor(() => b.t.stats().idleClosed >= 1, 'idle close');
    // The link is lossy by design (Raft resends): a message written as the listener closes is gone, so resend.
    const deadline = Date.now() + 10_000;
    while (!b.got.some((g) => g.text === 'second') && Date.now() < deadline) {
      a.t.send('b', Buffer.from('second'));
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(b.got.some((g) => g.text === 'second')).toBe(true);
  });

  it('answers a PROBE with its cluster id, term and whether it heard from the prober, then closes', async () => {
    const b = await node('b', { identity: { ...staticIdentity(CID), term: () => 7, hasHeard: (id) => id === 'old' } });
    const c = await rawClient(b.addr);
    const key = deriveSessionKeyForTest(Buffer.from(SECRET), c.nonce);
    let reply = Buffer.alloc(0);
    c.s.on('data', (d: Buffer) => (reply = Buffer.concat([reply, d])));
    c.s.write(encodeProbe(key, 'old', 'b'));
    await c.closed;
    expect(decodeProbeReply(key, reply.subarray(4))).toEqual({ clusterId: CID, term: 7, heardFromYou: true });
    expect(await probePeer({ self: 'new', peer: 'b', address: b.addr, secret: Buffer.from(SECRET) })).toEqual({ clusterId: CID, term: 7, heardFromYou: false });
    // Wrong secret, wrong id at the address, nobody listening: no answer.
    expect(await probePeer({ self: 'new', peer: 'b', address: b.addr, secret: Buffer.from('other') })).toBe('unreachable');
    expect(await probePeer({ self: 'new', peer: 'z', address: b.addr, secret: Buffer.from(SECRET) })).toBe('unreachable');
    expect(b.t.stats().probesAnswered).toBe(2);
    expect(b.got).toEqual([]);
  });

  it('a peer without a cluster id does not dial, and a dialer without one is refused', async () => {
    const none: TransportIdentity = { ...staticIdentity(CID), clusterId: () => undefined };
    const b = await node('b');
    const a = await node('a', { identity: none });
    a.t.setPeer('b', b.addr);
    a.t.send('b', Buffer.from('x'));
    await waitFor(() => a.t.stats().handshakeFailures >= 1, 'refusal to dial');
    const raw = await helloClient(b.addr, 'a', 'b', Buffer.alloc(16));
    await raw.closed;
    expect(b.t.stats().droppedWrongCluster).toBe(1);
    expect(b.got).toEqual([]);
  });
});
