/**
 * A vipa node: one member of a cluster, running in this process.
 *
 * It connects the pure takeover engine to the world: the heartbeat mesh
 * (UDP, native sender thread), the kernel (addresses through rtnetlink,
 * link and address events), the wire (announcements), the reaper (addresses
 * vanish if this process dies) and the local health checks. The node runs in
 * the network namespace of its process.
 *
 * @example
 * ```ts
 * const node = new VipaNode({ cluster, nodeId: 'a', auth: { keys: [{ id: 1, key }], currentKeyId: 1 } });
 * node.on('transition', (t) => console.log(t));
 * await node.start();
 * // ...
 * await node.stop(); // releases everything and tells the peers
 * ```
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Keyring } from '../coordinators/mesh/auth.js';
import { MeshTransport, type MeshStatus } from '../coordinators/mesh/transport.js';
import { VIPA_PROTO, type AddressSpec } from '../netlink/address.js';
import { NetlinkMonitor, type AddressEvent, type LinkEvent } from '../netlink/monitor.js';
import { Netlink, type PreparedAddrBatch } from '../netlink/netlink.js';
import { native, type NativeTimer } from '../native.js';
import { raiseRealtime, realtimeWrite, withRealtime } from './realtime.js';
import { AddressReaper } from '../netlink/reaper.js';
import { Announcer, type AnnouncerOptions, type PreparedAnnouncement } from '../packets/announcer.js';
import { ConflictDetector } from '../packets/conflict.js';
import { LinkSocket } from '../packets/link-socket.js';
import { validateCluster, type Cluster, type ClusterConfig } from './config.js';
import { FixedTimeoutDetector, PhiAccrualDetector } from './detectors.js';
import { holderProbeLeadMs, reaperLeadMs, TakeoverEngine, type Effect, type EngineEvent, type EngineStatus } from './engine.js';
import { HealthMonitor, type HealthCheck, type HealthCheckStatus } from './health.js';

/** Where log lines go. Every method is optional; the default logs nothing. */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** Heartbeat authentication: HMAC keys, or an explicit opt-out. */
export type AuthOptions =
  | { keys: { id: number; key: Buffer }[]; currentKeyId: number }
  /** No authentication: anyone on the network can take addresses over. Warns at start. */
  | { insecure: true };

/** How peers are declared down. */
export type DetectorOptions = { kind: 'fixed' } | { kind: 'phi'; threshold?: number };

/** Options of a {@link VipaNode}. */
export interface VipaNodeOptions {
  /** The cluster config, the same on every node. */
  cluster: ClusterConfig;
  /** This node's id in `cluster.nodes`. */
  nodeId: string;
  auth: AuthOptions;
  /** Local health checks; an unhealthy node gives up its addresses. */
  health?: HealthCheck[];
  /** Announcement schedule and pacing (defaults close to keepalived's). */
  announce?: Omit<AnnouncerOptions, 'netns'>;
  /** Failure detector (default fixed: interval × missCount). */
  detector?: DetectorOptions;
  /** Pre-signed heartbeats queued in the sender thread, in ms (default max(500, 20 × interval)). */
  watchdogMs?: number;
  logger?: Logger;
  /** Aborting stops the node as {@link VipaNode.stop} does. */
  signal?: AbortSignal;
  /**
   * What a previous node of this process left by {@link VipaNode.detach}
   * (a config reload): its addresses are adopted and re-verified instead of
   * deleted, its operator pins kept, its heartbeat socket reused.
   */
  handover?: NodeHandover;
}

/** State passed from a detached node to its successor in the same process. */
export interface NodeHandover {
  /** The bound heartbeat socket: the port never closes across the reload. */
  meshSocket: import('node:dgram').Socket | undefined;
  /** Groups this node held pinned by an operator move. */
  pinnedGroups: string[];
}

/** Typed events of a node. */
export interface VipaNodeEvents {
  transition: [Extract<EngineEvent, { type: 'transition' }>];
  'peer-up': [Extract<EngineEvent, { type: 'peer-up' }>];
  'peer-down': [Extract<EngineEvent, { type: 'peer-down' }>];
  'config-mismatch': [Extract<EngineEvent, { type: 'config-mismatch' }>];
  'split-brain': [Extract<EngineEvent, { type: 'split-brain' }>];
  'late-timer': [Extract<EngineEvent, { type: 'late-timer' }>];
  'move-refused': [Extract<EngineEvent, { type: 'move-refused' }>];
  health: [{ healthy: boolean; checks: HealthCheckStatus[] }];
  announce: [{ group: number; addresses: string[] }];
  error: [Error];
}

/** Status of a running node. */
export interface VipaNodeStatus extends EngineStatus {
  addresses: { group: string; address: string; interface: string; held: boolean }[];
  mesh: Record<string, number>;
  checks: HealthCheckStatus[];
}

interface ManagedAddress {
  spec: AddressSpec & { link: number };
  text: string;
  interface: string;
}

/** One member of a vipa cluster. See the module comment. */
export class VipaNode extends EventEmitter<VipaNodeEvents> {
  readonly cluster: Cluster;
  readonly nodeId: string;
  private readonly options: VipaNodeOptions;
  private readonly log: Logger;
  private engine: TakeoverEngine;
  private netlink: Netlink | undefined;
  private monitor: NetlinkMonitor | undefined;
  private reaper: AddressReaper | undefined;
  private announcer: Announcer | undefined;
  private transport: MeshTransport | undefined;
  private health: HealthMonitor | undefined;
  /** The engine's wake-up (a native timerfd: setTimeout would add up to ~2 ms of lateness). */
  private timer: NativeTimer | undefined;
  /** Holder-probe sockets per interface index (paused while idle; closed at teardown). */
  private readonly probes = new Map<number, { socket: LinkSocket; detector: ConflictDetector; pending: number }>();
  private readonly groupAddresses = new Map<number, ManagedAddress[]>();
  /** Per group, its takeover write (replace + lease + vipa's tag), validated and encoded once at start. */
  private readonly acquireBatches = new Map<number, PreparedAddrBatch>();
  /** Groups whose takeover write runs at real-time priority with the first frames (see realtimeWrite). */
  private readonly realtimeWrites = new Set<number>();
  /** Per group, its takeover announcement (sockets open, frames built), prepared once at start. */
  private readonly acquireAnnouncements = new Map<number, PreparedAnnouncement>();
  private readonly held = new Set<number>();
  private readonly linkUp = new Map<string, boolean>();
  /** Deletions this node made itself, so their events are not taken for someone else's. */
  private readonly ownDeletions = new Set<string>();
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly abortListener = (): void => void this.stop();

  constructor(options: VipaNodeOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    this.options = options;
    this.cluster = validateCluster(options.cluster);
    if (typeof options.nodeId !== 'string' || !this.cluster.nodes.has(options.nodeId)) {
      throw new RangeError(`nodeId ${JSON.stringify(options.nodeId)} is not one of the cluster's nodes (${[...this.cluster.nodes.keys()].join(', ')})`);
    }
    this.nodeId = options.nodeId;
    this.log = options.logger ?? {};
    this.engine = this.newEngine();
  }

  private newEngine(): TakeoverEngine {
    const { timers } = this.cluster;
    const detector = this.options.detector ?? { kind: 'fixed' };
    return new TakeoverEngine({
      self: this.nodeId,
      cluster: this.cluster,
      detectorFactory: () =>
        detector.kind === 'phi'
          ? new PhiAccrualDetector(detector.threshold === undefined ? { minStdDeviationMs: timers.heartbeatIntervalMs / 5 } : { threshold: detector.threshold })
          : new FixedTimeoutDetector({ misses: timers.missCount, intervalMs: timers.heartbeatIntervalMs }),
    });
  }

  private keyring(): Keyring {
    const auth = this.options.auth;
    if (auth === null || typeof auth !== 'object') throw new TypeError('auth must be { keys, currentKeyId } or { insecure: true }');
    if ('insecure' in auth) {
      if (auth.insecure !== true) throw new TypeError('auth.insecure must be true to run without authentication');
      this.log.warn?.('heartbeats are not authenticated: anyone on the network can take addresses over (auth.insecure)');
      return Keyring.insecure();
    }
    return new Keyring(auth.keys, auth.currentKeyId);
  }

  /**
   * Starts the node: removes addresses with vipa's tag left on its
   * interfaces (never any other), starts the reaper, the mesh and the health
   * checks, then listens for peers during the startup grace before claiming.
   * Rejects with a clear error when it cannot start, leaving nothing behind.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`start: node ${this.nodeId} is ${this.state}`);
    this.state = 'starting';
    try {
      if (this.options.signal?.aborted) throw new Error('start: aborted');
      const keyring = this.keyring();
      this.netlink = new Netlink();
      this.resolveAddresses(this.netlink);
      const adopted = this.options.handover ? this.adoptHeld(this.netlink) : [];
      this.removeLeftovers(this.netlink);
      this.reaper = new AddressReaper();
      this.armReaper();
      this.announcer = new Announcer(this.options.announce ?? {});
      // A takeover then only sends: sockets open, frames encoded (see Announcer.prepareAll).
      for (const [group, addresses] of this.groupAddresses) {
        try {
          this.acquireAnnouncements.set(group, this.announcer.prepareAll(addresses.map((a) => ({ link: a.spec.link, address: a.text }))));
        } catch {
          // Reported when the takeover announces (e.g. no CAP_NET_RAW).
        }
      }
      this.openProbes();
      this.monitor = new NetlinkMonitor();
      this.monitor.on('link', (e) => this.onLink(e));
      this.monitor.on('address', (e) => this.onAddress(e));
      this.monitor.on('resync', (e) => {
        for (const link of e.links) this.onLink({ type: 'link', action: 'new', link });
      });
      this.monitor.on('error', (e) => this.fail(e));
      const self = this.cluster.nodes.get(this.nodeId)!;
      const pinned = this.cluster.groups.filter((g) => this.options.handover?.pinnedGroups.includes(g.name)).map((g) => g.index);
      this.transport = new MeshTransport({
        self,
        peers: [...this.cluster.nodes.values()].filter((n) => n.id !== this.nodeId),
        keyring,
        configDigest: this.cluster.digest,
        intervalMs: this.cluster.timers.heartbeatIntervalMs,
        // A sender silent this long lets peers' detectors (interval × misses
        // after the last heartbeat) run out: drop what was signed before.
        staleAfterMs: this.cluster.timers.heartbeatIntervalMs * Math.max(1, this.cluster.timers.missCount - 1),
        ...(this.options.watchdogMs === undefined ? {} : { watchdogMs: this.options.watchdogMs }),
        onMessage: (m) => {
          const effects = this.engine.receive(m, performance.now());
          // A routine heartbeat: no status to re-sign, and the timer armed stays (it fires early, then re-plans).
          if (this.engine.decided) this.apply(effects);
        },
        onUnreachable: (peer) => this.apply(this.engine.peerUnreachable(peer, performance.now())),
        onStarved: () => this.apply(this.engine.heartbeatsStarved(performance.now())),
        status: this.startingStatus(adopted, pinned),
      });
      await this.transport.start(this.options.handover?.meshSocket);
      // If this process dies, its reaper tells the peers with this pre-signed
      // leave (they take over at once) and deletes the addresses a moment later.
      this.reaper.notifyOnDeath(this.transport.leaveForDeath(), [...this.cluster.nodes.values()].filter((n) => n.id !== this.nodeId), {
        leadMs: reaperLeadMs(this.cluster.timers.heartbeatIntervalMs),
      });
      const now = performance.now();
      for (const [name, up] of this.linkUp) if (!up) this.engine.linkChanged(name, false, now);
      this.apply(this.engine.start(now, adopted, pinned));
      if (this.options.health?.length) {
        this.health = new HealthMonitor(this.options.health, (healthy) => {
          this.emit('health', { healthy, checks: this.health!.status() });
          this.apply(this.engine.healthChanged(healthy, performance.now()));
        });
        this.health.start();
      }
      this.options.signal?.addEventListener('abort', this.abortListener, { once: true });
      this.state = 'running';
      this.log.info?.('node started', { node: this.nodeId, peers: this.cluster.nodes.size - 1, groups: this.cluster.groups.length });
    } catch (e) {
      this.teardown();
      this.state = 'stopped';
      throw e;
    }
  }

  /**
   * Resolves every group address to its interface index (the interfaces must
   * exist) and prepares each group's takeover write. A config reload starts
   * a new node, which prepares them again from the new config.
   */
  private resolveAddresses(nl: Netlink): void {
    const links = new Map(nl.linkListSync().map((l) => [l.name, l]));
    const lease = this.cluster.timers.leaseSeconds;
    for (const group of this.cluster.groups) {
      const addresses = group.addresses.map((a) => {
        const link = links.get(a.interface);
        if (!link) throw new RangeError(`group ${JSON.stringify(group.name)}: interface ${JSON.stringify(a.interface)} does not exist on node ${this.nodeId}`);
        this.linkUp.set(a.interface, link.flags.up && link.flags.lowerUp);
        const spec: AddressSpec & { link: number } = { link: link.index, address: a.address, prefixLength: a.prefixLength, proto: VIPA_PROTO };
        if (a.family === 6) spec.nodad = true; // a takeover address must be usable at once (DESIGN: tentative for 1–2 s otherwise)
        return { spec, text: a.address, interface: a.interface };
      });
      this.groupAddresses.set(group.index, addresses);
      if (realtimeWrite(group.addresses.filter((a) => a.family === 6).length)) this.realtimeWrites.add(group.index);
      this.acquireBatches.set(group.index, nl.prepareAddrBatch('replace', addresses.map((a) => ({ ...a.spec, validLifetime: lease, preferredLifetime: lease }))));
    }
  }

  /**
   * Groups with at least one address on this host carrying vipa's tag: kept
   * across a restart. A group that gained addresses in the new config gets
   * them when the engine re-asserts it (replace is idempotent).
   */
  private adoptHeld(nl: Netlink): number[] {
    const present = new Set(nl.addrListSync({ proto: VIPA_PROTO }).map((a) => this.addressKey(a.linkIndex, a.address)));
    for (const [group, addresses] of this.groupAddresses) {
      if (addresses.some((a) => present.has(this.addressKey(a.spec.link, a.text)))) this.held.add(group);
    }
    return [...this.held];
  }

  /** Removes addresses carrying vipa's tag from this node's interfaces, except those of groups it holds. */
  private removeLeftovers(nl: Netlink): void {
    const indexes = new Set([...this.groupAddresses.values()].flat().map((a) => a.spec.link));
    const keep = new Set([...this.held].flatMap((g) => (this.groupAddresses.get(g) ?? []).map((a) => this.addressKey(a.spec.link, a.text))));
    const leftovers = nl.addrListSync({ proto: VIPA_PROTO }).filter((a) => indexes.has(a.linkIndex) && !keep.has(this.addressKey(a.linkIndex, a.address)));
    if (leftovers.length === 0) return;
    this.log.warn?.('removing addresses left by an earlier vipa', { addresses: leftovers.map((a) => `${a.address}/${a.prefixLength}`) });
    nl.addrBatchSync(leftovers.map((a) => ({ op: 'delete' as const, link: a.linkIndex, address: a.address, prefixLength: a.prefixLength, allowMissing: true })));
  }

  // ---- operator API ---------------------------------------------------------------

  /** Moves a group (by name, or by one of its addresses) to `nodeId`, pinned there. */
  move(groupOrAddress: string, nodeId: string): void {
    this.requireRunning('move');
    const group = this.cluster.groups.find((g) => g.name === groupOrAddress || g.addresses.some((a) => a.address === groupOrAddress || `${a.address}/${a.prefixLength}` === groupOrAddress));
    if (!group) throw new RangeError(`move: no group or address ${JSON.stringify(groupOrAddress)}`);
    this.apply(this.engine.move(group.name, nodeId, performance.now()));
  }

  /** Drains this node: keeps its addresses for `graceMs`, then hands them off; takes nothing new. */
  drain(graceMs = 0): void {
    this.requireRunning('drain');
    this.apply(this.engine.drain(graceMs, performance.now()));
  }

  /** Makes this node ineligible (releasing what it holds) or eligible again (also clears pins). */
  setEnabled(enabled: boolean): void {
    this.requireRunning(enabled ? 'enable' : 'disable');
    this.apply(this.engine.setEnabled(enabled, performance.now()));
  }

  /** What this node holds and how it sees its peers. */
  status(): VipaNodeStatus {
    const engine = this.engine.status();
    return {
      ...engine,
      addresses: this.cluster.groups.flatMap((g) =>
        (this.groupAddresses.get(g.index) ?? []).map((a) => ({ group: g.name, address: `${a.text}/${a.spec.prefixLength}`, interface: a.interface, held: this.held.has(g.index) })),
      ),
      mesh: { ...(this.transport?.counters ?? {}) },
      checks: this.health?.status() ?? [],
    };
  }

  /**
   * Stops: releases every address, tells the peers (they take over at once),
   * stops the reaper and closes every socket, thread and timer. Resolves
   * with nothing held. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping' || this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    try {
      this.apply(this.engine.stop(performance.now()));
      // Make-before-break: the engine keeps the addresses until each
      // successor reports holding them (at most the detection time), so the
      // node keeps running meanwhile; ticks and messages finish the handoffs.
      const { heartbeatIntervalMs, missCount } = this.cluster.timers;
      const deadline = performance.now() + heartbeatIntervalMs * missCount + 1000;
      while (!this.engine.isStopped && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, heartbeatIntervalMs / 2)));
        this.apply(this.engine.tick(performance.now()));
      }
      this.deleteStragglers();
    } finally {
      this.teardown();
      this.state = 'stopped';
      this.log.info?.('node stopped', { node: this.nodeId });
    }
  }

  /**
   * Stops this process's part without releasing anything: addresses stay,
   * peers are not told, the reaper is told to quit without deleting. For a
   * daemon about to start a new node with `adoptAddresses` (config reload).
   */
  detach(): NodeHandover {
    if (this.state !== 'running') throw new Error(`detach: node ${this.nodeId} is not running (${this.state})`);
    this.state = 'stopping';
    const pinnedGroups = this.engine.status().groups.filter((g) => g.pinned && g.holder === this.nodeId).map((g) => g.name);
    const meshSocket = this.transport?.close(true);
    this.transport = undefined;
    this.teardown();
    this.state = 'stopped';
    this.log.info?.('node detached; its addresses stay for the next start', { node: this.nodeId, held: [...this.held].map((g) => this.cluster.groups[g]!.name), pinned: pinnedGroups });
    return { meshSocket, pinnedGroups };
  }

  private requireRunning(op: string): void {
    if (this.state !== 'running') throw new Error(`${op}: node ${this.nodeId} is not running (${this.state})`);
  }

  /** After release, no address with vipa's tag may remain on this node's interfaces. */
  private deleteStragglers(): void {
    if (!this.netlink) return;
    this.removeLeftovers(this.netlink);
  }

  private teardown(): void {
    this.urgent(false);
    this.timer?.close();
    this.timer = undefined;
    this.closeProbes();
    this.options.signal?.removeEventListener('abort', this.abortListener);
    this.health?.stop();
    this.transport?.close();
    this.announcer?.close();
    this.monitor?.close();
    if (this.reaper) {
      // Clean stop: addresses were deleted above; a failed start held none.
      this.reaper.quit();
    }
    this.netlink?.close();
  }

  // ---- effects --------------------------------------------------------------------

  private apply(effects: Effect[]): void {
    let statusChanged = false;
    // Events (logs, listeners) after the work: a takeover's first frame and
    // the new status must not wait for a log line to be written.
    const events: EngineEvent[] = [];
    for (const effect of effects) {
      try {
        switch (effect.type) {
          case 'acquire':
            this.acquire(effect.group);
            break;
          case 'release':
            this.release(effect.group);
            break;
          case 'refresh-lease':
            this.writeAddresses(effect.group);
            break;
          case 'announce':
            this.announce(effect.group, true);
            break;
          case 'send-status':
            statusChanged = true;
            break;
          case 'send-release':
            this.transport?.sendRelease(effect.group, effect.target, effect.pinned, this.meshStatus());
            statusChanged = true;
            break;
          case 'send-move-request':
            this.transport?.sendMoveRequest(effect.group, effect.target, this.meshStatus());
            break;
          case 'send-leave':
            this.transport?.sendLeave(this.meshStatus());
            statusChanged = false;
            break;
          case 'probe-holder':
            this.probeHolder(effect.group);
            break;
          case 'event':
            events.push(effect.event);
            break;
        }
      } catch (e) {
        this.fail(e as Error);
      }
    }
    // Before the status re-sign (250 HMACs at 2 ms, ~1 ms): real-time only for what is urgent.
    this.urgent(this.engine.checkingHolder);
    // Heartbeats must always carry the current status: re-sign when it changed
    // (transitions such as init → backup change it without any effect saying so).
    if (this.transport && !this.engine.isStopped && (statusChanged || this.engine.decided)) {
      const status = this.meshStatus();
      const key = JSON.stringify(status);
      if (statusChanged || key !== this.lastStatusKey) {
        this.lastStatusKey = key;
        this.transport.setStatus(status);
      }
    }
    this.schedule();
    for (const event of events) {
      try {
        this.onEngineEvent(event);
      } catch (e) {
        this.fail(e as Error);
      }
    }
  }

  private lastStatusKey = '';

  /**
   * Real-time while a takeover may be due within {@link holderProbeLeadMs}
   * (see TakeoverEngine.checkingHolder): at a silent holder's deadline the
   * wake-up, the decision and the write do not wait for a CPU behind other
   * processes (2 ms heartbeats, two busy loops on two cores: the wake-up was
   * 0.7–1.9 ms late at p90 and up to 7 ms, the client's outage 14.5–20.6 ms
   * at p95; 7.0–7.6 ms with it). Best effort, as withRealtime.
   */
  private urgent(on: boolean): void {
    if (on && !this.urgentRestore && !this.engine.isStopped) this.urgentRestore = raiseRealtime();
    else if (!on && this.urgentRestore) {
      this.urgentRestore();
      this.urgentRestore = undefined;
    }
  }

  private urgentRestore: (() => void) | undefined;

  /**
   * The status of the heartbeats sent before the engine starts (the mesh
   * starts first: the reaper needs its leave): every group 'starting', so no
   * holder hands one to this node before it listened for its startup grace;
   * groups `adopted` from the previous process (config reload) 'holding', as
   * the engine reports them once started, so no peer takes them meanwhile.
   */
  private startingStatus(adopted: readonly number[], pinned: readonly number[]): MeshStatus {
    const status = this.meshStatus();
    return { ...status, groups: status.groups.map((g) => (adopted.includes(g.index) ? { ...g, status: 'holding', pinned: pinned.includes(g.index) } : g)) };
  }

  private meshStatus(): MeshStatus {
    return {
      health: this.engine.reportedHealth(),
      groups: this.engine.reportedGroups().map((g) => ({ ...g, priority: this.cluster.groups[g.index]!.priorities.get(this.nodeId) ?? 0 })),
    };
  }

  private schedule(): void {
    if (this.state === 'stopped' || this.engine.isStopped) {
      this.timer?.stop();
      return;
    }
    const deadline = this.engine.nextDeadline(performance.now());
    if (deadline === undefined) {
      this.timer?.stop();
      return;
    }
    // The timer fires in the poll phase, possibly before heartbeats that sit
    // in the same epoll batch were read (the loop was busy). setImmediate
    // runs after that poll phase, so the engine sees every queued datagram
    // before it decides on a timeout.
    this.timer ??= new (native().Timer)(() => setImmediate(() => this.apply(this.engine.tick(performance.now()))));
    this.timer.start(deadline - performance.now()); // re-arms: the previous expiry is replaced
  }

  private addressKey(link: number, address: string): string {
    return `${link}|${address}`;
  }

  /**
   * Adds (or renews) the group's addresses with a kernel lease, tagged as
   * vipa's: runs the batch prepared at start (it only stamps sequence numbers
   * and sends). Throws naming the first address the kernel refused.
   */
  private writeAddresses(group: number): void {
    // Many IPv6 adds are several times slower from a real-time thread
    // (realtimeWrite): such a group (a takeover, a lease refresh) is written
    // outside the urgent window; apply raises it again if still due.
    if (!this.realtimeWrites.has(group)) this.urgent(false);
    const outcome = this.acquireBatches.get(group)?.runSync();
    if (outcome === undefined || outcome.ok) return;
    const i = outcome.results.findIndex((r) => !r.ok);
    const r = outcome.results[i]!;
    const a = this.groupAddresses.get(group)![i]!;
    if (!r.ok) throw new Error(`cannot add ${a.spec.address}/${a.spec.prefixLength}: ${r.error.message}`, { cause: r.error });
  }

  private acquire(group: number): void {
    // The address answers from the write on, and until its first frame is
    // out clients and the old holder's reaper do not know: nothing may come
    // in between (see withRealtime). Clients first: the first announcement
    // leaves before the reaper update. A group with many IPv6 addresses is
    // written at normal priority (see writeAddresses), then only its frames
    // are raised.
    const raisedWrite = this.realtimeWrites.has(group);
    if (!raisedWrite) this.writeAddresses(group);
    withRealtime(() => {
      if (raisedWrite) this.writeAddresses(group);
      this.announce(group, false);
    });
    // Decided: the rest (the reaper update, 0.1–0.4 ms) must not hold up the
    // service's own answers, which at the same priority would wait for it.
    this.urgent(false);
    this.held.add(group);
    this.armReaper();
  }

  private announce(group: number, now: boolean): void {
    const addresses = this.groupAddresses.get(group) ?? [];
    if (now) for (const a of addresses) this.announcer!.announceNow(a.spec.link, a.text);
    // Every address's first frame before any repeats.
    else this.announcer!.announceAll(this.acquireAnnouncements.get(group) ?? addresses.map((a) => ({ link: a.spec.link, address: a.text })));
    this.emit('announce', { group, addresses: addresses.map((a) => a.text) });
  }

  private release(group: number): void {
    const addresses = this.groupAddresses.get(group) ?? [];
    for (const a of addresses) this.announcer?.cancel(a.spec.link, a.text);
    this.held.delete(group);
    for (const a of addresses) this.ownDeletions.add(this.addressKey(a.spec.link, a.text));
    this.netlink!.addrBatchSync(addresses.map((a) => ({ op: 'delete' as const, ...a.spec, allowMissing: true })));
    this.armReaper();
  }

  private armReaper(): void {
    this.reaper?.arm([...this.held].flatMap((g) => (this.groupAddresses.get(g) ?? []).map((a) => a.spec)));
  }

  // ---- kernel events ---------------------------------------------------------------

  private onLink(e: LinkEvent): void {
    if (!this.linkUp.has(e.link.name)) return;
    const up = e.action === 'new' && e.link.flags.up && e.link.flags.lowerUp;
    if (this.linkUp.get(e.link.name) === up) return;
    this.linkUp.set(e.link.name, up);
    this.log.info?.(`link ${e.link.name} ${up ? 'up' : 'down'}`);
    this.apply(this.engine.linkChanged(e.link.name, up, performance.now()));
  }

  private onAddress(e: AddressEvent): void {
    if (e.action !== 'del') return;
    const key = this.addressKey(e.address.linkIndex, e.address.address);
    if (this.ownDeletions.delete(key)) return;
    for (const group of this.held) {
      if ((this.groupAddresses.get(group) ?? []).some((a) => this.addressKey(a.spec.link, a.text) === key)) {
        this.log.warn?.(`address ${e.address.address} was deleted by someone else`, { group: this.cluster.groups[group]!.name });
        this.apply(this.engine.addressDeleted(group, performance.now()));
      }
    }
  }

  /**
   * Asks the network whether the silent holder's host still has the group's
   * address (an ARP probe, or a DAD NS for an IPv6-only group) on the
   * interface's probe socket, resumed for the probe and paused after it: no
   * frame wakes this process while heartbeats arrive. An answer from another
   * MAC goes to the engine.
   */
  private probeHolder(group: number): void {
    const addresses = this.groupAddresses.get(group) ?? [];
    const target = addresses.find((a) => !a.text.includes(':')) ?? addresses[0];
    const probe = target && this.probes.get(target.spec.link);
    if (!target || !probe || !probe.socket.open) return;
    probe.pending++;
    probe.socket.resume();
    const { heartbeatIntervalMs, missCount } = this.cluster.timers;
    // Answers count until the holder's deadline plus its deferral window; later ones are stale.
    const waitMs = Math.ceil(holderProbeLeadMs(heartbeatIntervalMs) + heartbeatIntervalMs * missCount);
    probe.detector
      .probe(target.text, { count: 1, waitMs: Math.min(waitMs, 1000) })
      .then((result) => {
        if (result.inUse && this.state === 'running') this.apply(this.engine.holderAnswered(group, performance.now()));
      })
      .catch((e: Error) => {
        if (this.state === 'running') this.log.warn?.(`probe of ${target.text} on ${target.interface} failed: ${e.message}`);
      })
      .finally(() => {
        if (--probe.pending === 0 && probe.socket.open) probe.socket.pause();
      });
  }

  /**
   * Opens, paused, one holder-probe socket per group interface, kept until
   * the node stops: a missing CAP_NET_RAW fails the start rather than the
   * first failover, and no socket is closed on the hot path (closing a
   * receive packet socket blocks the thread for an RCU grace period).
   */
  private openProbes(): void {
    const links = new Set([...this.groupAddresses.values()].flatMap((list) => list.map((a) => a.spec.link)));
    for (const link of links) {
      if (this.probes.has(link)) continue;
      const socket = LinkSocket.open({ link, receive: true, paused: true, ...(this.netlink ? { netlink: this.netlink } : {}) });
      this.probes.set(link, { socket, detector: new ConflictDetector({ link, socket }), pending: 0 });
    }
  }

  private closeProbes(): void {
    for (const p of this.probes.values()) {
      p.detector.close();
      p.socket.close();
    }
    this.probes.clear();
  }

  private onEngineEvent(event: EngineEvent): void {
    if (event.type === 'transition') this.log.info?.(`${event.name}: ${event.from} → ${event.to} (${event.reason})`, { group: event.name });
    else this.log.debug?.(event.type, event as unknown as Record<string, unknown>);
    this.emit(event.type as 'transition', event as Extract<EngineEvent, { type: 'transition' }>);
  }

  private fail(error: Error): void {
    this.log.error?.(error.message);
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}
