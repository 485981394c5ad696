/**
 * Every Upgrade request gets an answer, and the right one, over raw sockets: the upstream's non-101
 * answer relayed as a normal response (sized and chunked bodies), 502 when the upstream is down or
 * its TCP connect hangs past the upgrade connect timeout, 504 when it accepts but never answers the
 * handshake, a connect failure retried to another upstream, 503 with no eligible upstream, 400 for an
 * Upgrade request with a body. The deadlines below are hang guards (connect/handshake timeout plus
 * generous slack for a busy machine), not timing assertions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { waitFor } from '../helpers/meshgate.js';
import { dechunk, exchange, header, upgradeRequest } from './lib/ws-raw.js';
import { CONNECT_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS, nothingInFlight, startWsRig, upstreamStatus, type WsRig } from './lib/ws-peer.js';
import { REFUSAL_BODY } from './lib/ws-backend.js';

let rig: WsRig;
beforeAll(async () => {
  rig = await startWsRig({ accessLog: false });
});
afterAll(async () => {
  await rig?.close();
});

/** Slack on top of a timeout for a loaded 2-core machine: the answer must come, not hang. */
const SLACK_MS = 3_000;

describe('answers on the Upgrade path', () => {
  it('relays a non-101 answer with its status, headers and sized body, then closes', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/refuse?status=403', [['X-Request-Id', 'refused-1']]));
    expect(res.status).toBe(403);
    expect(header(res, 'x-refused')).toBe('yes');
    expect(header(res, 'x-backend')).toBe('a');
    expect(header(res, 'x-request-id')).toBe('refused-1');
    expect(header(res, 'content-length')).toBe(String(Buffer.byteLength(REFUSAL_BODY)));
    expect(header(res, 'connection')).toBe('close');
    expect(header(res, 'upgrade')).toBeUndefined();
    expect(res.body.toString()).toBe(REFUSAL_BODY);
    expect(res.closed).toBe(true);
  });

  it('re-frames an unsized non-101 body as chunked, complete with its last chunk', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/refuse?status=401&chunked=1'));
    expect(res.status).toBe(401);
    expect(header(res, 'transfer-encoding')).toBe('chunked');
    expect(dechunk(res.body).toString()).toBe(REFUSAL_BODY);
  });

  it('relays an upstream 5xx to the upgrade as it is (not a meshgate 502)', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/refuse?status=503'));
    expect(res.status).toBe(503);
    expect(header(res, 'x-meshgate-reason')).toBeUndefined();
    expect(header(res, 'x-refused')).toBe('yes');
  });

  it('answers 502 at once when nothing listens on the upstream port', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/dead/echo'), { timeoutMs: SLACK_MS });
    expect(res.status).toBe(502);
    expect(header(res, 'x-meshgate-reason')).toBe('upstream-connect-failure');
    expect(res.closed).toBe(true);
  });

  it('answers 502 within the upgrade connect timeout when the TCP connect hangs', async () => {
    const t0 = performance.now();
    const res = await exchange(rig.dataPort, upgradeRequest('/blackhole/echo'), { timeoutMs: CONNECT_TIMEOUT_MS + SLACK_MS });
    expect(res.status).toBe(502);
    expect(header(res, 'x-meshgate-reason')).toBe('upstream-connect-failure');
    // It waited for the connect timeout (the answer is not an immediate refusal).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
  });

  it('answers 504 within the handshake timeout when the upstream never answers the handshake', async () => {
    const t0 = performance.now();
    const res = await exchange(rig.dataPort, upgradeRequest('/silent'), { timeoutMs: HANDSHAKE_TIMEOUT_MS + SLACK_MS });
    expect(res.status).toBe(504);
    expect(header(res, 'x-meshgate-reason')).toBe('upstream-timeout');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
    // A handshake timeout is the upstream's doing: charged to it.
    expect((await upstreamStatus(rig.peer, 'silent', 'a')).failures).toBeGreaterThan(0);
  });

  it('retries a connect failure on another upstream (the handshake never left)', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await exchange(rig.dataPort, upgradeRequest('/failover/echo'));
      expect(res.status).toBe(101);
      expect(header(res, 'x-backend')).toBe('a');
    }
  });

  it('answers 503 when no upstream is eligible', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/none/echo'));
    expect(res.status).toBe(503);
    expect(header(res, 'x-meshgate-reason')).toBe('no-healthy-upstream');
  });

  it('refuses an Upgrade request with a body (400) and sends nothing upstream', async () => {
    const before = rig.a.seen.length;
    const req = upgradeRequest('/withbody/echo', [['Content-Length', '5']]) + 'hello';
    const res = await exchange(rig.dataPort, req);
    expect(res.status).toBe(400);
    expect(header(res, 'x-meshgate-reason')).toBe('upgrade-with-body');
    expect(rig.a.seen.length).toBe(before);
  });

  it('closes a tunnel that carries no byte for the upgrade idle timeout', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/idle/echo`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send('one message, then silence'));
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    const t0 = performance.now();
    expect(await closed).toBe(1006);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 50);
    await waitFor(() => rig.a.openWebSockets === 0, 5_000, () => 'backend side of the idle tunnel still open');
  });

  it('does not tunnel h2c: curl --http2 gets its answer over HTTP/1.1, the backend sees no upgrade', async () => {
    // Async: the backend lives in this process and must keep serving while curl runs.
    const r = await promisify(execFile)('curl', ['-sS', '-v', '--http2', '--max-time', '5', '-D', '-', `http://127.0.0.1:${rig.dataPort}/h2c/plain`], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/> Upgrade: h2c/i); // curl did ask
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.stdout.endsWith('a')).toBe(true);
    const seen = [...rig.a.seen].reverse().find((s) => s.url === '/h2c/plain')!;
    expect(seen.kind).toBe('http');
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names).not.toContain('upgrade');
    expect(names).not.toContain('http2-settings');
  });

  it('an upstream that resets mid-body of a refusal: the client sees a short body and a close, the peer lives', async () => {
    const res = await exchange(rig.dataPort, upgradeRequest('/refuse?status=403&cut=1'));
    expect(res.status).toBe(403);
    expect(header(res, 'content-length')).toBe('100000');
    expect(res.body.length).toBeLessThan(100000);
    expect(res.closed).toBe(true);
  });

  it('an upstream that resets an open tunnel: the client sees the connection drop, the peer lives', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${rig.dataPort}/drop`);
    const code = await new Promise<number>((resolve, reject) => {
      ws.once('open', () => ws.send('trigger the reset'));
      ws.once('close', (c) => resolve(c));
      ws.once('error', (err) => (err.message.includes('ECONNRESET') ? undefined : reject(err)));
    });
    expect(code).toBe(1006);
    expect(rig.peer.proc.exitCode).toBeNull();
  });

  describe('the HTTP path\'s request checks (requestProblem), on a raw upgrade', () => {
    const wsLines = (): string[] => upgradeRequest('/checks/echo').split('\r\n').filter((l) => l !== '' && !/^host:/i.test(l));
    const withHost = (hostLines: string[], extra: string[] = []): string => {
      const [start, ...rest] = wsLines();
      return `${[start!, ...hostLines, ...rest, ...extra].join('\r\n')}\r\n\r\n`;
    };
    const cases: Array<[string, string, number, string]> = [
      ['a duplicated Host', withHost(['Host: ws.test', 'Host: ws.test']), 400, 'duplicate-host'],
      ['Host: a/b@c', withHost(['Host: a/b@c']), 400, 'invalid-host'],
      ['no Host at all', withHost([]), 400, 'missing-host'],
      // The limit is node.maxHeadersCount (default 100); the request has 5 lines of its own.
      ['101+ header lines', withHost(['Host: ws.test'], Array.from({ length: 100 }, (_, i) => `X-Filler-${i}: ${i}`)), 431, 'too-many-headers'],
    ];
    for (const [what, request, status, reason] of cases) {
      it(`${what}: ${status} ${reason}, nothing upstream, the peer still serving`, async () => {
        const before = rig.a.seen.length + rig.b.seen.length;
        const res = await exchange(rig.dataPort, request);
        expect(res.status).toBe(status);
        expect(header(res, 'x-meshgate-reason')).toBe(reason);
        expect(res.closed).toBe(true);
        const ok = await exchange(rig.dataPort, upgradeRequest('/checks/echo'));
        expect(ok.status).toBe(101);
        // The good upgrade reached the backend; the refused one never did.
        expect(rig.a.seen.length + rig.b.seen.length).toBe(before + 1);
        expect(rig.a.seen.at(-1)!.url).toBe('/checks/echo');
      });
    }
  });

  it('leaves no in-flight slot behind after all of the above', async () => {
    await waitFor(() => nothingInFlight(rig.peer), 5_000, () => 'in-flight not released');
    expect(rig.peer.proc.exitCode).toBeNull();
  });
});
