/**
 * Writes without quorum fail fast (README: "without quorum writes fail fast with 503
 * MG_ERR_RAFT_NO_QUORUM"): with two of three real peer processes SIGKILLed, a PUT to the survivor is
 * refused at once — whether the survivor was the leader (it still thinks it leads until CheckQuorum steps
 * it down) or a follower (it still knows the dead leader until its election timeout) — instead of
 * waiting out the 5 s proposal timeout with MG_ERR_RAFT_TIMEOUT ("outcome unknown").
 * A refused write was never handed to Raft, so after the peers return it is not there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { waitFor } from '../helpers/meshgate.js';
import { oneServiceYaml, TestCluster } from '../helpers/cluster.js';

let backend: Backend;
let cluster: TestCluster;
const IDS = ['q-1', 'q-2', 'q-3'];
/** Well under the 5 s proposal timeout: a refusal, not a timeout. */
const FAST_MS = 1500;

beforeAll(async () => {
  backend = await startBackend('qb');
  cluster = new TestCluster(() => oneServiceYaml(backend.url));
  await cluster.allocate(IDS);
  await Promise.all(IDS.map((id) => cluster.start(id, IDS)));
});

afterAll(async () => {
  await cluster?.stopAll();
  await backend?.close();
});

interface PeerLink {
  id: string;
  connected: boolean;
}

async function put(via: string, id: string): Promise<{ status: number; code: string | undefined; ms: number }> {
  const t0 = performance.now();
  const r = await cluster.admin(via, `/api/v1/services/api/upstreams/${id}`, { method: 'PUT', body: JSON.stringify({ url: backend.url }) });
  const body = (await r.json()) as { error?: { code?: string }; code?: string };
  return { status: r.status, code: body.error?.code ?? body.code, ms: performance.now() - t0 };
}

/** The survivor's links to both dead peers are down (SIGKILL closes their sockets at once). */
async function waitLinksDown(survivor: string, dead: string[]): Promise<void> {
  await waitFor(async () => {
    const st = (await cluster.raft(survivor)) as unknown as { peers?: PeerLink[] } | undefined;
    return dead.every((d) => st?.peers?.find((p) => p.id === d)?.connected === false);
  }, 10_000, () => `${survivor} still reports a link to ${dead.join(', ')}`);
}

async function hasUpstream(via: string, id: string): Promise<boolean> {
  const r = await cluster.admin(via, '/api/v1/services/api/upstreams');
  const body = (await r.json()) as { upstreams: Array<{ id: string }> };
  return body.upstreams.some((u) => u.id === id);
}

describe('writes without quorum fail fast', () => {
  for (const survivorRole of ['leader', 'follower'] as const) {
    it(`a PUT to the surviving ${survivorRole} of three is refused with 503 MG_ERR_RAFT_NO_QUORUM at once`, async () => {
      const leader = await cluster.leader();
      expect((await put(leader, `before-${survivorRole}`)).status).toBe(200);
      const survivor = survivorRole === 'leader' ? leader : IDS.find((id) => id !== leader)!;
      const dead = IDS.filter((id) => id !== survivor);
      await Promise.all(dead.map((id) => cluster.kill(id)));
      await waitLinksDown(survivor, dead);

      const r = await put(survivor, `refused-${survivorRole}`);
      expect(r.status, JSON.stringify(r)).toBe(503);
      expect(r.code).toBe('MG_ERR_RAFT_NO_QUORUM');
      expect(r.ms).toBeLessThan(FAST_MS);
      console.log(`surviving ${survivorRole}: refused in ${r.ms.toFixed(0)} ms`);

      // The peers come back: the refused write was never proposed, so it never appears.
      await Promise.all(dead.map((id) => cluster.start(id, IDS)));
      const next = await cluster.leader();
      expect((await put(next, `after-${survivorRole}`)).status).toBe(200);
      for (const id of IDS) {
        await waitFor(() => hasUpstream(id, `after-${survivorRole}`), 10_000, () => `${id} behind`);
        expect(await hasUpstream(id, `refused-${survivorRole}`)).toBe(false);
      }
    }, 60_000);
  }
});
