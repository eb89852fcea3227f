/**
 * The heartbeat mesh on the network: UDP heartbeats to every peer and the
 * receive side, joined to the takeover engine's message types.
 *
 * Sending: heartbeats are pre-signed here and queued in the native sender
 * thread (sender.ts), which sends one per interval even while the JS event
 * loop is busy; the queue length is the watchdog: if this process cannot
 * refill it in time, heartbeats stop and peers take over. Urgent messages
 * (status changes, releases, leave) go out at once. Sequence numbers stay
 * strictly increasing on the wire: before an urgent message the unsent queue
 * is dropped, and it is refilled after with the following numbers.
 *
 * Receiving: a UDP socket on this node's heartbeat address; every datagram
 * goes through MeshReceiver (decode, authentication, replay window, config
 * digest) and comes out as an engine PeerMessage, or is dropped and counted.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { PeerGroupStatus, PeerHealth, PeerMessage } from '../../takeover/engine.js';
import type { Keyring } from './auth.js';
import { MeshReceiver, type MeshReceiverCounter } from './receiver.js';
import { HEARTBEAT_QUEUE_CAPACITY, HeartbeatSender } from './sender.js';
import { encodeMeshMessage, encodeMeshMessageBatch, type MeshGroupState, type MeshMessage } from './wire.js';

/** A mesh endpoint. */
export interface MeshEndpoint {
  id: string;
  address: string;
  port: number;
}

/** What the transport needs to know. */
export interface MeshTransportOptions {
  self: MeshEndpoint;
  peers: readonly MeshEndpoint[];
  keyring: Keyring;
  /** 16-byte digest of the shared cluster config. */
  configDigest: Buffer;
  intervalMs: number;
  /** Heartbeats queued ahead in the native thread, in ms of sending (default max(500, 20 × interval); at most {@link HEARTBEAT_QUEUE_CAPACITY} heartbeats). */
  watchdogMs?: number;
  /** A message arrived from a peer (authenticated, fresh). */
  onMessage: (message: PeerMessage) => void;
  /** A peer's heartbeat port answered ICMP unreachable: its process is gone. */
  onUnreachable: (peerId: string) => void;
  /** The native queue ran dry, or the thread found itself stopped: this process must re-verify. */
  onStarved: () => void;
  /** A sender tick this late (ms) drops the queued, stale heartbeats (see HeartbeatSenderOptions.staleAfterMs). */
  staleAfterMs: number;
  /**
   * The status the first heartbeats carry, until {@link MeshTransport.setStatus}
   * (default: healthy, no groups). Peers act on the first heartbeat they
   * receive: a starting node passes every group 'starting' here, or a holder
   * would take it for ready and hand a group to it before it has started.
   */
  status?: MeshStatus;
}

/** This node's status as its heartbeats carry it. */
export interface MeshStatus {
  health: PeerHealth;
  groups: { index: number; status: PeerGroupStatus; pinned: boolean; priority: number }[];
}

/**
 * UDP heartbeat mesh for one node. Start with {@link start}, keep the status
 * current with {@link setStatus}, close with {@link close}.
 */
export class MeshTransport {
  private readonly options: MeshTransportOptions;
  private readonly receiver: MeshReceiver;
  private socket: dgram.Socket | undefined;
  private sender: HeartbeatSender | undefined;
  private readonly incarnation = BigInt(Date.now());
  private nextSeq = 1n;
  private status: MeshStatus;
  private refillTimer: NodeJS.Timeout | undefined;
  private readonly queueLength: number;
  private closed = false;

  constructor(options: MeshTransportOptions) {
    this.options = options;
    this.status = options.status ?? { health: 'healthy', groups: [] };
    this.receiver = new MeshReceiver({ nodeId: options.self.id, keyring: options.keyring, configDigest: options.configDigest });
    const watchdog = options.watchdogMs ?? Math.max(500, 20 * options.intervalMs);
    // At most what the native queue holds: a longer watchdog at a short interval is cut to it.
    this.queueLength = Math.min(HEARTBEAT_QUEUE_CAPACITY, Math.max(2, Math.ceil(watchdog / options.intervalMs)));
  }

  /**
   * Binds the receive socket (or takes over `bound`, the socket of a
   * previous transport on the same address and port, so the port never
   * closes: a closed port would answer peers with ICMP unreachable, which
   * they rightly take for a dead process) and starts the sender thread.
   */
  async start(bound?: dgram.Socket): Promise<void> {
    const { self } = this.options;
    let socket = bound;
    const address = socket?.address();
    if (socket && (address?.address !== self.address || address.port !== self.port)) {
      socket.close();
      socket = undefined;
    }
    if (!socket) {
      const fresh = dgram.createSocket({ type: self.address.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
      await new Promise<void>((resolve, reject) => {
        fresh.once('error', reject);
        fresh.bind(self.port, self.address, () => {
          fresh.off('error', reject);
          resolve();
        });
      });
      socket = fresh;
    }
    socket.on('message', (bytes, rinfo) => this.onDatagram(bytes, `${rinfo.address}:${rinfo.port}`));
    // Later socket errors (e.g. ICMP errors reported on the receive socket) are not fatal.
    socket.on('error', () => {});
    this.socket = socket;
    this.sender = new HeartbeatSender({
      peers: this.options.peers.map((p) => ({ address: p.address, port: p.port })),
      intervalMs: this.options.intervalMs,
      bindAddress: self.address,
      staleAfterMs: this.options.staleAfterMs,
    });
    this.sender.on('peer-error', (e: { peerIndex: number; code: string }) => {
      // Only ECONNREFUSED proves the peer's process is gone: its host is up and
      // answered ICMP port unreachable. ENETUNREACH, EHOSTUNREACH, ENETDOWN...
      // say this host cannot reach it (our own link may be down); the failure
      // detector judges those.
      const peer = this.options.peers[e.peerIndex];
      if (peer && e.code === 'ECONNREFUSED') this.options.onUnreachable(peer.id);
    });
    // The queue ran dry or the thread dropped it (stale after a stop): the
    // node re-verifies, then heartbeats resume at once with its status now.
    // Waiting for the periodic refill (a quarter of the watchdog, 125 ms at
    // 2 ms heartbeats, 5 s at 1 s) would leave this node silent long enough
    // for its peers to declare it down.
    const resume = (): void => {
      this.options.onStarved();
      this.refill();
    };
    this.sender.on('starved', resume);
    this.sender.on('stale', resume);
    this.refill();
    const every = Math.max(1, Math.floor((this.queueLength * this.options.intervalMs) / 4));
    this.refillTimer = setInterval(() => this.refill(), every);
  }

  /** Receive counters: accepted and every drop reason. */
  get counters(): Readonly<Record<MeshReceiverCounter, number>> {
    return this.receiver.counters;
  }

  /** Sender statistics from the native thread. */
  get senderStats(): unknown {
    return this.sender?.stats;
  }

  private header(): Pick<MeshMessage, 'senderId' | 'incarnation' | 'seq' | 'configDigest'> {
    const seq = this.nextSeq;
    this.nextSeq += 1n;
    return { senderId: this.options.self.id, incarnation: this.incarnation, seq, configDigest: this.options.configDigest };
  }

  private statusBody(): { health: PeerHealth; intervalMs: number; groups: MeshGroupState[] } {
    return {
      health: this.status.health,
      intervalMs: this.options.intervalMs,
      groups: this.status.groups.map((g) => (g.pinned ? { index: g.index, status: g.status, priority: g.priority, pinned: true } : { index: g.index, status: g.status, priority: g.priority })),
    };
  }

  /** Tops the native queue up to its full length with fresh pre-signed heartbeats. */
  private refill(): void {
    if (!this.sender || this.closed) return;
    const missing = this.queueLength - this.sender.queued;
    if (missing <= 0) return;
    this.sender.refill(this.signHeartbeats(missing));
  }

  /** `count` heartbeats with the current status and the next sequence numbers. */
  private signHeartbeats(count: number): Buffer[] {
    const first = this.nextSeq;
    this.nextSeq += BigInt(count);
    const template: MeshMessage = { type: 'heartbeat', senderId: this.options.self.id, incarnation: this.incarnation, seq: first, configDigest: this.options.configDigest, ...this.statusBody() };
    return encodeMeshMessageBatch(template, first, count, this.options.keyring);
  }

  /**
   * Sends one message now and replaces the queue with heartbeats of the new
   * status (none when `refill` is false), in one step for the sender thread:
   * sequence numbers keep increasing on the wire, nothing signed before goes
   * out after the message, and the queue is never empty in between.
   */
  private urgent(build: (header: ReturnType<MeshTransport['header']>) => MeshMessage, refill = true): void {
    if (!this.sender || this.closed) return;
    const message = encodeMeshMessage(build(this.header()), this.options.keyring);
    this.sender.sendNow(message, refill ? this.signHeartbeats(this.queueLength) : []);
  }

  /** The node's status changed: heartbeat now and re-sign the queue. */
  setStatus(status: MeshStatus): void {
    this.status = status;
    this.urgent((h) => ({ type: 'heartbeat', ...h, ...this.statusBody() }));
  }

  /**
   * Tells every peer this node released `group` (to `target`, or to nobody).
   * `status`: this node's status after the release; the heartbeats queued
   * after the message carry it. Without it they would repeat the status
   * from before ("holding"), and a peer that took the group over on the
   * release would see a split brain and give it back.
   */
  sendRelease(group: number, target: string | undefined, pinned: boolean, status?: MeshStatus): void {
    if (status) this.status = status;
    this.urgent((h) => ({ type: 'release', ...h, group, target, pinned }));
  }

  /** Asks the holder to hand `group` to `target` (sent to every peer; only the holder acts). `status` as for {@link sendRelease}. */
  sendMoveRequest(group: number, target: string, status?: MeshStatus): void {
    if (status) this.status = status;
    this.urgent((h) => ({ type: 'move-request', ...h, group, target }));
  }

  /**
   * A leave message signed now, to be sent by someone else when this process
   * is dead (the address reaper). Its sequence number is the highest there
   * is, so it is accepted whatever this process sent before; being a leave,
   * nothing of this incarnation is needed after it.
   */
  leaveForDeath(): Buffer {
    return encodeMeshMessage(
      { type: 'leave', senderId: this.options.self.id, incarnation: this.incarnation, seq: 0xffff_ffff_ffff_ffffn, configDigest: this.options.configDigest, health: 'unhealthy', intervalMs: this.options.intervalMs, groups: [] },
      this.options.keyring,
    );
  }

  /** Graceful leave: peers take over at once. Stops heartbeats. */
  sendLeave(status: MeshStatus): void {
    this.status = status;
    this.urgent((h) => ({ type: 'leave', ...h, ...this.statusBody() }), false);
    clearInterval(this.refillTimer);
  }

  private onDatagram(bytes: Buffer, from: string): void {
    const result = this.receiver.accept(bytes, from, performance.now());
    if (result.kind === 'dropped') return;
    const m = result.message;
    const digestMatches = result.kind === 'accepted';
    switch (m.type) {
      case 'heartbeat':
      case 'leave':
        this.options.onMessage({
          kind: m.type,
          from: m.senderId,
          incarnation: m.incarnation,
          health: m.health,
          intervalMs: m.intervalMs,
          groups: m.groups.map((g) => ({ index: g.index, status: g.status, pinned: g.pinned === true })),
          digestMatches,
        });
        break;
      case 'release':
        this.options.onMessage({ kind: 'release', from: m.senderId, group: m.group, target: m.target, pinned: m.pinned, digestMatches });
        break;
      case 'move-request':
        this.options.onMessage({ kind: 'move-request', from: m.senderId, group: m.group, target: m.target, digestMatches });
        break;
    }
  }

  /**
   * Stops sending and receiving and releases the thread. The receive socket
   * is closed, or with `keepSocket` returned still bound, for the next
   * transport's {@link start}.
   */
  close(keepSocket = false): dgram.Socket | undefined {
    if (this.closed) return undefined;
    this.closed = true;
    clearInterval(this.refillTimer);
    this.sender?.close();
    if (keepSocket && this.socket) {
      this.socket.removeAllListeners('message');
      this.socket.removeAllListeners('error');
      this.socket.on('error', () => {});
      return this.socket;
    }
    this.socket?.close();
    return undefined;
  }
}
