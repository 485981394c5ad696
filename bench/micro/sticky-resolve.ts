/**
 * Micro-benchmark of the sticky resolver (src/sticky): resolves per second against a local
 * redis-server with the local pin cache on (1 s) and off (every resolve asks Redis), the same with
 * the in-memory store, Redis commands per resolve (INFO commandstats delta), store-call latency,
 * and resolves per second with Redis killed (breaker open, hash fallback).
 *
 * Invariant: starts its own redis-server on a free loopback port (no persistence) and kills it
 * before returning, whatever happens. Run standalone: `node dist/bench/micro/sticky-resolve.js`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { MemoryPinStore, RedisConnection, RedisPinStore, StickyResolver, type PinStore, type StickyRequest } from '../../src/sticky/index.js';

interface Row {
  name: string;
  value: number;
  unit: string;
}

const SESSIONS = 2000;
/** In-flight resolves; a proxy peer at a few thousand req/s with ~5 ms upstream latency has ~16–32. */
const CONCURRENCY = Number(process.env.BENCH_STICKY_CONCURRENCY ?? 16);
const DURATION_MS = Number(process.env.BENCH_STICKY_MS ?? 2000);
const UPS = ['u1', 'u2', 'u3', 'u4'];

export function request(key: string): StickyRequest {
  return {
    service: 'web',
    sessionKey: key,
    usable: () => true,
    pickable: () => true,
    pick: () => UPS[Math.floor(Math.random() * UPS.length)],
    hashPick: (k) => UPS[createHash('sha1').update(k).digest().readUInt32BE(0) % UPS.length],
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Drive `resolver` with CONCURRENCY loops over SESSIONS keys for DURATION_MS; returns resolves/s and p99 (ms). */
export async function drive(resolver: StickyResolver, keys: string[]): Promise<{ perSec: number; count: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let count = 0;
  const end = performance.now() + DURATION_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      let i = w;
      let n = 0;
      while (performance.now() < end) {
        const t0 = performance.now();
        const r = await resolver.resolve(request(keys[i % keys.length]!));
        if (r.kind !== 'pinned') throw new Error(`unexpected ${r.kind}`);
        if ((count & 15) === 0) lat.push(performance.now() - t0);
        count++;
        i += CONCURRENCY;
        // A cache hit or a fallback resolves in microtasks only; without this yield the loops would
        // starve timers and socket reads, which a real proxy (every request is I/O) never does.
        if (++n % 8 === 0) await new Promise((r) => setImmediate(r));
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { perSec: (count * 1000) / DURATION_MS, count, p50: q(0.5), p99: q(0.99) };
}

/** INFO commandstats as {round trips (EVAL/EVALSHA), all commands incl. those run inside scripts, writes}. */
async function commandCalls(conn: RedisConnection): Promise<{ trips: number; all: number; writes: number }> {
  const info = String(await conn.command('INFO', ['commandstats'], 1000));
  const out = { trips: 0, all: 0, writes: 0 };
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    const name = m[1]!;
    const calls = Number(m[2]);
    if (name === 'info') continue;
    out.all += calls;
    if (name === 'evalsha' || name === 'eval') out.trips += calls;
    if (name === 'hset' || name === 'pexpire' || name === 'hincrby') out.writes += calls;
  }
  return out;
}

export async function warm(resolver: StickyResolver, keys: string[]): Promise<void> {
  for (const k of keys) await resolver.resolve(request(k));
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  rows.push({ name: 'load average at start (1 min)', value: Number((await import('node:os')).loadavg()[0]!.toFixed(2)), unit: '' });
  const keys = Array.from({ length: SESSIONS }, (_, i) => `bench-session-${i}`);

  // In-memory store: the ceiling without a network.
  for (const cacheTtlMs of [1000, 0]) {
    const resolver = new StickyResolver({ store: new MemoryPinStore(), cacheTtlMs });
    await warm(resolver, keys);
    const r = await drive(resolver, keys);
    rows.push({ name: `memory store, cache ${cacheTtlMs ? 'on' : 'off'}: resolves/s`, value: Math.round(r.perSec), unit: 'ops/s' });
  }

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-redis-'));
  const server = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const killServer = (): void => {
    server.kill('SIGKILL');
  };
  process.once('exit', killServer);
  const stores: PinStore[] = [];
  try {
    const admin = new RedisConnection({ url: `redis://127.0.0.1:${port}`, budgetMs: 1000 });
    if (!(await admin.waitReady(10_000))) throw new Error('redis-server not ready');
    for (const cacheTtlMs of [1000, 0]) {
      const store = new RedisPinStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: `bench${cacheTtlMs}:` });
      stores.push(store);
      if (!(await store.connection.waitReady(5000))) throw new Error('store not ready');
      const resolver = new StickyResolver({ store, cacheTtlMs, budgetMs: 50 });
      await warm(resolver, keys);
      const before = await commandCalls(admin);
      const r = await drive(resolver, keys);
      const after = await commandCalls(admin);
      const tag = `redis store, cache ${cacheTtlMs ? 'on (1 s)' : 'off'}`;
      rows.push({ name: `${tag}: resolves/s`, value: Math.round(r.perSec), unit: 'ops/s' });
      const per = (v: number): number => Number((v / r.count).toFixed(4));
      rows.push({ name: `${tag}: Redis round trips per resolve`, value: per(after.trips - before.trips), unit: 'EVALSHA' });
      rows.push({ name: `${tag}: Redis commands per resolve (incl. inside scripts)`, value: per(after.all - before.all), unit: 'cmd' });
      rows.push({ name: `${tag}: Redis writes per resolve`, value: per(after.writes - before.writes), unit: 'cmd' });
      rows.push({ name: `${tag}: resolve p50`, value: Number(r.p50.toFixed(3)), unit: 'ms' });
      rows.push({ name: `${tag}: resolve p99`, value: Number(r.p99.toFixed(3)), unit: 'ms' });
      const st = resolver.stats();
      const degraded = st.fallbackHash + st.fallbackLastKnown;
      rows.push({ name: `${tag}: degraded resolves (fallback)`, value: degraded, unit: 'count' });
      if (cacheTtlMs === 0) {
        rows.push({ name: `${tag}: store call p99 (${CONCURRENCY} in flight)`, value: Number(st.storeLatencyMs.p99.toFixed(3)), unit: 'ms' });
        if (st.storeErrors.timeout > 0) rows.push({ name: `${tag}: store timeouts (50 ms budget)`, value: st.storeErrors.timeout, unit: 'count' });
      }
    }
    // Redis killed: the breaker opens after a few failures; the rest are local hash/last-known routes.
    const store = new RedisPinStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'benchdown:' });
    stores.push(store);
    await store.connection.waitReady(5000);
    const resolver = new StickyResolver({ store, cacheTtlMs: 0, budgetMs: 50 });
    await warm(resolver, keys);
    await admin.close();
    server.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const down = await drive(resolver, keys);
    rows.push({ name: 'redis killed (hash fallback): resolves/s', value: Math.round(down.perSec), unit: 'ops/s' });
    rows.push({ name: 'redis killed (hash fallback): resolve p99', value: Number(down.p99.toFixed(3)), unit: 'ms' });
    rows.push({ name: 'redis killed: store calls attempted', value: resolver.stats().storeCalls - SESSIONS, unit: 'count' });
  } finally {
    for (const s of stores) await s.close().catch(() => undefined);
    killServer();
    process.off('exit', killServer);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    (rows) => {
      for (const r of rows) console.log(`${r.name.padEnd(60)} ${String(r.value).padStart(12)} ${r.unit}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
