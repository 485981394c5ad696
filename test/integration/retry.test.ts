/**
 * Retries on a retryable status go to another upstream (the 5xx body is read and dropped so the
 * connection is reused); non-idempotent requests are not retried after reaching an upstream; and an
 * upstream answer Node cannot relay is a 502, never a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, type PeerProcess } from '../helpers/meshgate.js';

let ok: Backend, failing: Backend;
let bad: Server;
let peer: PeerProcess;

beforeAll(async () => {
  [ok, failing] = await Promise.all([startBackend('ok'), startBackend('failing')]);
  failing.setFailAll(503);
  // Answers with a header value containing a control character.
  bad = createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nhi')));
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
  const [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(`
node:
  id: gw-retry
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
  - { match: { pathPrefix: /bad }, service: bad }
  - { match: { pathPrefix: / }, service: web }
services:
  web:
    balancer: round-robin
    retries: { attempts: 1, on: ["503"], budgetPercent: 100 }
    upstreams:
      - { id: failing, url: ${failing.url} }
      - { id: ok, url: ${ok.url} }
  bad:
    retries: { attempts: 0 }
    upstreams: [{ id: bad, url: http://127.0.0.1:${(bad.address() as AddressInfo).port} }]
`, { dataPort: dp, adminPort: ap });
});

afterAll(async () => {
  await peer?.stop('SIGKILL');
  await Promise.all([ok, failing].map((b) => b?.close()));
  await new Promise((r) => bad?.close(r));
});

describe('retries', () => {
  it('a 503 from one upstream is retried on the other for idempotent requests', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${peer.url}/id`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('ok');
    }
    expect(failing.hits).toBeGreaterThan(0);
    const m = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    expect(m).toMatch(/meshgate_upstream_retries_total\{service="web",outcome="started"\} [1-9]/);
  });

  it('a POST that reached an upstream is not retried: the client gets that 503', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await fetch(`${peer.url}/id`, { method: 'POST', body: 'x' })).status);
    expect(statuses).toEqual(new Set([200, 503]));
  });

  it('an upstream header Node cannot relay is a 502, and the peer keeps serving', async () => {
    const r = await fetch(`${peer.url}/bad`);
    expect(r.status).toBe(502);
    expect((await fetch(`${peer.url}/id`)).status).toBe(200);
  });
});
