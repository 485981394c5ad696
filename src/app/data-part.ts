/**
 * The data plane of one process, as the single-process peer and each worker (node.workers > 1) build
 * it: the plain listener, the TLS listener when `node.tls` is set, the Upgrade proxy, and the
 * scrape-time sources of the data-plane metrics. One builder, so a worker serves exactly what a
 * single-process peer serves.
 */
import type { Config } from '../config/schema.js';
import { withRequestMetrics } from '../observability/access-tee.js';
import { trackConnections } from '../observability/connections.js';
import type { ForwarderDeps } from '../proxy/forward.js';
import { UpgradeProxy } from '../proxy/upgrade.js';
import { DataPlane } from '../proxy/server.js';
import type { TlsListener } from '../proxy/tls-listener.js';
import type { CertificateSet } from '../tls/certificates.js';
import { splitHostPort } from '../lib/listen.js';

/** What the forwarder needs (the data plane adds its own drain flag and deadlines). */
export type DataPartDeps = Omit<ForwarderDeps, 'isDraining' | 'deadlines'>;

export interface DataPart {
  readonly dataPlane: DataPlane;
  readonly upgrades: UpgradeProxy;
  readonly tls: TlsListener | undefined;
  /** Binds the TLS listener (if any) and the plain one; returns the ports bound (0 for no TLS). */
  listen(): Promise<{ dataPort: number; tlsPort: number }>;
}

export function createDataPart(cfg: Config, certificates: CertificateSet | undefined, deps: DataPartDeps): DataPart {
  const upgrades = new UpgradeProxy({ ...deps });
  const dataPlane = new DataPlane(
    { ...deps, accessLog: withRequestMetrics(deps.metrics, deps.accessLog) },
    upgrades,
    deps.metrics,
    deps.log,
    {
      maxHeaderBytes: cfg.node.maxHeaderSize,
      keepAliveTimeoutMs: cfg.node.keepAliveTimeout,
      headersTimeoutMs: cfg.node.headersTimeout,
      requestTimeoutMs: cfg.node.requestTimeout,
      maxHeadersCount: cfg.node.maxHeadersCount,
      maxConnections: cfg.node.maxConnections,
      bodyIdleTimeoutMs: cfg.node.bodyIdleTimeout,
    },
  );
  const tls = cfg.node.tls && certificates ? dataPlane.enableTls(certificates, cfg.node.tls.http2) : undefined;
  deps.metrics.downstreamSource = trackConnections(tls ? [dataPlane.server, tls.server] : [dataPlane.server]);
  deps.metrics.websocketSource = () => upgrades.openCount;
  return {
    dataPlane,
    upgrades,
    tls,
    async listen() {
      let tlsPort = 0;
      if (tls && cfg.node.tls) {
        const [th, tp] = splitHostPort(cfg.node.tls.listen);
        tlsPort = await tls.listen(th, tp);
        dataPlane.redirectToPort = cfg.node.tls.redirectHttp ? tlsPort : undefined;
      }
      const [dh, dp] = splitHostPort(cfg.node.listen);
      const dataPort = await dataPlane.listen(dh, dp);
      return { dataPort, tlsPort };
    },
  };
}
