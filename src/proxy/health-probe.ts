/**
 * The undici-based probe behind src/health's active checker (src/proxy is the only importer of
 * undici). One GET per call; resolves with the status, rejects on connect error, reset or timeout.
 *
 * Invariants:
 * - Never reads a big body in full: at most MAX_BODY_BYTES are drained (so a small body ends cleanly
 *   and the keep-alive connection is reused, like Envoy's reuse_connection), then the body is
 *   destroyed, which closes that connection instead of downloading the rest.
 * - Probes use their own Agent, so health traffic neither waits behind nor steals connections from
 *   the data path's pools, and `close()` releases every probe socket.
 * - Redirects are not followed (a 3xx is reported as is; the checker decides).
 * - An https upstream is probed with its service's upstreamTls, through the data path's connector
 *   (upstream-tls.ts): a probe passes only if a request could.
 */
import { Agent, request } from 'undici';
import type { UpstreamTlsMaterial } from '../model/validate/index.js';
import { createUpstreamConnector } from './upstream-tls.js';

/** Enough for any sane health body ("ok", a small JSON status); beyond it we stop reading. */
export const MAX_BODY_BYTES = 4096;

/** Same shape as src/health's `Probe`, declared here so proxy/ does not depend on health/. */
export type HealthProbe = (url: string, path: string, timeoutMs: number, signal: AbortSignal, tls?: UpstreamTlsMaterial) => Promise<{ status: number }>;

/** Distinct TLS materials probed at once: one per service with upstreamTls, plus the system store. A
 *  reload that changes a file makes a new one; past this many the least recently used is closed. */
const MAX_TLS_AGENTS = 64;
/** undici's own default connect timeout; a probe is aborted at its own timeout before that anyway. */
const PROBE_CONNECT_TIMEOUT_MS = 10_000;

export interface HealthProbeHandle {
  readonly probe: HealthProbe;
  close(): Promise<void>;
}

export interface HealthProbeOptions {
  /** Idle time before a probe connection is closed. Kept below Node's default server
   * keepAliveTimeout (5 s) so we never reuse a socket the backend is closing (nodejs/node#47130). */
  readonly keepAliveTimeoutMs?: number;
  readonly userAgent?: string;
}

export function createHealthProbe(opts: HealthProbeOptions = {}): HealthProbeHandle {
  const agentOptions = {
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
    // Probes of one upstream never overlap (the checker waits for each one); two covers two
    // services that share an origin without queueing one behind the other.
    connections: 2,
  };
  const agent = new Agent(agentOptions);
  const tlsAgents = new Map<string, Agent>();
  const tlsAgent = (tls: UpstreamTlsMaterial | undefined): Agent => {
    const id = tls?.id ?? 'system';
    let a = tlsAgents.get(id);
    if (a !== undefined) {
      tlsAgents.delete(id); // re-inserted below: Map order is recency
    } else {
      a = new Agent({ ...agentOptions, connect: createUpstreamConnector(tls, PROBE_CONNECT_TIMEOUT_MS) });
      if (tlsAgents.size >= MAX_TLS_AGENTS) {
        const [oldest, old] = tlsAgents.entries().next().value as [string, Agent];
        tlsAgents.delete(oldest);
        void old.close().catch(() => undefined);
      }
    }
    tlsAgents.set(id, a);
    return a;
  };
  const userAgent = opts.userAgent ?? 'meshgate-health-check';

  const probe: HealthProbe = async (url, path, timeoutMs, signal, tls) => {
    const target = new URL(path, url);
    const res = await request(target, {
      method: 'GET',
      dispatcher: target.protocol === 'https:' ? tlsAgent(tls) : agent,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { 'user-agent': userAgent, accept: '*/*' },
    });
    const status = res.statusCode;
    let read = 0;
    try {
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length;
        if (read > MAX_BODY_BYTES) break;
      }
    } catch {
      // The status already arrived; a body error does not change the verdict.
    } finally {
      if (read > MAX_BODY_BYTES || !res.body.readableEnded) res.body.destroy();
    }
    return { status };
  };

  return {
    probe,
    close: async () => {
      await Promise.all([agent, ...tlsAgents.values()].map((a) => a.close()));
      tlsAgents.clear();
    },
  };
}
