/**
 * Health through the real proxy (issue 4): a real meshgate process in front of real backends, with
 * active checks, outlier detection, panic mode and the circuit breaker observed the way an operator
 * and a client see them — responses, /api/v1/status, /api/v1/events and /metrics.
 *
 * Invariants pinned here:
 * - an upstream whose /healthz fails leaves rotation within interval × unhealthyThreshold + one
 *   interval (plus jitter and a scheduling allowance), clients see no 5xx meanwhile, and it comes
 *   back after healthyThreshold passing checks;
 * - consecutive 5xx eject an upstream; a repeat ejection lasts longer (base × timesEjected); never
 *   more than max(1, ⌊maxEjectionPercent × n⌋) upstreams are ejected at once;
 * - panic mode engages exactly when the healthy share drops under panicThreshold and is reported on
 *   status and as meshgate_balancer_panic;
 * - a full circuit breaker answers 503 `x-meshgate-reason: circuit-open` and is counted.
 *
 * No fixed sleeps: every wait is bounded polling (waitFor) on an observable condition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort, startPeer, waitFor, type PeerProcess } from '../helpers/meshgate.js';

/** Active-check settings of the `flip` service; the bounds below are derived from them. */
const INTERVAL_MS = 300;
/**
 * Probe timeout, longer than the interval on purpose: on a loaded CI box a loopback probe can stall
 * past 200 ms, and a timed-out probe of a *healthy* upstream would make it flap and the test lie.
 * Probes never overlap (the checker waits for each), and f2's failing probes answer 500 at once.
 */
const PROBE_TIMEOUT = '1s';
const UNHEALTHY_THRESHOLD = 2;
const HEALTHY_THRESHOLD = 2;
/** health/active-checker.ts INTERVAL_JITTER: each interval is stretched by up to 10 %. */
const JITTER = 0.1;
/**
 * Allowance for a loaded 2-core CI box (timers firing late, the status poll itself, the probe's
 * round trip). Small next to the bound it is added to, so a checker that waited a whole extra
 * interval would still fail the test.
 */
const SCHEDULING_SLACK_MS = 500;
/** The brief's bound: interval × threshold + one interval, each interval possibly jittered longer. */
const OUT_OF_ROTATION_BOUND_MS = INTERVAL_MS * (UNHEALTHY_THRESHOLD + 1) * (1 + JITTER) + SCHEDULING_SLACK_MS;
const BACK_IN_ROTATION_BOUND_MS = INTERVAL_MS * (HEALTHY_THRESHOLD + 1) * (1 + JITTER) + SCHEDULING_SLACK_MS;
/** Hang guard for conditions with no contract bound. */
const HANG_MS = 15_000;

let peer: PeerProcess;
const be: Record<string, Backend> = {};
let sse: EventCollector;

function config(dp: number, ap: number): string {
  const ups = (names: string[]) => names.map((n) => `      - { id: ${n}, url: ${be[n]!.url} }`).join('\n');
  return `
node:
  id: gw-health
  listen: 127.0.0.1:${dp}
  admin: { listen: 127.0.0.1:${ap} }
  accessLog: false
routes:
  - { match: { pathPrefix: /flip }, service: flip }
  - { match: { pathPrefix: /outl }, service: outl }
  - { match: { pathPrefix: /pan }, service: pan }
  - { match: { pathPrefix: /brk }, service: brk }
services:
  flip:
    balancer: round-robin
    healthCheck: { path: /healthz, interval: ${INTERVAL_MS}ms, timeout: ${PROBE_TIMEOUT}, healthyThreshold: ${HEALTHY_THRESHOLD}, unhealthyThreshold: ${UNHEALTHY_THRESHOLD} }
    upstreams:
${ups(['f1', 'f2', 'f3'])}
  outl:
    balancer: round-robin
    # No retries: each 5xx reaches the client, so the test can count what the detector saw.
    retries: { attempts: 0 }
    outlierDetection: { consecutive5xx: 3, baseEjectionTime: 1s, maxEjectionPercent: 50 }
    # Panic is exercised on its own service; here it would hide the ejection bound.
    panicThreshold: 0
    upstreams:
${ups(['o1', 'o2', 'o3', 'o4'])}
  pan:
    balancer: round-robin
    healthCheck: { path: /healthz, interval: 300ms, timeout: ${PROBE_TIMEOUT}, healthyThreshold: 1, unhealthyThreshold: 1 }
    panicThreshold: 50
    upstreams:
${ups(['p1', 'p2', 'p3', 'p4'])}
  brk:
    retries: { attempts: 0 }
    circuitBreaker: { maxInFlight: 1 }
    upstreams:
${ups(['s1'])}
`;
}

// ---- helpers ---------------------------------------------------------------------------------

interface UpstreamStatus {
  id: string;
  health: 'healthy' | 'unhealthy' | 'unknown';
  eligible: boolean;
  ejected: boolean;
  ejectedUntil?: string;
  timesEjected: number;
  inFlight: number;
  requests: number;
}
interface ServiceStatus {
  panic: boolean;
  upstreams: UpstreamStatus[];
}

async function service(name: string): Promise<ServiceStatus> {
  const st = (await (await fetch(`${peer.adminUrl}/api/v1/status`)).json()) as { services: Record<string, ServiceStatus> };
  return st.services[name]!;
}

async function upstream(svc: string, id: string): Promise<UpstreamStatus> {
  return (await service(svc)).upstreams.find((u) => u.id === id)!;
}

/** Value of one metric series (labels in any order), or undefined when the series is absent. */
async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${peer.adminUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!m) continue;
    const got = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

/** A client that keeps sending GETs until stopped, recording every status and answering backend. */
function clientLoop(path: string, concurrency = 2) {
  const results: { status: number; backend: string }[] = [];
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const r = await fetch(`${peer.url}${path}`);
        const body = await r.text();
        results.push({ status: r.status, backend: r.headers.get('x-backend') ?? body });
      } catch (err) {
        results.push({ status: 0, backend: String(err) });
      }
    }
  });
  return {
    results,
    get count() {
      return results.length;
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

interface SseEvent {
  type: string;
  data: Record<string, unknown> & { at: number };
}
interface EventCollector {
  readonly events: SseEvent[];
  close(): void;
}

/** Subscribes to /api/v1/events and keeps every event (the ejection records carry `at` and `untilMs`). */
async function collectEvents(adminUrl: string): Promise<EventCollector> {
  const events: SseEvent[] = [];
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${adminUrl}/api/v1/events`, { headers: { accept: 'text/event-stream' } }, resolve);
    req.on('error', reject);
    req.end();
  });
  res.setEncoding('utf8');
  let buf = '';
  res.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) events.push({ type, data: JSON.parse(data) as SseEvent['data'] });
    }
  });
  res.on('error', () => undefined);
  return { events, close: () => res.destroy() };
}

// ---- setup -----------------------------------------------------------------------------------

beforeAll(async () => {
  const names = ['f1', 'f2', 'f3', 'o1', 'o2', 'o3', 'o4', 'p1', 'p2', 'p3', 'p4', 's1'];
  const started = await Promise.all(names.map((n) => startBackend(n)));
  for (const b of started) be[b.name] = b;
  const [dp, ap] = [await freePort(), await freePort()];
  peer = await startPeer(config(dp, ap), { dataPort: dp, adminPort: ap });
  sse = await collectEvents(peer.adminUrl);
  // Services with active checks start `unknown`; wait for the first verdicts so each test starts clean.
  await waitFor(async () => {
    const [flip, pan] = await Promise.all([service('flip'), service('pan')]);
    return [...flip.upstreams, ...pan.upstreams].every((u) => u.health === 'healthy');
  }, HANG_MS, () => `health checks never passed:\n${peer.output()}`);
});

afterAll(async () => {
  sse?.close();
  await peer?.stop('SIGKILL');
  await Promise.all(Object.values(be).map((b) => b.close()));
});

// ---- tests -----------------------------------------------------------------------------------

describe('health through the real proxy', () => {
  it('takes an upstream whose /healthz fails out of rotation in time, with no 5xx to clients, and brings it back', async () => {
    const loop = clientLoop('/flip/id');
    let flippedAt = Infinity;
    try {
      await waitFor(() => new Set(loop.results.map((r) => r.backend)).size === 3, HANG_MS, () => 'round-robin never reached all three');
      expect(await metric('meshgate_upstream_healthy', { service: 'flip', upstream: 'f2' })).toBe(1);

      flippedAt = Date.now();
      be.f2!.setHealth(500);
      await waitFor(async () => {
        const u = await upstream('flip', 'f2');
        return u.health === 'unhealthy' && !u.eligible;
      }, OUT_OF_ROTATION_BOUND_MS, () => `f2 still in rotation ${Date.now() - flippedAt} ms after its /healthz turned 500 (bound ${OUT_OF_ROTATION_BOUND_MS} ms)`);
      const outAfterMs = Date.now() - flippedAt;
      // Status reports health per upstream (the others stay healthy), and metrics agree.
      const healthMap = async () => Object.fromEntries((await service('flip')).upstreams.map((u) => [u.id, u.health]));
      await waitFor(async () => JSON.stringify(await healthMap()) === JSON.stringify({ f1: 'healthy', f2: 'unhealthy', f3: 'healthy' }), HANG_MS, () => 'status disagrees');
      expect((await service('flip')).panic).toBe(false);
      expect(await metric('meshgate_upstream_healthy', { service: 'flip', upstream: 'f2' })).toBe(0);
      expect(await metric('meshgate_upstream_healthy', { service: 'flip', upstream: 'f1' })).toBe(1);

      // Out of rotation: once requests picked before the switch have landed, f2 gets nothing more.
      const settle = loop.count + 4;
      await waitFor(() => loop.count >= settle, HANG_MS);
      const hitsWhileOut = be.f2!.hits;
      const until = loop.count + 60;
      await waitFor(() => loop.count >= until, HANG_MS);
      expect(be.f2!.hits).toBe(hitsWhileOut);

      const healedAt = Date.now();
      be.f2!.setHealth(200);
      await waitFor(async () => {
        const u = await upstream('flip', 'f2');
        return u.health === 'healthy' && u.eligible;
      }, BACK_IN_ROTATION_BOUND_MS, () => `f2 not back ${Date.now() - healedAt} ms after /healthz recovered (bound ${BACK_IN_ROTATION_BOUND_MS} ms)`);
      if (process.env.MG_TEST_VERBOSE) console.log(`out of rotation after ${outAfterMs} ms, back after ${Date.now() - healedAt} ms`);
      // Requests reach it again.
      await waitFor(() => be.f2!.hits > hitsWhileOut, HANG_MS, () => 'f2 healthy again but no request reached it');
    } finally {
      await loop.stop();
    }
    // The backend kept answering /id throughout: taking it out must not have cost a single client request.
    expect(loop.results.length).toBeGreaterThan(60);
    expect(loop.results.filter((r) => r.status !== 200)).toEqual([]);
    // The transitions were announced on the event stream (the first unknown → healthy may predate the subscription).
    const changes = sse.events.filter((e) => e.type === 'health:changed' && e.data.upstream === 'f2' && e.data.at >= flippedAt).map((e) => e.data.to);
    expect(changes).toEqual(['unhealthy', 'healthy']);
  });

  it('ejects an upstream after consecutive 5xx, longer on repeat, and never more than the max-ejection share', async () => {
    const loop = clientLoop('/outl/id');
    const ejections = () => sse.events.filter((e) => e.type === 'outlier:ejected' && e.data.service === 'outl');
    try {
      be.o1!.setFailAll(500);
      await waitFor(async () => {
        const u = await upstream('outl', 'o1');
        return u.ejected && u.timesEjected === 1;
      }, HANG_MS, () => 'o1 was never ejected');
      const ejectionOf = async (id: string, times: number) => {
        // The event went out before status could show the ejection, but on another socket: wait for it.
        const find = () => ejections().find((e) => e.data.upstream === id && e.data.timesEjected === times);
        await waitFor(() => find() !== undefined, HANG_MS, () => `no outlier:ejected event for ${id} (${times}×)`);
        return find()!;
      };
      const first = await ejectionOf('o1', 1);
      expect(first.data.reason).toBe('consecutive-5xx');

      // It comes back after the base ejection time, fails again at once and is ejected for longer.
      await waitFor(async () => {
        const u = await upstream('outl', 'o1');
        return u.ejected && u.timesEjected === 2;
      }, HANG_MS, () => 'o1 was never ejected a second time');
      const second = await ejectionOf('o1', 2);
      const o1 = await upstream('outl', 'o1');
      // Status reports the ejection end the event announced.
      expect(o1.ejectedUntil).toBe(new Date(second.data.untilMs as number).toISOString());
      // Durations from the records themselves (ejection time → ejectedUntil), not from the test's clock.
      const d1 = (first.data.untilMs as number) - first.data.at;
      const d2 = (second.data.untilMs as number) - second.data.at;
      expect(d2).toBeGreaterThan(d1);
      // The detector reads the clock for untilMs just before the bus stamps `at`, so each duration is
      // at most base × timesEjected, and less only by however long the process was descheduled in
      // between (tens of ms on a loaded box; 100 ms allowed).
      expect(d1).toBeLessThanOrEqual(1000);
      expect(d1).toBeGreaterThan(900);
      expect(d2).toBeLessThanOrEqual(2000);
      expect(d2).toBeGreaterThan(1900);
      expect(await metric('meshgate_outlier_ejections_enforced_total', { service: 'outl', upstream: 'o1' })).toBeGreaterThanOrEqual(2);

      // Three of four fail: 50 % of 4 allows two ejected at once, never three.
      const before = ejections().length;
      be.o2!.setFailAll(500);
      be.o3!.setFailAll(500);
      await waitFor(async () => (await service('outl')).upstreams.filter((u) => u.ejected).length === 2, HANG_MS, () => 'never two ejected');
      expect(await metric('meshgate_outlier_ejections_active', { service: 'outl' })).toBeLessThanOrEqual(2);
      // Let ejections expire and re-form a few times while the failing three keep failing.
      await waitFor(() => ejections().length >= before + 4, HANG_MS, () => `only ${ejections().length - before} ejections after o2/o3 started failing`);
      const st = await service('outl');
      expect(st.upstreams.filter((u) => u.ejected).length).toBeLessThanOrEqual(2);
      expect(st.upstreams.find((u) => u.id === 'o4')!.ejected).toBe(false);
    } finally {
      await loop.stop();
      for (const n of ['o1', 'o2', 'o3']) be[n]!.setFailAll(0);
    }
    // Replay the event stream: at no moment were more than two upstreams of `outl` ejected.
    const ejected = new Set<string>();
    let most = 0;
    for (const e of sse.events) {
      if (e.data.service !== 'outl') continue;
      if (e.type === 'outlier:ejected') ejected.add(e.data.upstream as string);
      if (e.type === 'outlier:restored') ejected.delete(e.data.upstream as string);
      most = Math.max(most, ejected.size);
    }
    expect(most).toBe(2);
    expect(sse.events.some((e) => e.type === 'outlier:ejected' && e.data.upstream === 'o4')).toBe(false);
  });

  it('enters panic mode when the healthy share drops under panicThreshold, reports it, and leaves it', async () => {
    expect((await service('pan')).panic).toBe(false);
    expect(await metric('meshgate_balancer_panic', { service: 'pan' })).toBe(0);

    // 1 of 4 healthy = 25 % < 50 %: panic.
    for (const n of ['p2', 'p3', 'p4']) be[n]!.setHealth(500);
    await waitFor(async () => (await service('pan')).panic, HANG_MS, () => 'panic never engaged');
    const st = await service('pan');
    expect(st.upstreams.filter((u) => u.health === 'unhealthy').map((u) => u.id).sort()).toEqual(['p2', 'p3', 'p4']);
    // In panic health is not trusted: every active upstream is eligible again.
    expect(st.upstreams.every((u) => u.eligible)).toBe(true);
    expect(await metric('meshgate_balancer_panic', { service: 'pan' })).toBe(1);
    // And traffic really spreads over the unhealthy ones too.
    const hits = be.p3!.hits;
    for (let i = 0; i < 8; i++) expect((await fetch(`${peer.url}/pan/id`)).status).toBe(200);
    expect(be.p3!.hits).toBeGreaterThan(hits);
    expect(sse.events.some((e) => e.type === 'panic:changed' && e.data.service === 'pan' && e.data.panic === true)).toBe(true);

    // 2 of 4 healthy = 50 %, not under the threshold: panic ends and the unhealthy ones leave rotation.
    be.p2!.setHealth(200);
    await waitFor(async () => !(await service('pan')).panic, HANG_MS, () => 'panic never ended');
    const after = await service('pan');
    expect(after.upstreams.filter((u) => u.eligible).map((u) => u.id).sort()).toEqual(['p1', 'p2']);
    expect(await metric('meshgate_balancer_panic', { service: 'pan' })).toBe(0);
    for (const n of ['p3', 'p4']) be[n]!.setHealth(200);
  });

  it('answers 503 circuit-open when the breaker is full, and counts it', async () => {
    const slow = fetch(`${peer.url}/brk/slow?ms=1500`).then(async (r) => ({ status: r.status, body: await r.text() }));
    // The first request is in flight at the upstream before the second is sent.
    await waitFor(async () => (await upstream('brk', 's1')).inFlight === 1, HANG_MS, () => 'slow request never in flight');
    const second = await fetch(`${peer.url}/brk/id`);
    expect(second.status).toBe(503);
    expect(second.headers.get('x-meshgate-reason')).toBe('circuit-open');
    await second.text();
    expect(await slow).toEqual({ status: 200, body: 's1' });
    expect(await metric('meshgate_circuit_breaker_rejections_total', { service: 'brk', kind: 'max-in-flight' })).toBe(1);
    expect(sse.events.some((e) => e.type === 'breaker:open' && e.data.service === 'brk')).toBe(true);
    // With the slot free again the next request passes.
    expect((await fetch(`${peer.url}/brk/id`)).status).toBe(200);
  });

  it('exposes the health series on /metrics and health per upstream on /api/v1/status', async () => {
    const text = await (await fetch(`${peer.adminUrl}/metrics`)).text();
    for (const series of [
      'meshgate_upstream_healthy{',
      'meshgate_outlier_ejections_active{',
      'meshgate_outlier_ejections_enforced_total{',
      'meshgate_circuit_breaker_rejections_total{',
      'meshgate_balancer_panic{',
    ]) expect(text, series).toContain(series);
    for (const [svc, ids] of Object.entries({ flip: ['f1', 'f2', 'f3'], outl: ['o1', 'o2', 'o3', 'o4'], pan: ['p1', 'p2', 'p3', 'p4'], brk: ['s1'] })) {
      const st = await service(svc);
      expect(st.upstreams.map((u) => u.id).sort()).toEqual(ids);
      for (const u of st.upstreams) {
        expect(['healthy', 'unhealthy', 'unknown']).toContain(u.health);
        expect(typeof u.ejected).toBe('boolean');
        expect(typeof u.timesEjected).toBe('number');
        expect(await metric('meshgate_upstream_healthy', { service: svc, upstream: u.id })).toBeDefined();
      }
    }
    // Services without active checks report `unknown`, not a made-up `healthy`.
    expect((await service('brk')).upstreams[0]!.health).toBe('unknown');
  });
});
