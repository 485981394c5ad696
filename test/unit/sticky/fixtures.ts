/**
 * Test fixtures for the sticky resolver: a fleet of upstreams with operator state and health, a
 * request builder that derives usable/pickable/pick/hashPick from it, and a PinStore wrapper that
 * injects outages (down, hang, garbage) in front of a MemoryPinStore.
 */
import { createHash } from 'node:crypto';
import { MemoryPinStore, StoreDataError, StoreUnavailableError, type PinStore, type StickyRequest } from '../../../src/sticky/index.js';

export interface UpstreamView {
  state: 'active' | 'draining' | 'disabled';
  healthy: boolean;
}

export class Fleet {
  readonly ups = new Map<string, UpstreamView>();
  private rr = 0;
  constructor(ids: string[]) {
    for (const id of ids) this.ups.set(id, { state: 'active', healthy: true });
  }
  set(id: string, v: Partial<UpstreamView>): void {
    const cur = this.ups.get(id) ?? { state: 'active', healthy: true };
    this.ups.set(id, { ...cur, ...v });
  }
  remove(id: string): void {
    this.ups.delete(id);
  }
  usable = (id: string): boolean => {
    const u = this.ups.get(id);
    return !!u && u.state !== 'disabled' && u.healthy;
  };
  pickable = (id: string): boolean => {
    const u = this.ups.get(id);
    return !!u && u.state === 'active' && u.healthy;
  };
  private pickables(): string[] {
    return [...this.ups.keys()].filter(this.pickable).sort();
  }
  pick = (): string | undefined => {
    const p = this.pickables();
    return p.length === 0 ? undefined : p[this.rr++ % p.length];
  };
  /** Rendezvous hashing over pickable upstreams: every peer computes the same answer. */
  hashPick = (key: string): string | undefined => {
    let best: string | undefined;
    let bestScore = -1;
    for (const id of this.pickables()) {
      const score = createHash('sha256').update(`${id}\0${key}`).digest().readUInt32BE(0);
      if (score > bestScore) {
        bestScore = score;
        best = id;
      }
    }
    return best;
  };
  request(sessionKey: string | undefined, service = 'web'): StickyRequest {
    return { service, sessionKey, usable: this.usable, pickable: this.pickable, pick: this.pick, hashPick: this.hashPick };
  }
}

/** ghost: the caller times out, but the operation is applied 100 ms later (a late write on the server). */
export type FaultMode = 'ok' | 'down' | 'hang' | 'garbage' | 'ghost';

/** A PinStore that can be switched into failure modes; counts every call that reached it. */
export class FaultyStore implements PinStore {
  readonly kind = 'memory' as const;
  mode: FaultMode = 'ok';
  calls = 0;
  writes = 0;
  /** Late operations still to land (await them to let the "server" catch up). */
  readonly ghosts: Promise<void>[] = [];
  constructor(readonly inner: MemoryPinStore) {}
  private async gate<T>(fn: () => Promise<T>): Promise<T> {
    this.calls++;
    if (this.mode === 'down') throw new StoreUnavailableError('injected outage');
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    if (this.mode === 'ghost') {
      this.ghosts.push(new Promise<void>((resolve) => setTimeout(() => void fn().finally(resolve), 100)));
      return new Promise<T>(() => undefined);
    }
    if (this.mode === 'garbage') throw new StoreDataError('injected garbage');
    return fn();
  }
  get: PinStore['get'] = (sid, o) => this.gate(() => this.inner.get(sid, o));
  createIfAbsent: PinStore['createIfAbsent'] = (sid, c, o) =>
    this.gate(async () => {
      const r = await this.inner.createIfAbsent(sid, c, o);
      if (r.outcome === 'created' || r.renewed) this.writes++;
      return r;
    });
  compareAndMove: PinStore['compareAndMove'] = (sid, e, t, o) =>
    this.gate(async () => {
      const r = await this.inner.compareAndMove(sid, e, t, o);
      if (r.outcome !== 'conflict') this.writes++;
      return r;
    });
  renew: PinStore['renew'] = (sid, f, o) => this.gate(() => this.inner.renew(sid, f, o));
  close = async (): Promise<void> => undefined;
}

export class FakeClock {
  constructor(public now = 1_000_000) {}
  nowMs = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}
