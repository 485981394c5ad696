/**
 * Active health checks against real HTTP backends (node:http on port 0) through the real undici
 * probe: a backend whose /healthz flips to 500 leaves rotation after exactly unhealthyThreshold
 * failed checks and comes back after exactly healthyThreshold passing ones. No timing asserts:
 * conditions are polled with bounded waits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, type BusEvent } from '../../src/observability/events.js';
import { HealthMonitor } from '../../src/health/index.js';
import { createHealthProbe, MAX_BODY_BYTES, type HealthProbeHandle } from '../../src/proxy/health-probe.js';
import type { UpstreamSpec } from '../../src/model/index.js';

interface Backend {
  url: string;
  status: number;
  served: Map<number, number>;
  bigClosed: boolean;
  bigBytes: number;
  server: http.Server;
}

async function startBackend(): Promise<Backend> {
  const b: Backend = { url: '', status: 200, served: new Map(), bigClosed: false, bigBytes: 0, server: undefined as unknown as http.Server };
  b.server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      const s = b.status;
      b.served.set(s, (b.served.get(s) ?? 0) + 1);
      res.writeHead(s, { 'content-type': 'text/plain' }).end(s === 200 ? 'ok' : 'bad');
    } else if (req.url === '/big') {
      // An endless body: the probe must stop reading and close the connection.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(16 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && b.bigBytes < 64 * 1024 * 1024) {
          b.bigBytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.on('close', () => {
        b.bigClosed = true;
      });
      pump();
    } else if (req.url === '/never') {
      // Never answers; the checker's timeout must fire.
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.url = `http://127.0.0.1:${(b.server.address() as AddressInfo).port}`;
  return b;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function fixture(n: number) {
  const backends: Backend[] = [];
  for (let i = 0; i < n; i++) {
    const b = await startBackend();
    backends.push(b);
    cleanups.push(() => new Promise<void>((r) => {
      b.server.closeAllConnections();
      b.server.close(() => r());
    }));
  }
  const probe: HealthProbeHandle = createHealthProbe();
  cleanups.push(() => probe.close());
  const bus = new EventBus();
  const events: BusEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const mon = new HealthMonitor({ bus, probe: probe.probe });
  cleanups.push(() => mon.close());
  const specs: UpstreamSpec[] = backends.map((b, i) => ({ id: `u${i}`, url: b.url, weight: 1, state: 'active', source: 'file' }));
  return { backends, probe, bus, events, mon, specs };
}

const HC = { path: '/healthz', intervalMs: 50, timeoutMs: 2_000, healthyThreshold: 2, unhealthyThreshold: 3 };

describe('active health checks against real backends', () => {
  it('takes a backend out after unhealthyThreshold failed checks and back after healthyThreshold passes', async () => {
    const { backends, bus, mon, specs } = await fixture(3);
    mon.setService('api', { upstreams: specs, healthCheck: HC });
    const pick = () => mon.eligibility('api').pickable.map((s) => s.id);
    expect(pick()).toEqual(['u0', 'u1', 'u2']); // unknown counts as eligible
    await waitFor(() => specs.every((s) => mon.upstreamHealth('api', s.id)!.health === 'healthy'), 'all healthy');

    const b1 = backends[1]!;
    let failuresAtDown = -1;
    let passesAtUp = -1;
    let passesBeforeRecovery = 0;
    bus.subscribe((e) => {
      if (e.type !== 'health:changed') return;
      const d = e.data as { upstream: string; to: string };
      if (d.upstream !== 'u1') return;
      if (d.to === 'unhealthy') failuresAtDown = b1.served.get(500) ?? 0;
      if (d.to === 'healthy') passesAtUp = (b1.served.get(200) ?? 0) - passesBeforeRecovery;
    });

    b1.status = 500;
    await waitFor(() => !pick().includes('u1'), 'u1 out of rotation');
    expect(failuresAtDown).toBe(HC.unhealthyThreshold);
    expect(pick()).toEqual(['u0', 'u2']);
    expect(mon.eligibility('api').usable('u1')).toBe(false);
    expect(mon.upstreamHealth('api', 'u1')!.lastCheck).toMatchObject({ ok: false, status: 500 });

    passesBeforeRecovery = b1.served.get(200) ?? 0;
    b1.status = 200;
    await waitFor(() => pick().includes('u1'), 'u1 back in rotation');
    expect(passesAtUp).toBe(HC.healthyThreshold);
    expect(pick()).toEqual(['u0', 'u1', 'u2']);
  });

  it('a backend that never answers is marked unhealthy by the timeout; a closed port by the connect error', async () => {
    const { backends, mon, events } = await fixture(1);
    const dead = await startBackend();
    const deadUrl = dead.url;
    await new Promise<void>((r) => dead.server.close(() => r()));
    mon.setService('slow', {
      upstreams: [
        { id: 'hang', url: backends[0]!.url, weight: 1, state: 'active', source: 'file' },
        { id: 'gone', url: deadUrl, weight: 1, state: 'active', source: 'file' },
      ],
      healthCheck: { ...HC, path: '/never', timeoutMs: 300, unhealthyThreshold: 1 },
      panicThresholdPercent: 0,
    });
    await waitFor(() => mon.eligibility('slow').pickable.length === 0, 'both out');
    const reasons = events.filter((e) => e.type === 'health:changed').map((e) => (e.data as { upstream: string; reason: string }));
    expect(reasons.find((r) => r.upstream === 'hang')!.reason).toMatch(/timeout/i);
    expect(reasons.find((r) => r.upstream === 'gone')!.reason).toMatch(/ECONNREFUSED/);
  });

  it('the probe reads at most a few KiB of a huge body and closes the connection', async () => {
    const { backends, probe } = await fixture(1);
    const b = backends[0]!;
    const res = await probe.probe(b.url, '/big', 5_000, new AbortController().signal);
    expect(res.status).toBe(200);
    await waitFor(() => b.bigClosed, 'server sees the probe connection closed');
    // The server may have buffered some MiB into socket buffers, but never the whole 64 MiB.
    expect(b.bigBytes).toBeLessThan(64 * 1024 * 1024);
    expect(MAX_BODY_BYTES).toBeLessThanOrEqual(8 * 1024);
  });
});
