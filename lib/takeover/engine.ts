/**
 * The takeover engine: who holds each group of virtual addresses.
 *
 * Pure and synchronous. It never reads a clock, sleeps or does I/O: every
 * input carries `now` (ms, monotonic), every decision comes out as a list of
 * {@link Effect}s that the caller executes in order (add/delete addresses,
 * announce, send messages, report events), and {@link TakeoverEngine.nextDeadline}
 * tells the caller when to call {@link TakeoverEngine.tick} next. That makes
 * every transition testable with a fake clock.
 *
 * Rules (from the dynamic-VIPA model, see DESIGN.md):
 * - Members of a group are ordered: home first (priority 255), then backups
 *   by rank, ties by node id. A node is *eligible* when it is alive, healthy,
 *   not draining or disabled, its links for the group are up, and its config
 *   digest matches ours.
 * - A node takes a group over only when no eligible node holds it, nobody
 *   is handing it to someone else, and it is the best eligible member; or
 *   when the holder hands the group to it (a release message naming it).
 * - A holder gives the group to a better member only through its giveback
 *   policy (immediate, hold-down, manual) and always by handoff: delete
 *   first, then tell the target, so two hosts never answer at once.
 * - Two holders (split brain after a partition) resolve deterministically:
 *   a pinned holder (operator move) first, then priority, then node id; the
 *   loser releases, the winner re-announces at once. A winner that just came
 *   up (its first heartbeat after being down) wins only once it has been up
 *   for {@link peerSettleMs}: after a link flap the kernel flushes the
 *   datagrams it queued while the link was down, back to back, and the first
 *   of them ("holding", from before the flap or from a dead incarnation) is
 *   stale; the rest of the burst (its release or leave, a newer status, the
 *   new incarnation) comes within a fraction of a millisecond, so the loser
 *   decides on the latest state instead of giving the group up for nothing.
 * - A holder that goes silent is probed (ARP / DAD NS) just before its
 *   deadline by the member that would take over: if its host still answers
 *   for the address, its process died or froze and its reaper will hand over
 *   (leave first, delete a moment later), so the takeover waits for that
 *   leave, for its port's ICMP error plus a short grace, or for a bound.
 * - A tick that fires far later than planned means this process was frozen
 *   or starved: peers' silence proves nothing, so the node resets its
 *   failure detectors, stops announcing and re-verifies for one detection
 *   window before acting again; a held group that someone else now holds is
 *   released (the node steps back).
 */
import { comparePriority, type Cluster, type Group } from './config.js';
import type { FailureDetector } from './detectors.js';

/** Per-group state of this node. */
export type GroupState =
  /** Just started: listening for peers before claiming anything. */
  | 'init'
  /** Not holding; ready to take over. */
  | 'backup'
  /** Holding the addresses and announcing them. */
  | 'active'
  /** Holding, but this process was frozen: silent until peers are heard again. */
  | 'verifying'
  /** Draining: still holding until the grace period ends, then handing off. */
  | 'draining'
  /**
   * Handing the group to another node, make-before-break: the addresses stay
   * (clients keep being answered) until the successor reports holding them,
   * or the detection time passes; then they are deleted.
   */
  | 'handing-off'
  /** Cannot hold (link down, health failing, address deleted by someone else). */
  | 'fault'
  /** An operator made this node ineligible. */
  | 'disabled'
  /** Stopped: holds nothing, takes nothing. */
  | 'stopped';

/** Why a transition happened. */
export type TransitionReason =
  | 'startup'
  | 'startup-grace-over'
  | 'takeover'
  | 'handoff-received'
  | 'giveback'
  | 'handoff-done'
  | 'handoff-timeout'
  | 'split-brain-lost'
  | 'split-brain-won'
  | 'stepped-back'
  | 'verified'
  | 'frozen'
  | 'link-down'
  | 'link-up'
  | 'health-failed'
  | 'health-restored'
  | 'external-delete'
  | 'drain'
  | 'drain-done'
  | 'disabled'
  | 'enabled'
  | 'manual-move'
  | 'stop';

/** A peer's status of one group, as it reports it. */
export type PeerGroupStatus =
  /** In its startup grace: outranks worse members for takeover, but cannot receive a handoff yet. */
  | 'starting'
  /** Ready to take the group. */
  | 'standby'
  | 'holding'
  | 'ineligible'
  /** Just released it (set locally on a release message until the next heartbeat). */
  | 'releasing';

/** A peer's health as it reports it. */
export type PeerHealth = 'healthy' | 'unhealthy' | 'draining';

/** A message from a peer, already authenticated and decoded. */
export type PeerMessage =
  | {
      kind: 'heartbeat' | 'leave';
      from: string;
      /** The sender process's incarnation (its start time): a restart has a new one. */
      incarnation: bigint;
      health: PeerHealth;
      /** The peer's heartbeat interval (ms). */
      intervalMs: number;
      /**
       * Status per group index. A group not listed has no known status: it
       * counts as 'starting' (outranks worse members for takeover, is no
       * handoff target), since only a process that has not set its status
       * yet sends an incomplete list.
       */
      groups: { index: number; status: PeerGroupStatus; pinned: boolean }[];
      /** False when the peer's config digest differs from ours. */
      digestMatches: boolean;
    }
  | { kind: 'release'; from: string; group: number; target: string | undefined; pinned: boolean; digestMatches: boolean }
  | { kind: 'move-request'; from: string; group: number; target: string; digestMatches: boolean };

/** What the caller must do, in order. */
export type Effect =
  /** Add the group's addresses (lease, nodad, owner tag) and start announcing them. */
  | { type: 'acquire'; group: number; reason: TransitionReason }
  /** Stop announcing and delete the group's addresses. */
  | { type: 'release'; group: number; reason: TransitionReason }
  /** Announce the group's addresses again now. */
  | { type: 'announce'; group: number }
  /** Renew the kernel lifetime of the group's addresses. */
  | { type: 'refresh-lease'; group: number }
  /** This node's reported status changed: send a heartbeat now. */
  | { type: 'send-status' }
  /** Tell peers this node released `group`, handing it to `target`. */
  | { type: 'send-release'; group: number; target: string | undefined; pinned: boolean }
  /** Ask `holder` to hand `group` to `target`. */
  | { type: 'send-move-request'; group: number; target: string; holder: string }
  /** Tell peers this node leaves: they take over at once. */
  | { type: 'send-leave' }
  /**
   * The holder of `group` went silent: probe whether its host still answers
   * for the group's address (ARP probe / DAD NS) and report an answer from
   * another MAC through {@link TakeoverEngine.holderAnswered}.
   */
  | { type: 'probe-holder'; group: number; holder: string }
  | { type: 'event'; event: EngineEvent };

/** Observable events. */
export type EngineEvent =
  | { type: 'transition'; group: number; name: string; from: GroupState; to: GroupState; reason: TransitionReason; at: number }
  | { type: 'peer-up'; peer: string; at: number }
  /** `lastHeardAt`: when its last heartbeat arrived (undefined if none ever did); `at` minus it is how long it was silent. */
  | { type: 'peer-down'; peer: string; reason: 'timeout' | 'leave' | 'unreachable'; lastHeardAt: number | undefined; at: number }
  | { type: 'config-mismatch'; peer: string; at: number }
  | { type: 'split-brain'; group: number; holders: string[]; winner: string; at: number }
  | { type: 'late-timer'; lateMs: number; at: number }
  | { type: 'move-refused'; group: number; target: string; reason: string; at: number }
  /** The silent holder's host still answered for the group: its process died or froze, its reaper will delete and say so. */
  | { type: 'takeover-deferred'; group: number; holder: string; until: number; at: number };

/** Creates a detector for a peer. */
export type DetectorFactory = (peer: string, cluster: Cluster) => FailureDetector;

/** A status snapshot for operators. */
export interface EngineStatus {
  node: string;
  health: 'healthy' | 'unhealthy' | 'draining' | 'stopped';
  groups: { index: number; name: string; state: GroupState; since: number; reason: TransitionReason; holder: string | undefined; pinned: boolean }[];
  peers: { id: string; alive: boolean; health: PeerHealth | undefined; digestMatches: boolean }[];
}

interface PeerView {
  id: string;
  detector: FailureDetector;
  alive: boolean;
  health: PeerHealth;
  digestMatches: boolean;
  statuses: Map<number, { status: PeerGroupStatus; pinned: boolean }>;
  heard: boolean;
  incarnation: bigint | undefined;
  /**
   * An incarnation that left or whose port became unreachable: it is dead for
   * good, and a heartbeat of it still in flight must not bring it back.
   */
  deadIncarnation: bigint | undefined;
  /**
   * When the peer's heartbeat port was first reported unreachable (ICMP) and
   * it has not been heard since: it is marked down at this time plus
   * {@link unreachableGraceMs}, or at once when its reaper's leave arrives.
   */
  unreachableSince: number | undefined;
  /** When its holder probe of this silence was sent (reset by a heartbeat). */
  probedAt: number | undefined;
  /**
   * When the heartbeat that brought it up (alive false → true) arrived: for
   * {@link peerSettleMs} after it, its claim to hold a group does not make
   * this node lose a split brain (the claim may be the start of a stale burst).
   */
  upAt: number | undefined;
  /** The heartbeat interval it last advertised. */
  intervalMs: number | undefined;
}

/**
 * How long a peer whose heartbeat port became unreachable (its process died,
 * its host is up) keeps its addresses in our view before we take them:
 * its reaper (native/reaper.h) deletes them and then sends "leave", usually
 * within a millisecond; taking over on the ICMP error alone would make two
 * hosts answer until that delete lands. Without a reaper (killed too) we
 * wait this long: one heartbeat interval, at most 10 ms, at least 1 ms.
 */
export function unreachableGraceMs(heartbeatIntervalMs: number): number {
  return Math.min(10, Math.max(1, heartbeatIntervalMs));
}

/**
 * How long at most a dead holder's reaper keeps its addresses after telling
 * the peers (native/reaper.h). It deletes as soon as it sees another host
 * announce them (the next holder took over), so clients see no gap and two
 * hosts answer only for the moment it takes to notice; the bound matters
 * when nobody takes over, or when the reaper cannot watch (no CAP_NET_RAW)
 * and waits the whole time. Two intervals, between 5 and 20 ms: a takeover on
 * a loaded host takes 1–5 ms from the leave to the first announcement.
 */
export function reaperLeadMs(heartbeatIntervalMs: number): number {
  return Math.min(20, Math.max(5, 2 * heartbeatIntervalMs));
}

/**
 * How long a peer that just came up must have been up before its claim to
 * hold a group makes this node, also holding it, lose the split brain (see
 * the module comment): half an interval, at most 5 ms. A live peer's next
 * heartbeat comes one interval later, while a queue flushed after a link
 * flap arrives within a fraction of a millisecond, so the rest of such a
 * burst is applied first and a genuine split brain ends by the peer's next
 * heartbeat at the latest.
 */
export function peerSettleMs(heartbeatIntervalMs: number): number {
  return Math.min(heartbeatIntervalMs / 2, 5);
}

/**
 * How long before a silent holder's detection deadline the engine probes
 * whether its host still answers for the group's address: one interval, at
 * most 2 ms (an ARP round trip on a LAN takes well under a millisecond).
 * Nothing is probed while heartbeats arrive.
 */
export function holderProbeLeadMs(heartbeatIntervalMs: number): number {
  return Math.min(2, heartbeatIntervalMs);
}

/**
 * The longest the engine waits for another node to finish a change it
 * started: a handoff's successor to report holding, a takeover deferred for
 * a silent holder whose host still answers (see
 * {@link TakeoverEngine.holderAnswered}). The detection time, at least
 * 50 ms, so that at 1–5 ms intervals a peer slowed by a busy CPU is not
 * given up on a few milliseconds in.
 */
export function confirmationWindowMs(heartbeatIntervalMs: number, missCount: number): number {
  return Math.max(50, heartbeatIntervalMs * missCount);
}

interface GroupView {
  group: Group;
  state: GroupState;
  since: number;
  reason: TransitionReason;
  /** This node holds the group because an operator moved it here. */
  pinned: boolean;
  /** A handoff in flight: nobody but `target` may take the group until `until`. */
  transfer: { target: string; until: number; pinned: boolean } | undefined;
  /** When each member was first seen eligible without interruption (for hold-down). */
  eligibleSince: Map<string, number>;
  nextLeaseRefresh: number;
  /** An externally deleted address made this node give the group up (policy 'release'). */
  externalFault: boolean;
  /** A make-before-break handoff in progress: to whom, until when, and the state after it. */
  handoff: { target: string; until: number; next: GroupState } | undefined;
  /** A probe of the silent holder's host: when sent, and when answered. */
  holderCheck: { peer: string; sentAt: number; answeredAt: number | undefined } | undefined;
  /**
   * The holder went silent but its host still answered for the address (its
   * process died or froze, its host is up): no takeover until its leave (its
   * reaper deleted the address), its port's ICMP error plus the grace, or `until`.
   */
  deferral: { peer: string; until: number } | undefined;
}

/** Options of the engine. */
export interface EngineOptions {
  /** This node's id (must be in the cluster). */
  self: string;
  cluster: Cluster;
  detectorFactory: DetectorFactory;
}

/**
 * Decides, for one node, which groups to hold. See the module comment for
 * the rules; every public method returns the effects to execute.
 */
export class TakeoverEngine {
  readonly self: string;
  readonly cluster: Cluster;
  private readonly peers = new Map<string, PeerView>();
  private readonly groups: GroupView[];
  private healthy = true;
  private draining: { until: number } | undefined;
  private disabled = false;
  private stopped = true;
  /** stop() was called; handoffs may still be in flight. */
  private stopping = false;
  /** start() was called; never reset (a stopped engine is not started again). */
  private started = false;
  private graceUntil = 0;
  /** The time of the last timer tick: what time decides is judged at it (see {@link run}). */
  private tickedAt = 0;
  private verifyUntil = 0;
  private armedDeadline: number | undefined;
  /** The input being applied is a routine heartbeat (see {@link receive}). */
  private routine = false;
  /** The last input ran {@link evaluate} or had effects (see {@link decided}). */
  private lastDecided = true;
  private readonly linksDown = new Set<string>();
  private effects: Effect[] = [];
  private now = 0;

  constructor(options: EngineOptions) {
    const { self, cluster } = options;
    if (!cluster.nodes.has(self)) throw new RangeError(`node ${JSON.stringify(self)} is not in the cluster (nodes: ${[...cluster.nodes.keys()].join(', ')})`);
    this.self = self;
    this.cluster = cluster;
    for (const id of cluster.nodes.keys()) {
      if (id === self) continue;
      this.peers.set(id, { id, detector: options.detectorFactory(id, cluster), alive: false, health: 'healthy', digestMatches: true, statuses: new Map(), heard: false, incarnation: undefined, deadIncarnation: undefined, unreachableSince: undefined, probedAt: undefined, upAt: undefined, intervalMs: undefined });
    }
    this.groups = cluster.groups.map((group) => ({
      group, state: 'stopped' as GroupState, since: 0, reason: 'startup' as TransitionReason, pinned: false, transfer: undefined,
      eligibleSince: new Map<string, number>(), nextLeaseRefresh: Infinity, externalFault: false, handoff: undefined, holderCheck: undefined, deferral: undefined,
    }));
  }

  // ---- inputs ------------------------------------------------------------------

  /**
   * Starts: every group in 'init' until the startup grace ends. Groups in
   * `adopted` are already on this host (a restart of the daemon for a config
   * reload): they start 'verifying', keep their addresses, and are kept if no
   * peer holds them when the grace ends; those in `pinned` stay pinned.
   */
  start(now: number, adopted: readonly number[] = [], pinned: readonly number[] = []): Effect[] {
    return this.run(now, () => {
      if (this.started) return;
      this.started = true;
      this.stopped = false;
      this.graceUntil = now + this.cluster.timers.startupGraceMs;
      for (const g of this.groups) {
        if (adopted.includes(g.group.index)) {
          this.transition(g, 'verifying', 'startup');
          this.verifyUntil = this.graceUntil;
          // An operator's move survives the restart.
          g.pinned = pinned.includes(g.group.index);
        } else this.transition(g, 'init', 'startup');
      }
      this.effects.push({ type: 'send-status' });
    });
  }

  /**
   * Stops: hands every held group to its best receiver (make-before-break),
   * then tells peers it leaves; takes nothing anymore. Check
   * {@link isStopped}: while handoffs are in flight the caller keeps feeding
   * inputs and timer ticks (bounded by the detection time).
   */
  stop(now: number): Effect[] {
    return this.run(now, () => {
      if (this.stopped || this.stopping) return;
      this.stopping = true;
      for (const g of this.groups) {
        if (this.holds(g)) this.handOff(g, 'stop', this.bestReceiver(g), false, 'stopped');
        else if (g.state !== 'handing-off') this.transition(g, 'stopped', 'stop');
        else if (g.handoff) g.handoff.next = 'stopped';
      }
      this.finishStop();
    });
  }

  /** True once stopped: every handoff done, peers told. */
  get isStopped(): boolean {
    return this.stopped;
  }

  private finishStop(): void {
    if (!this.stopping || this.stopped || this.groups.some((g) => g.state === 'handing-off')) return;
    this.stopped = true;
    this.effects.push({ type: 'send-leave' });
  }

  /** A timer fired (at the deadline the caller got from {@link nextDeadline}, or later). */
  tick(now: number): Effect[] {
    return this.run(now, () => {}, true);
  }

  /**
   * The native heartbeat sender ran dry: this process could not refill it in
   * time, so peers may have declared this node dead. Same as a late timer.
   */
  heartbeatsStarved(now: number): Effect[] {
    return this.run(now, () => this.frozen(0));
  }

  /**
   * An authenticated message from a peer.
   *
   * A routine heartbeat, one that repeats what the peer said before (same
   * incarnation, health, interval and group statuses, from a peer that is up
   * with nothing pending about it), only moves the peer's failure deadline
   * later: it returns no effects and leaves {@link decided} false. The
   * caller then need not re-plan its timer: the wake-up it armed comes
   * earlier than needed, which costs one early tick, not a wrong decision.
   */
  receive(message: PeerMessage, now: number): Effect[] {
    return this.run(now, () => {
      const peer = this.peers.get(message.from);
      if (!peer) return; // not in our config: the receiver counts and drops these
      if (!message.digestMatches) {
        if (peer.digestMatches) this.event({ type: 'config-mismatch', peer: peer.id, at: now });
        peer.digestMatches = false;
        return; // never act on a different view of the cluster
      }
      const digestMatched = peer.digestMatches;
      peer.digestMatches = true;
      if ((message.kind === 'heartbeat' || message.kind === 'leave') && message.incarnation === peer.deadIncarnation) return;
      switch (message.kind) {
        case 'heartbeat':
          this.routine = this.isRoutine(peer, message, digestMatched);
          peer.incarnation = message.incarnation;
          peer.intervalMs = message.intervalMs;
          peer.detector.heartbeat(now, message.intervalMs);
          peer.heard = true;
          peer.unreachableSince = undefined;
          peer.probedAt = undefined;
          for (const g of this.groups) {
            if (g.holderCheck?.peer === peer.id) g.holderCheck = undefined;
            if (g.deferral?.peer === peer.id) g.deferral = undefined;
          }
          if (!peer.alive) {
            peer.alive = true;
            peer.upAt = now;
            this.event({ type: 'peer-up', peer: peer.id, at: now });
            // A peer back after a partition or a restart learns our state now,
            // not one interval later: a split brain ends that much sooner.
            this.effects.push({ type: 'send-status' });
          }
          peer.health = message.health;
          peer.statuses = new Map(message.groups.map((s) => [s.index, { status: s.status, pinned: s.pinned }]));
          for (const g of this.groups) {
            if (g.transfer && g.transfer.target === peer.id && peer.statuses.get(g.group.index)?.status === 'holding') g.transfer = undefined;
          }
          break;
        case 'leave':
          peer.statuses.clear();
          peer.deadIncarnation = message.incarnation;
          // Its reaper deleted the addresses before sending this: take over now.
          for (const g of this.groups) if (g.deferral?.peer === peer.id) g.deferral = undefined;
          this.markDown(peer, 'leave');
          break;
        case 'release': {
          const g = this.groups[message.group];
          if (!g) return;
          // 'releasing' until its next heartbeat: a node that just gave the group
          // away is no candidate to receive it back (no handoff ping-pong).
          peer.statuses.set(message.group, { status: 'releasing', pinned: false });
          if (this.holds(g)) {
            // Another node held this group too (a split brain it lost before we
            // saw it holding): clients may still point at it. Announce now.
            this.effects.push({ type: 'announce', group: g.group.index });
          } else if (message.target === this.self) {
            g.transfer = undefined;
            if (this.canReceive(g)) {
              this.acquireGroup(g, message.pinned ? 'manual-move' : 'handoff-received');
              g.pinned = message.pinned;
            }
          } else if (message.target !== undefined && this.peers.get(message.target)?.alive) {
            g.transfer = { target: message.target, until: now + this.confirmationWindowMs(), pinned: message.pinned };
          }
          break;
        }
        case 'move-request': {
          const g = this.groups[message.group];
          if (g && this.holds(g)) this.moveFrom(g, message.target);
          break;
        }
      }
    });
  }

  /**
   * A host other than this one answered the probe of a `probe-holder` effect
   * for `group`: the silent holder's host still has the address. When the
   * holder's detection deadline passes, the takeover waits (see
   * {@link confirmationWindowMs}) instead of making two hosts answer.
   */
  holderAnswered(group: number, now: number): Effect[] {
    return this.run(now, () => {
      const g = this.groups[group];
      if (g?.holderCheck && g.holderCheck.answeredAt === undefined) g.holderCheck.answeredAt = now;
    });
  }

  /** A peer's host reported its heartbeat port unreachable (ICMP): its process is gone. */
  peerUnreachable(peerId: string, now: number): Effect[] {
    return this.run(now, () => {
      const peer = this.peers.get(peerId);
      if (!peer) return;
      if (!peer.alive) {
        // Already down, its takeover deferred: the process is gone for sure,
        // so its reaper has the grace to delete before we take over.
        const until = now + unreachableGraceMs(this.cluster.timers.heartbeatIntervalMs);
        for (const g of this.groups) if (g.deferral?.peer === peerId && g.deferral.until > until) g.deferral.until = until;
        return;
      }
      // The ICMP error answers a datagram sent some time ago. If the peer was
      // heard from within the last interval it is alive (typically a restart:
      // the error was about the old process, the heartbeat is from the new
      // one); marking that incarnation dead would ignore it for good.
      const last = peer.detector.lastHeartbeat;
      if (last !== undefined && now - last < this.cluster.timers.heartbeatIntervalMs) return;
      // Marked down after the grace (evaluate()), unless its leave comes first.
      peer.unreachableSince ??= now;
    });
  }

  /** An interface went down or came back. */
  linkChanged(name: string, up: boolean, now: number): Effect[] {
    return this.run(now, () => {
      if (up) this.linksDown.delete(name);
      else this.linksDown.add(name);
      for (const g of this.groups) {
        if (!g.group.addresses.some((a) => a.interface === name)) continue;
        if (!up && g.state !== 'fault' && g.state !== 'stopped') {
          if (this.holds(g)) this.releaseGroup(g, 'link-down', this.bestReceiver(g));
          this.transition(g, 'fault', 'link-down');
          this.effects.push({ type: 'send-status' });
        } else if (up && g.state === 'fault' && this.groupLinksUp(g) && this.healthy && !g.externalFault) {
          // With its link down this node heard nobody: its view of the peers
          // is stale. Listen for the startup grace, as after a start, before
          // claiming anything; a holder hands the group back by handoff.
          this.graceUntil = Math.max(this.graceUntil, now + this.cluster.timers.startupGraceMs);
          this.transition(g, 'init', 'link-up');
          this.effects.push({ type: 'send-status' });
        }
      }
    });
  }

  /** Local health changed (after rise/fall counting). */
  healthChanged(healthy: boolean, now: number): Effect[] {
    return this.run(now, () => {
      if (healthy === this.healthy) return;
      this.healthy = healthy;
      for (const g of this.groups) {
        if (!healthy && g.state !== 'stopped' && g.state !== 'fault') {
          if (this.holds(g)) this.releaseGroup(g, 'health-failed', this.bestReceiver(g));
          this.transition(g, 'fault', 'health-failed');
        } else if (healthy && g.state === 'fault' && this.groupLinksUp(g) && !g.externalFault) {
          this.transition(g, 'backup', 'health-restored');
        }
      }
      this.effects.push({ type: 'send-status' });
    });
  }

  /** Someone else deleted one of the addresses of a group this node holds. */
  addressDeleted(groupIndex: number, now: number): Effect[] {
    return this.run(now, () => {
      const g = this.groups[groupIndex];
      if (!g || !this.holds(g)) return;
      if (this.cluster.externalDelete === 'readd') {
        this.effects.push({ type: 'acquire', group: groupIndex, reason: 'external-delete' });
        return;
      }
      g.externalFault = true;
      this.releaseGroup(g, 'external-delete', this.bestReceiver(g));
      this.transition(g, 'fault', 'external-delete');
      this.effects.push({ type: 'send-status' });
    });
  }

  /** Operator: move a group to `target`, pinned there until the next operator action or a failure. */
  move(groupName: string, target: string, now: number): Effect[] {
    return this.run(now, () => {
      const g = this.groupByName(groupName);
      if (!g.group.priorities.has(target)) throw new RangeError(`node ${JSON.stringify(target)} is not a member of group ${JSON.stringify(groupName)}`);
      if (this.holds(g)) {
        this.moveFrom(g, target);
        return;
      }
      const holder = this.holderOf(g);
      if (holder === undefined) {
        if (target === this.self && this.canReceive(g)) {
          this.acquireGroup(g, 'manual-move');
          g.pinned = true;
        } else this.event({ type: 'move-refused', group: g.group.index, target, reason: 'nobody holds the group; move it from its next holder', at: now });
        return;
      }
      if (holder !== target) this.effects.push({ type: 'send-move-request', group: g.group.index, target, holder });
    });
  }

  /** Operator: drain this node: keep holding for `graceMs`, then hand everything off; take nothing new. */
  drain(graceMs: number, now: number): Effect[] {
    if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError(`grace period must be ≥ 0 ms, got ${graceMs}`);
    return this.run(now, () => {
      this.draining = { until: now + graceMs };
      for (const g of this.groups) {
        if (g.state === 'active' || g.state === 'verifying') this.transition(g, 'draining', 'drain');
      }
      this.effects.push({ type: 'send-status' });
    });
  }

  /** Operator: make this node ineligible (releases what it holds) or eligible again; `true` also clears pins and faults from external deletes. */
  setEnabled(enabled: boolean, now: number): Effect[] {
    return this.run(now, () => {
      if (!enabled) {
        this.disabled = true;
        for (const g of this.groups) {
          if (g.state === 'stopped') continue;
          if (this.holds(g)) this.handOff(g, 'disabled', this.bestReceiver(g), false, 'disabled');
          else if (g.state === 'handing-off' && g.handoff) g.handoff.next = 'disabled';
          else this.transition(g, 'disabled', 'disabled');
        }
      } else {
        this.disabled = false;
        this.draining = undefined;
        for (const g of this.groups) {
          g.pinned = false;
          g.externalFault = false;
          if (g.state === 'disabled' || g.state === 'fault' || g.state === 'draining') {
            if (g.state === 'draining') this.transition(g, 'active', 'enabled');
            else this.transition(g, this.healthy && this.groupLinksUp(g) ? 'backup' : 'fault', 'enabled');
          }
        }
      }
      this.effects.push({ type: 'send-status' });
    });
  }

  // ---- outputs for the caller -------------------------------------------------------

  /**
   * The next time {@link tick} must be called (ms), or undefined when nothing is pending.
   *
   * `now`: the caller's clock when it is ready to wait again, after applying
   * the last effects. Time spent applying them (adding hundreds of addresses
   * and announcing them takes tens of ms) is this node working, not frozen:
   * the freeze reference starts from there. Default: the last input's time.
   */
  nextDeadline(now?: number): number | undefined {
    const ready = now !== undefined && now > this.now ? now : this.now;
    const next = this.stopped ? Infinity : this.wakeAfter(ready);
    if (next === Infinity) {
      this.armedDeadline = undefined;
      return undefined;
    }
    this.armedDeadline = Math.max(next, ready);
    return Math.max(next, this.now);
  }

  /**
   * When to wake up, planning at `ready`: the next decision on time, and at
   * least every interval once started (the reference that reveals a freeze,
   * see {@link run}).
   */
  private wakeAfter(ready: number): number {
    const reference = this.started ? ready + this.cluster.timers.heartbeatIntervalMs : Infinity;
    return Math.min(reference, this.decisionTime(false));
  }

  /**
   * The earliest time at which something is decided on time: a peer's
   * failure deadline, a holder probe, a grace, a lease refresh, a handoff's
   * or deferral's end... With `pastToo`, also the times already passed that
   * {@link nextDeadline} leaves out (a probe time, a settle, a hold-down end):
   * a tick before that has nothing to decide (see {@link run}).
   */
  private decisionTime(pastToo: boolean): number {
    const interval = this.cluster.timers.heartbeatIntervalMs;
    let next = Infinity;
    if (this.groups.some((g) => g.state === 'init')) next = Math.min(next, this.graceUntil);
    if (this.verifyUntil > 0) next = Math.min(next, this.verifyUntil);
    if (this.draining) next = Math.min(next, this.draining.until);
    for (const p of this.peers.values()) {
      if (p.alive) next = Math.min(next, p.detector.deadline(this.now));
      if (p.alive && p.unreachableSince !== undefined) next = Math.min(next, p.unreachableSince + unreachableGraceMs(interval));
      // A split brain postponed while the peer settles is decided then.
      const settlesAt = pastToo ? (p.upAt === undefined ? undefined : p.upAt + peerSettleMs(interval)) : this.settlesAt(p);
      if (settlesAt !== undefined && this.groups.some((g) => this.holds(g) && this.peerHolds(p, g))) next = Math.min(next, settlesAt);
      if (p.alive && p.probedAt === undefined && this.groups.some((g) => this.peerHolds(p, g))) {
        const probeAt = p.detector.deadline(this.now) - holderProbeLeadMs(interval);
        if (pastToo || probeAt > this.now) next = Math.min(next, probeAt);
      }
    }
    for (const g of this.groups) {
      if (this.holds(g)) next = Math.min(next, g.nextLeaseRefresh);
      if (g.transfer) next = Math.min(next, g.transfer.until);
      if (g.handoff) next = Math.min(next, g.handoff.until);
      if (g.deferral) next = Math.min(next, g.deferral.until);
      if (g.group.giveback.mode === 'hold-down' && this.holds(g)) {
        const delay = g.group.giveback.delayMs;
        for (const since of g.eligibleSince.values()) if (pastToo || since + delay > this.now) next = Math.min(next, since + delay);
      }
    }
    return next;
  }

  /** This node's status of each group, for its heartbeats. */
  reportedGroups(): { index: number; status: PeerGroupStatus; pinned: boolean }[] {
    return this.groups.map((g) => ({
      index: g.group.index,
      // Before the first start() too: the mesh sends heartbeats before the engine starts.
      status: this.holds(g) ? 'holding' : g.state === 'handing-off' ? 'releasing' : g.state === 'init' || !this.started ? 'starting' : this.canReceive(g) ? 'standby' : 'ineligible',
      pinned: g.pinned && this.holds(g),
    }));
  }

  /** This node's health for its heartbeats. */
  reportedHealth(): PeerHealth {
    if (this.draining) return 'draining';
    return this.healthy ? 'healthy' : 'unhealthy';
  }

  /** A snapshot for status displays. */
  status(): EngineStatus {
    return {
      node: this.self,
      health: this.stopped ? 'stopped' : this.reportedHealth(),
      groups: this.groups.map((g) => ({
        index: g.group.index, name: g.group.name, state: g.state, since: g.since, reason: g.reason,
        holder: this.holds(g) ? this.self : this.holderOf(g), pinned: g.pinned,
      })),
      peers: [...this.peers.values()].map((p) => ({ id: p.id, alive: p.alive, health: p.heard ? p.health : undefined, digestMatches: p.digestMatches })),
    };
  }

  /** The group's current state. */
  groupState(index: number): GroupState {
    const g = this.groups[index];
    if (!g) throw new RangeError(`no group ${index}`);
    return g.state;
  }

  // ---- the decision core -----------------------------------------------------------

  /**
   * Applies one input, then re-derives every decision. What time decides (a
   * peer's timeout, the end of the startup grace, of a deferral, a transfer,
   * a handoff, a drain, a hold-down) is judged at the time of the last timer
   * tick (`ticked`), never at an input's: a datagram handler runs while the
   * rest of the same read batch still waits, and after a busy spell the
   * heartbeat that would change the decision (the holder's, for a node whose
   * startup grace or failure deadline just passed) is often among them; the
   * caller's tick runs after the batch (see VipaNode's timer).
   */
  private run(now: number, input: () => void, ticked = false): Effect[] {
    this.now = Math.max(this.now, now);
    if (ticked) this.tickedAt = this.now;
    this.effects = [];
    this.routine = false;
    // Any input (not only the timer) that comes far past the time this node
    // asked to be woken proves the process was frozen or starved: after a
    // freeze the event loop may deliver queued datagrams before the overdue
    // timer, and those must not let the node assert ownership unverified.
    // nextDeadline() plans a wake-up at least every heartbeat interval, so a
    // freeze longer than interval + threshold always shows here, while the
    // silence of dead peers does not (the timer still fires on time).
    const planned = this.armedDeadline;
    if (planned !== undefined && !this.stopped && now - planned > this.cluster.timers.lateThresholdMs) {
      this.armedDeadline = undefined;
      this.frozen(now - planned);
    }
    input();
    // A routine heartbeat changes no decision: every time-based one is
    // judged at a tick, and nothing else it carries is new. Nor does a tick
    // before anything is due on time (the wake-up at least every interval,
    // or one planned before routine heartbeats moved a deadline later):
    // everything else was evaluated with the input that changed it.
    if (this.routine && this.effects.length > 0) this.routine = false; // e.g. a freeze found above
    if (this.routine && this.armedDeadline !== undefined) {
      // The freeze reference moves as a re-plan would move it (the timer armed
      // stays and fires early): a freeze shows once it is longer than an
      // interval plus the threshold after the last input, as with a re-plan.
      this.armedDeadline = Math.max(this.armedDeadline, this.wakeAfter(this.now));
    }
    const evaluated = !this.stopped && !this.routine && !(ticked && this.effects.length === 0 && this.now < this.decisionTime(true));
    if (evaluated) this.evaluate(ticked);
    const out = this.effects;
    this.lastDecided = evaluated || out.length > 0;
    this.effects = [];
    return out;
  }

  /**
   * True while this node, the one that would take over, probes a silent
   * holder: the holder's failure deadline is at most
   * {@link holderProbeLeadMs} away, and a heartbeat from it or the deadline
   * ends it.
   */
  get checkingHolder(): boolean {
    return this.groups.some((g) => g.holderCheck !== undefined);
  }

  /**
   * False after an input that decided nothing: a routine heartbeat (see
   * {@link receive}) or a tick before anything was due on time. It had no
   * effects, the status this node reports ({@link reportedGroups},
   * {@link reportedHealth}) is what it was, and a wake-up planned before is
   * still early enough: after a routine heartbeat the caller need not
   * re-plan (after a tick it always plans the next one).
   */
  get decided(): boolean {
    return this.lastDecided;
  }

  /** The heartbeat repeats the peer's state as this node knows it, and nothing about the peer is pending. */
  private isRoutine(peer: PeerView, message: Extract<PeerMessage, { kind: 'heartbeat' | 'leave' }>, digestMatched: boolean): boolean {
    if (!digestMatched || !peer.alive || !peer.heard || peer.incarnation !== message.incarnation || peer.health !== message.health || peer.intervalMs !== message.intervalMs) return false;
    if (peer.unreachableSince !== undefined || peer.probedAt !== undefined) return false;
    if (message.groups.length !== peer.statuses.size) return false;
    for (const s of message.groups) {
      const known = peer.statuses.get(s.index);
      if (!known || known.status !== s.status || known.pinned !== s.pinned) return false;
    }
    for (const g of this.groups) if (g.holderCheck?.peer === peer.id || g.deferral?.peer === peer.id || g.transfer?.target === peer.id) return false;
    return true;
  }

  private event(event: EngineEvent): void {
    this.effects.push({ type: 'event', event });
  }

  private transition(g: GroupView, to: GroupState, reason: TransitionReason): void {
    if (g.state === to) return;
    const from = g.state;
    g.state = to;
    g.since = this.now;
    g.reason = reason;
    this.event({ type: 'transition', group: g.group.index, name: g.group.name, from, to, reason, at: this.now });
  }

  private detectionMs(): number {
    return this.cluster.timers.heartbeatIntervalMs * this.cluster.timers.missCount;
  }

  /** See {@link confirmationWindowMs}. */
  private confirmationWindowMs(): number {
    return confirmationWindowMs(this.cluster.timers.heartbeatIntervalMs, this.cluster.timers.missCount);
  }

  private frozen(lateMs: number): void {
    this.event({ type: 'late-timer', lateMs, at: this.now });
    // Silence heard while frozen proves nothing: give every peer a fresh window.
    for (const p of this.peers.values()) {
      if (!p.alive) continue;
      p.detector.reset();
      p.detector.heartbeat(this.now);
    }
    this.verifyUntil = this.now + this.detectionMs();
    for (const g of this.groups) if (g.state === 'active') this.transition(g, 'verifying', 'frozen');
  }

  private markDown(peer: PeerView, reason: 'timeout' | 'leave' | 'unreachable'): void {
    peer.unreachableSince = undefined;
    peer.probedAt = undefined;
    if (!peer.alive) return;
    for (const g of this.groups) {
      if (g.holderCheck?.peer !== peer.id) continue;
      if (reason === 'timeout' && g.holderCheck.answeredAt !== undefined) {
        g.deferral = { peer: peer.id, until: this.now + this.confirmationWindowMs() };
        this.event({ type: 'takeover-deferred', group: g.group.index, holder: peer.id, until: g.deferral.until, at: this.now });
      }
      g.holderCheck = undefined;
    }
    peer.alive = false;
    peer.statuses.clear();
    this.event({ type: 'peer-down', peer: peer.id, reason, lastHeardAt: peer.detector.lastHeartbeat, at: this.now });
    for (const g of this.groups) if (g.transfer?.target === peer.id) g.transfer = undefined;
  }

  private holds(g: GroupView): boolean {
    return g.state === 'active' || g.state === 'verifying' || g.state === 'draining';
  }

  private groupLinksUp(g: GroupView): boolean {
    return g.group.addresses.every((a) => !this.linksDown.has(a.interface));
  }

  /** Can this node become the holder of `g` now? */
  private canReceive(g: GroupView): boolean {
    return !this.stopped && !this.stopping && this.healthy && !this.draining && !this.disabled && !g.externalFault && this.groupLinksUp(g) && g.state !== 'init' && g.state !== 'fault' && g.state !== 'disabled';
  }

  /**
   * Can peer `p` become holder? For a handoff it must be ready now; for the
   * takeover order a starting peer counts, so worse members wait for it. A
   * peer that reported no status for the group counts as starting (see
   * {@link PeerMessage}): a giveback to it would go to a node still in 'init'.
   */
  private peerCanReceive(p: PeerView, g: GroupView, forHandoff: boolean): boolean {
    const status = p.statuses.get(g.group.index)?.status ?? 'starting';
    if (status === 'ineligible' || status === 'releasing' || (forHandoff && status === 'starting')) return false;
    return p.alive && p.digestMatches && p.health === 'healthy';
  }

  private peerHolds(p: PeerView, g: GroupView): boolean {
    return p.alive && p.digestMatches && p.statuses.get(g.group.index)?.status === 'holding';
  }

  /** Another live node that holds `g` (the best one if several). */
  private holderOf(g: GroupView): string | undefined {
    const holders = [...this.peers.values()].filter((p) => this.peerHolds(p, g)).map((p) => p.id);
    holders.sort((a, b) => this.compareClaims(g, a, b));
    return holders[0];
  }

  private isPinned(g: GroupView, node: string): boolean {
    if (node === this.self) return g.pinned && this.holds(g);
    return this.peers.get(node)?.statuses.get(g.group.index)?.pinned ?? false;
  }

  /**
   * When peer `p` has been up for {@link peerSettleMs}, if that is still
   * ahead of the last tick (until then its claims may be the start of a
   * stale burst; like every decision time decides, judged at a tick, see
   * {@link run}); undefined once it has settled.
   */
  private settlesAt(p: PeerView): number | undefined {
    if (p.upAt === undefined) return undefined;
    const at = p.upAt + peerSettleMs(this.cluster.timers.heartbeatIntervalMs);
    return this.tickedAt < at ? at : undefined;
  }

  /** Split-brain order: pinned first, then priority, then node id. */
  private compareClaims(g: GroupView, a: string, b: string): number {
    const pa = this.isPinned(g, a) ? 1 : 0;
    const pb = this.isPinned(g, b) ? 1 : 0;
    if (pa !== pb) return pb - pa;
    return comparePriority(g.group.priorities, a, b);
  }

  /** Members that could become holder, best first (see {@link peerCanReceive} for `forHandoff`). */
  private receivers(g: GroupView, forHandoff = true): string[] {
    return g.group.order.filter((id) => (id === this.self ? this.canReceive(g) : this.peers.has(id) && this.peerCanReceive(this.peers.get(id)!, g, forHandoff)));
  }

  private bestReceiver(g: GroupView): string | undefined {
    return this.receivers(g).find((id) => id !== this.self);
  }

  private acquireGroup(g: GroupView, reason: TransitionReason): void {
    this.effects.push({ type: 'acquire', group: g.group.index, reason });
    this.transition(g, 'active', reason);
    g.nextLeaseRefresh = this.now + (this.cluster.timers.leaseSeconds * 1000) / 3;
    this.effects.push({ type: 'send-status' });
  }

  private releaseGroup(g: GroupView, reason: TransitionReason, handTo: string | undefined, pinned = false): void {
    this.effects.push({ type: 'release', group: g.group.index, reason });
    g.pinned = false;
    g.nextLeaseRefresh = Infinity;
    if (handTo !== undefined) g.transfer = { target: handTo, until: this.now + this.confirmationWindowMs(), pinned };
    this.effects.push({ type: 'send-release', group: g.group.index, target: handTo, pinned });
  }

  private moveFrom(g: GroupView, target: string): void {
    if (target === this.self) {
      g.pinned = true;
      this.effects.push({ type: 'send-status' });
      return;
    }
    const peer = this.peers.get(target);
    if (!peer || !this.peerCanReceive(peer, g, true)) {
      this.event({ type: 'move-refused', group: g.group.index, target, reason: 'target is not alive and eligible', at: this.now });
      return;
    }
    this.handOff(g, 'manual-move', target, true, 'backup');
  }

  /**
   * Hands `g` to `target` make-before-break: tells everyone (the target takes
   * it at once), keeps the addresses until the target reports holding them,
   * then deletes them (see evaluateHandoff). Without a target, releases now.
   */
  private handOff(g: GroupView, reason: TransitionReason, target: string | undefined, pinned: boolean, next: GroupState): void {
    if (target === undefined) {
      this.releaseGroup(g, reason, undefined);
      this.transition(g, next, reason);
      return;
    }
    g.pinned = false;
    g.nextLeaseRefresh = Infinity;
    g.transfer = { target, until: this.now + this.confirmationWindowMs(), pinned };
    g.handoff = { target, until: this.now + this.confirmationWindowMs(), next };
    this.effects.push({ type: 'send-release', group: g.group.index, target, pinned });
    this.transition(g, 'handing-off', reason);
  }

  /** Completes a handoff once the target holds the group, or gives up after the detection time. */
  private evaluateHandoff(g: GroupView, now: number): void {
    const h = g.handoff!;
    const target = this.peers.get(h.target);
    const taken = target !== undefined && this.peerHolds(target, g);
    if (!taken && now < h.until && target?.alive) return;
    this.effects.push({ type: 'release', group: g.group.index, reason: taken ? 'handoff-done' : 'handoff-timeout' });
    g.handoff = undefined;
    this.transition(g, h.next, taken ? 'handoff-done' : 'handoff-timeout');
    if (!taken) this.effects.push({ type: 'send-release', group: g.group.index, target: undefined, pinned: false });
    this.finishStop();
  }

  private groupByName(name: string): GroupView {
    const g = this.groups.find((x) => x.group.name === name);
    if (!g) throw new RangeError(`unknown group ${JSON.stringify(name)} (groups: ${this.groups.map((x) => x.group.name).join(', ')})`);
    return g;
  }

  /** Re-derives every decision from the current view. Runs after every input; `ticked`: see {@link run}. */
  private evaluate(ticked: boolean): void {
    const now = this.tickedAt;
    this.probeSilentHolders();
    if (ticked) {
      for (const p of this.peers.values()) {
        if (p.alive && p.unreachableSince !== undefined && now >= p.unreachableSince + unreachableGraceMs(this.cluster.timers.heartbeatIntervalMs)) {
          p.deadIncarnation = p.incarnation;
          this.markDown(p, 'unreachable');
        }
        if (p.alive && !p.detector.isAvailable(now)) this.markDown(p, 'timeout');
      }
    }
    const verifying = this.verifyUntil > now;
    if (!verifying && this.verifyUntil > 0) this.verifyUntil = 0;
    const draining = this.draining !== undefined && now >= this.draining.until;

    for (const g of this.groups) {
      if (g.transfer && (now >= g.transfer.until || !this.peers.get(g.transfer.target)?.alive)) g.transfer = undefined;
      if (g.deferral && now >= g.deferral.until) g.deferral = undefined;
      this.trackEligibility(g);

      if (g.state === 'init') {
        if (now >= this.graceUntil && !verifying) this.transition(g, this.healthy && this.groupLinksUp(g) ? 'backup' : 'fault', 'startup-grace-over');
        else continue;
      }

      if (g.state === 'handing-off') {
        this.evaluateHandoff(g, now);
      } else if (this.holds(g)) {
        this.evaluateHolder(g, verifying, draining, now);
      } else if (g.state === 'backup' && !verifying && !g.transfer) {
        this.evaluateBackup(g);
      }
    }
    if (draining) this.draining = { until: Infinity };
  }

  private trackEligibility(g: GroupView): void {
    const eligible = new Set(this.receivers(g));
    for (const id of [...g.eligibleSince.keys()]) if (!eligible.has(id)) g.eligibleSince.delete(id);
    for (const id of eligible) if (!g.eligibleSince.has(id)) g.eligibleSince.set(id, this.now);
  }

  private evaluateHolder(g: GroupView, verifying: boolean, drainOver: boolean, now: number): void {
    // Another live holder: split brain (or a holder seen while re-verifying).
    const others = [...this.peers.values()].filter((p) => this.peerHolds(p, g)).map((p) => p.id);
    if (others.length > 0) {
      if (g.state === 'verifying') {
        this.releaseGroup(g, 'stepped-back', undefined);
        this.transition(g, 'backup', 'stepped-back');
        return;
      }
      const all = [this.self, ...others].sort((a, b) => this.compareClaims(g, a, b));
      const winner = all[0]!;
      // Losing only to peers that just came up: wait for the rest of a
      // possible stale burst (see peerSettleMs); nextDeadline() wakes us when
      // they have settled, and the decision is taken on the latest state then.
      if (winner !== this.self && all.slice(0, all.indexOf(this.self)).every((id) => this.settlesAt(this.peers.get(id)!) !== undefined)) return;
      this.event({ type: 'split-brain', group: g.group.index, holders: all, winner, at: now });
      if (winner !== this.self) {
        this.releaseGroup(g, 'split-brain-lost', undefined);
        this.transition(g, 'backup', 'split-brain-lost');
        return;
      }
      // Re-announce, and tell the losers now rather than at the next heartbeat.
      this.effects.push({ type: 'announce', group: g.group.index }, { type: 'send-status' });
    }

    if (g.state === 'verifying') {
      if (!verifying) {
        // Nobody else claims it: assert ownership again from scratch (the lease may have run out while frozen).
        this.effects.push({ type: 'acquire', group: g.group.index, reason: 'verified' });
        this.transition(g, 'active', 'verified');
        g.nextLeaseRefresh = now + (this.cluster.timers.leaseSeconds * 1000) / 3;
      }
      return;
    }

    if (g.state === 'draining') {
      if (drainOver) {
        this.handOff(g, 'drain-done', this.bestReceiver(g), false, 'backup');
        return;
      }
    } else if (!g.pinned && !verifying) {
      // Giveback: a better member is eligible.
      const best = this.receivers(g)[0];
      if (best !== undefined && best !== this.self && comparePriority(g.group.priorities, best, this.self) < 0 && this.givebackDue(g, best, now)) {
        this.handOff(g, 'giveback', best, false, 'backup');
        return;
      }
    }

    if (now >= g.nextLeaseRefresh) {
      this.effects.push({ type: 'refresh-lease', group: g.group.index });
      g.nextLeaseRefresh = now + (this.cluster.timers.leaseSeconds * 1000) / 3;
    }
  }

  private givebackDue(g: GroupView, best: string, now: number): boolean {
    const policy = g.group.giveback;
    if (policy.mode === 'immediate') return true;
    if (policy.mode === 'manual') return false;
    const since = g.eligibleSince.get(best);
    return since !== undefined && now - since >= policy.delayMs;
  }

  /**
   * A holder silent for nearly its detection time: ask the caller to probe
   * whether its host still answers for the group (only the member that would
   * take over asks, once per silence).
   */
  private probeSilentHolders(): void {
    const lead = holderProbeLeadMs(this.cluster.timers.heartbeatIntervalMs);
    for (const p of this.peers.values()) {
      if (!p.alive || p.probedAt !== undefined) continue;
      const deadline = p.detector.deadline(this.now);
      if (this.now < deadline - lead || this.now >= deadline) continue;
      p.probedAt = this.now;
      for (const g of this.groups) {
        if (!this.peerHolds(p, g) || !this.canReceive(g)) continue;
        if (this.receivers(g, false).find((id) => id !== p.id) !== this.self) continue;
        g.holderCheck = { peer: p.id, sentAt: this.now, answeredAt: undefined };
        this.effects.push({ type: 'probe-holder', group: g.group.index, holder: p.id });
      }
    }
  }

  private evaluateBackup(g: GroupView): void {
    if (!this.canReceive(g)) return;
    if (g.deferral) return;
    if (this.holderOf(g) !== undefined) return;
    if (this.receivers(g, false)[0] === this.self) this.acquireGroup(g, 'takeover');
  }
}
