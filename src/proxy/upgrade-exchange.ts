/**
 * One Upgrade request's journey, from the routing decision to the end of its tunnel (the HTTP path's
 * Exchange in forward.ts, for a raw socket). The invariants it keeps are listed in upgrade.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { clientIpOf, clientResponseHeaders, protoOf, upstreamRequestHeaders } from './headers.js';
import { admitNext, pickUpstream, releaseUpstream, takeRetrySlot, type LocalAnswer } from './attempt-admission.js';
import { hashKeyOf, unavailableAnswer, type ForwarderDeps } from './forward.js';
import type { CallResult } from './routing.js';
import type { ServiceSnapshot } from './routing-snapshot.js';
import type { ServiceState } from './service-state.js';
import { resolvePin, type StickyRequest } from './sticky-view.js';
import type { UpstreamRuntime } from './upstream-runtime.js';
import { dialFor, UpstreamHandshake, type HandshakeFailure, type HandshakeHandler } from './upgrade-handshake.js';
import { Tunnel, type TunnelEnd } from './upgrade-tunnel.js';
import { relayResponse, write101, writeLocalRaw, type RelayOutcome } from './upgrade-wire.js';

const SUCCESS: CallResult = { kind: 'success' };

/** What the Upgrade path needs of the data path's dependencies (the HTTP path's, minus its body limits). */
export type UpgradeDeps = Pick<ForwarderDeps, 'routing' | 'health' | 'states' | 'metrics' | 'log' | 'accessLog' | 'random'>;

export class UpgradeExchange implements HandshakeHandler, StickyRequest {
  private readonly startMs = performance.now();
  private readonly clientIp: string;
  /** The protocol asked of the upstream; undefined for h2c, which is forwarded without it. */
  private readonly upgrade: string | undefined;
  private phase: 'routing' | 'handshake' | 'relaying' | 'tunnel' | 'done' = 'routing';
  // Read by admitNext (attempt-admission.ts, AttemptRoute), as the HTTP path's are.
  attempt = 0;
  private tried: Set<string> | undefined;
  pinnedUpstream: string | undefined;
  private fence: number | undefined;
  private setCookie: string | undefined;
  private sessionHeader: readonly [string, string] | undefined;
  private upstream: UpstreamRuntime | undefined;
  /** Why the previous attempt failed (admitAttempt's `lastFailure`). */
  lastFailure: LocalAnswer | undefined;
  private handshake: UpstreamHandshake | undefined;
  private tunnel: Tunnel | undefined;
  private sentAt = 0;
  private status = 0;
  private reason = '';
  // Held resources, each released exactly once (the release methods clear them).
  private slot: UpstreamRuntime | undefined;
  private pending = false;
  private retrySlot = false;
  private requestOpen = false;

  constructor(
    private readonly deps: UpgradeDeps,
    readonly req: IncomingMessage,
    private readonly client: Duplex,
    private readonly head: Buffer,
    readonly svc: ServiceSnapshot,
    readonly state: ServiceState,
    private readonly requestId: string,
    private readonly owner: { onTunnel(open: boolean): void; onDone(ex: UpgradeExchange): void },
  ) {
    this.clientIp = clientIpOf(req.socket.remoteAddress);
    const token = req.headers.upgrade ?? '';
    this.upgrade = /^\s*h2c\s*$/i.test(token) ? undefined : token;
  }

  start(): void {
    this.state.budget.onRequestStart();
    this.requestOpen = true;
    this.client.on('error', () => this.onClientGone());
    this.client.once('close', () => this.onClientGone());
    const sticky = this.svc.sticky;
    if (sticky === undefined) return this.connect();
    resolvePin(sticky, this, this.deps.log, () => this.phase === 'routing', (p) => {
      this.fence = p.fence;
      this.pinnedUpstream = p.upstream;
      this.setCookie = p.setCookie;
      this.sessionHeader = p.sessionHeader;
      this.connect();
    }, (status, reason, text) => this.local(status, reason, text));
  }

  /** The balancer's pick (also what sticky uses for new and moved pins). */
  pick(): string | undefined {
    const svc = this.svc;
    const hashKey = svc.hashOn === undefined ? undefined : hashKeyOf(svc.hashOn, this.req, this.clientIp);
    return pickUpstream({ svc, state: this.state, metrics: this.deps.metrics, random: this.deps.random, attempt: this.attempt, tried: this.tried, hashKey });
  }

  private connect(): void {
    if (this.phase === 'done') return;
    const svc = this.svc;
    const admitted = admitNext(this, this.deps.metrics);
    if (!admitted.ok) return this.local(admitted.status, admitted.reason, admitted.text);
    const rt = admitted.upstream;
    this.upstream = rt;
    this.slot = rt;
    this.pending = true;
    const headers = upstreamRequestHeaders(this.req.rawHeaders, this.req.headers.connection, {
      clientIp: this.clientIp,
      proto: protoOf(this.req.socket),
      requestId: this.requestId,
      fence: this.fence,
    }, this.upgrade);
    const t = svc.cfg.timeouts;
    this.phase = 'handshake';
    this.sentAt = performance.now();
    this.handshake = new UpstreamHandshake({
      origin: dialFor(rt.spec.url),
      method: this.req.method ?? 'GET',
      path: this.req.url ?? '/',
      headers,
      tls: svc.cfg.upstreamTls?.material,
      connectTimeoutMs: t.upgrade.connect ?? t.connect,
      handshakeTimeoutMs: t.upgrade.handshake,
    }, this);
  }

  // --- HandshakeHandler: exactly one of these per attempt ---

  onUpgraded(res: IncomingMessage, socket: Socket, upstreamHead: Buffer): void {
    if (this.upgrade === undefined) {
      // We did not ask for a protocol switch: an upstream that switches anyway answered wrongly.
      socket.destroy();
      return this.onFailure('malformed', 'MG_UPGRADE_UNSOLICITED');
    }
    this.recordAnswer(this.upstream!, 101);
    this.endRequest();
    const headers = clientResponseHeaders(res.rawHeaders, this.requestId, this.setCookie, this.sessionHeader);
    if (!write101(this.client, headers, res.headers.upgrade!)) {
      socket.destroy();
      return this.clientLeft();
    }
    this.status = 101;
    this.phase = 'tunnel';
    if (upstreamHead.length > 0) this.client.write(upstreamHead);
    if (this.head.length > 0) socket.write(this.head);
    this.owner.onTunnel(true);
    this.tunnel = new Tunnel(this.client, socket, this.svc.cfg.timeouts.upgrade.idle, (why) => this.onTunnelEnd(why));
  }

  onResponse(res: IncomingMessage): void {
    const rt = this.upstream!;
    const status = res.statusCode ?? 502;
    this.recordAnswer(rt, status);
    this.endRequest();
    this.status = status;
    this.phase = 'relaying';
    const headers = clientResponseHeaders(res.rawHeaders, this.requestId, this.setCookie, this.sessionHeader);
    relayResponse(this.client, res, headers, this.req.method === 'HEAD', (outcome: RelayOutcome) => {
      this.releaseSlot();
      if (outcome === 'client-gone') this.reason = 'client-closed';
      else if (outcome === 'upstream-cut') {
        rt.failures++;
        this.reason = 'upstream-body-error';
        this.deps.log.warn({ service: this.svc.name, upstream: rt.spec.id, requestId: this.requestId }, 'upstream failed mid-body (upgrade refused)');
      }
      this.finish();
    });
  }

  onFailure(failure: HandshakeFailure, code: string): void {
    const rt = this.upstream!;
    this.releasePending();
    rt.recordLatency(performance.now() - this.sentAt, true);
    this.releaseSlot();
    this.releaseRetrySlot();
    this.handshake = undefined;
    rt.failures++;
    rt.series.connectError(failure);
    const passive: CallResult = failure === 'timeout' ? { kind: 'local-origin', cause: 'timeout' }
      : failure === 'connect-failure' ? { kind: 'local-origin', cause: 'connect-failure' } : { kind: 'local-origin', cause: 'reset' };
    this.deps.health?.recordResult(this.svc.name, rt.spec.id, passive);
    this.deps.log.warn({ service: this.svc.name, upstream: rt.spec.id, requestId: this.requestId, code, failure }, `upgrade: upstream ${failure}`);
    this.phase = 'routing';
    if (failure === 'timeout') return this.local(504, 'upstream-timeout', 'upstream handshake timeout');
    if (failure === 'malformed') return this.local(502, 'bad-upstream-response', 'bad response from upstream');
    const answer = unavailableAnswer(failure, code);
    // Only a connect failure is retried: the handshake never reached that upstream.
    if (failure === 'connect-failure' && this.startRetry()) {
      this.lastFailure = answer;
      return this.connect();
    }
    return this.local(answer.status, answer.reason, answer.text);
  }

  /** Shutdown: a tunnel is closed, a request not yet upgraded is answered 503. */
  shutdown(): void {
    if (this.tunnel) return this.tunnel.end('shutdown');
    if (this.phase === 'relaying') {
      this.client.destroy();
      return;
    }
    this.abortHandshake();
    this.local(503, 'shutting-down', 'peer shutting down');
  }

  private recordAnswer(rt: UpstreamRuntime, status: number): void {
    this.releasePending();
    this.handshake = undefined;
    const ms = performance.now() - this.sentAt;
    rt.recordLatency(ms, status >= 500);
    rt.series.observeSeconds(ms / 1000);
    rt.requests++;
    rt.series.countStatus(status);
    this.deps.health?.recordResult(this.svc.name, rt.spec.id, status >= 500 ? { kind: '5xx', status } : SUCCESS);
  }

  private onTunnelEnd(why: TunnelEnd): void {
    this.owner.onTunnel(false);
    this.releaseSlot();
    // A tunnel's bytes are the two ends' business: an upstream error is counted, never ejected on.
    if (why === 'upstream-error') this.upstream!.failures++;
    this.reason = why;
    this.finish();
  }

  /** The client's socket errored or closed. Outside the routing and handshake phases the relay or
   *  the tunnel handles it. */
  private onClientGone(): void {
    if (this.phase !== 'routing' && this.phase !== 'handshake') return;
    this.abortHandshake();
    this.clientLeft();
  }

  private clientLeft(): void {
    this.releaseSlot();
    this.status = 499; // nginx's "client closed request", for the access log only
    this.reason = 'client-closed';
    this.finish();
  }

  private abortHandshake(): void {
    if (!this.handshake) return;
    this.handshake.abort();
    this.handshake = undefined;
    this.releasePending();
    this.releaseSlot();
  }

  private startRetry(): boolean {
    const policy = this.svc.cfg.retries;
    if (this.attempt >= policy.attempts || !policy.on.includes('connect-failure')) return false;
    if (!takeRetrySlot(this.state, this.deps.metrics, this.svc.name)) return false;
    this.retrySlot = true;
    (this.tried ??= new Set()).add(this.upstream!.spec.id);
    this.attempt++;
    return true;
  }

  /** An answer meshgate writes itself. */
  private local(status: number, reason: string, text: string): void {
    if (this.phase === 'done') return;
    this.status = status;
    this.reason = reason;
    this.deps.metrics.localResponses.labels(this.svc.name, String(status), reason).inc();
    if (status >= 500) this.deps.log.warn({ service: this.svc.name, upstream: this.upstream?.spec.id, requestId: this.requestId, status, reason }, text);
    writeLocalRaw(this.client, status, reason, text, this.requestId);
    this.finish();
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.releasePending();
    this.releaseSlot();
    this.endRequest();
    this.owner.onDone(this);
    this.deps.accessLog?.write(this.req.method ?? 'GET', this.req.url ?? '', this.status, this.svc.name, this.upstream?.spec.id, performance.now() - this.startMs, this.requestId, this.attempt + 1, this.reason);
  }

  private releasePending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.state.limits.releasePending();
  }

  private releaseSlot(): void {
    const rt = this.slot;
    if (rt === undefined) return;
    this.slot = undefined;
    releaseUpstream(this.state, rt);
  }

  private releaseRetrySlot(): void {
    if (!this.retrySlot) return;
    this.retrySlot = false;
    this.state.budget.onRetryEnd();
  }

  /** The request part is over (answer head received, or the exchange ended): budget and retry slot. */
  private endRequest(): void {
    this.releaseRetrySlot();
    if (!this.requestOpen) return;
    this.requestOpen = false;
    this.state.budget.onRequestEnd();
  }
}
