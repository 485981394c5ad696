/**
 * The driver's side of cluster identity (rules in identity.ts): what RaftNode does at start (the
 * first-boot check, the cluster id of a bootstrap peer) and the admission policy it gives the transport.
 * Kept out of node.ts so the driver only calls three methods.
 */
import { ClusterIdentity, deriveClusterId, type PeerAddressEntry } from './identity.js';
import type { ClusterLogger } from './logger.js';
import type { NodeIo } from './node-io.js';
import { firstBootCheck } from './probe.js';
import type { ConfState, NodeId } from './raft/types.js';
import type { TransportIdentity } from './transport.js';

/**
 * How long a peer just removed from the configuration may still reach us: a leader that removes itself
 * hands leadership over with a TimeoutNow after the removal applies (raft.md R-F5), and its heir must
 * take that message. Short, so a removed peer holding the secret cannot disturb the group for long.
 */
export const REMOVED_GRACE_MS = 3_000;

export class NodeIdentity {
  /** A joiner (or a data dir from before cluster ids) takes the cluster id of the first peer that reaches it. */
  private mayAdopt = false;
  /** Peers removed from the configuration, with when (io.now()): admitted for REMOVED_GRACE_MS. */
  private readonly removedAt = new Map<NodeId, number>();

  private constructor(
    private readonly file: ClusterIdentity,
    private readonly log: ClusterLogger,
    private readonly io: Pick<NodeIo, 'now' | 'timers' | 'fs' | 'probe'>,
  ) {}

  static async open(dataDir: string, log: ClusterLogger, io: Pick<NodeIo, 'now' | 'timers' | 'fs' | 'probe'>): Promise<NodeIdentity> {
    return new NodeIdentity(await ClusterIdentity.open(dataDir, io.fs), log, io);
  }

  get clusterIdHex(): string | undefined {
    return this.file.clusterIdHex;
  }

  /**
   * At start, once storage is open (and the transport listens, so peers probing at their own first boot
   * get our answer). A first boot (empty storage) runs the first-boot check, which may throw
   * IdentityError. Resolves true when this peer must now write the bootstrap snapshot: its derived
   * cluster id is then already durable.
   */
  async establish(o: { id: NodeId; bootstrap: readonly PeerAddressEntry[]; secret: string; storageEmpty: boolean }): Promise<boolean> {
    const listed = o.bootstrap.some((p) => p.id === o.id);
    const derived = listed ? deriveClusterId(o.bootstrap) : undefined;
    if (o.storageEmpty) {
      const peers = o.bootstrap.filter((p) => p.id !== o.id);
      const { io } = this;
      await firstBootCheck({
        self: o.id,
        derived,
        peers,
        secret: Buffer.from(o.secret, 'utf8'),
        log: this.log,
        probe: io.probe,
        now: io.now,
        sleep: (ms) => new Promise<void>((r) => void io.timers.setTimeout(r, ms)),
      });
    } else if (!this.file.clusterId && derived) {
      // A data dir from before cluster ids (transport v1): a bootstrap peer derives it, a joiner adopts it.
      await this.file.setClusterId(derived);
    }
    const bootstrapNow = o.storageEmpty && derived !== undefined;
    if (bootstrapNow) await this.file.setClusterId(derived);
    this.mayAdopt = !this.file.clusterId;
    return bootstrapNow;
  }

  /**
   * The transport's view: our cluster id, and who may talk to us: the applied configuration, and the
   * peers of the driver's address book (`known`: cluster.bootstrap, a snapshot's peer table and applied
   * adds, less applied removals). The address book matters to a peer whose applied configuration lags:
   * a learner that installs a snapshot taken before the current leader joined holds a configuration
   * without that leader, and would refuse the very appends that tell it the leader is a member (found
   * by the driver simulator, '2 voters + 2 spares' seed 3).
   */
  forTransport(o: { term: () => number; confState: () => ConfState; known: (peer: NodeId) => boolean }): TransportIdentity {
    return {
      clusterId: () => this.file.clusterId,
      term: o.term,
      hasHeard: (peer) => this.file.hasHeard(peer),
      // Only ids in the applied configuration may talk to us (a removed peer holding the secret cannot
      // raise our term), except while we have none: a joiner must hear from the leader to get one.
      isMember: (peer) => {
        const { voters, learners } = o.confState();
        if ((voters.length === 0 && learners.length === 0) || voters.includes(peer) || learners.includes(peer) || o.known(peer)) return true;
        const removed = this.removedAt.get(peer);
        return removed !== undefined && this.io.now() - removed < REMOVED_GRACE_MS;
      },
      admit: async (peer, clusterId) => {
        if (!this.file.clusterId) {
          if (!this.mayAdopt) throw new Error('this peer has not joined a cluster yet');
          this.mayAdopt = false;
          await this.file.setClusterId(clusterId);
          this.log.info({ clusterId: this.file.clusterIdHex, from: peer }, 'raft: joined the cluster of the first peer that reached us');
        }
        await this.file.recordHeard(peer);
      },
    };
  }

  /** A removed peer is forgotten, so it can be added back under its id once its data is gone. */
  forget(peer: NodeId): void {
    this.removedAt.set(peer, this.io.now());
    this.file.forget(peer).catch((err: unknown) => this.log.warn({ err, peer }, 'raft: could not update the identity file'));
  }
}
