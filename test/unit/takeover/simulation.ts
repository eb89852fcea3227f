/**
 * A discrete-event simulation of a vipa cluster for unit tests: several real
 * TakeoverEngines, a fake clock, a fake network (latency, partitions), and a
 * fake kernel per node (held addresses, lease expiry). Nodes can crash,
 * freeze (SIGSTOP) and thaw, like the multi-process tests do for real.
 */
import { validateCluster, type ClusterConfig } from '../../../lib/takeover/config.js';
import { FixedTimeoutDetector } from '../../../lib/takeover/detectors.js';
import { TakeoverEngine, type Effect, type EngineEvent, type PeerMessage } from '../../../lib/takeover/engine.js';

export interface SimOptions {
  latencyMs?: number;
}

interface SimNode {
  id: string;
  engine: TakeoverEngine;
  running: boolean;
  started: boolean;
  frozenUntil: number;
  /** Busy applying effects (the event loop runs nothing else; the heartbeat thread keeps sending). */
  busyUntil: number;
  nextHeartbeat: number;
  deadline: number | undefined;
  inbox: { at: number; message: PeerMessage }[];
  digestMatches: boolean;
  incarnation: bigint;
}

/** Who holds each group's addresses in each node's kernel, and until when (lease). */
interface Holding {
  node: string;
  leaseUntil: number;
}

export class Simulation {
  now = 0;
  readonly latencyMs: number;
  readonly nodes = new Map<string, SimNode>();
  readonly holdings = new Map<number, Holding[]>();
  readonly events: { node: string; event: EngineEvent }[] = [];
  readonly effects: { node: string; at: number; effect: Effect }[] = [];
  /** Pairs "a|b" that cannot talk. */
  readonly blocked = new Set<string>();
  /** Every instant at which two nodes held one group while no partition existed. */
  readonly doubleHolds: { at: number; group: number; nodes: string[] }[] = [];
  private readonly config: ClusterConfig;
  private readonly leaseMs: number;
  private readonly intervalMs: number;
  private incarnations = 1;
  /** Time a node's process spends applying an 'acquire' (many addresses): busy, not frozen. */
  readonly acquireCostMs = new Map<string, number>();
  /** Hosts switched off: their kernels answer nothing. */
  private readonly hostsDown = new Set<string>();
  /** Things that happen at a time outside any engine (a reaper's delete, a probe's answer). */
  private scheduled: { at: number; run: () => void }[] = [];

  constructor(config: ClusterConfig, options: SimOptions = {}) {
    this.config = config;
    this.latencyMs = options.latencyMs ?? 0.2;
    const cluster = validateCluster(config);
    this.leaseMs = cluster.timers.leaseSeconds * 1000;
    this.intervalMs = cluster.timers.heartbeatIntervalMs;
    for (const id of cluster.nodes.keys()) this.addNode(id);
  }

  private addNode(id: string): SimNode {
    const cluster = validateCluster(this.config);
    const engine = new TakeoverEngine({
      self: id,
      cluster,
      detectorFactory: () => new FixedTimeoutDetector({ misses: cluster.timers.missCount, intervalMs: cluster.timers.heartbeatIntervalMs }),
    });
    const node: SimNode = { id, engine, running: false, started: false, frozenUntil: 0, busyUntil: 0, nextHeartbeat: Infinity, deadline: undefined, inbox: [], digestMatches: true, incarnation: BigInt(this.nodes.size * 1000 + (this.incarnations++)) };
    this.nodes.set(id, node);
    return node;
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Starts (or restarts after a crash) a node's process. */
  start(id: string): void {
    let n = this.node(id);
    if (n.started) n = this.addNode(id); // a restart is a new process with a fresh engine
    n.started = true;
    n.running = true;
    this.hostsDown.delete(id);
    n.frozenUntil = 0;
    n.nextHeartbeat = this.now;
    this.apply(n, n.engine.start(this.now));
  }

  startAll(): void {
    for (const id of this.nodes.keys()) this.start(id);
  }

  /**
   * SIGKILL of the process. Its reaper deletes what it held at once; with
   * `reaper: false` (reaper killed too) the kernel keeps the addresses until
   * their lease ends. With `leave`, the reaper then tells the peers (as
   * native/reaper.h does when the node armed a notification).
   */
  crash(id: string, options: { reaper?: boolean; leave?: boolean; reaperDelayMs?: number } = {}): void {
    const n = this.node(id);
    const reap = () => {
      this.dropHoldings(id);
      // The reaper's last act: a pre-signed leave to the peers, after the delete.
      if (options.leave) this.broadcast(n, this.heartbeat(n, 'leave'));
    };
    // reaperDelayMs: the kernel tears the process down (and the reaper runs) that much later.
    if (options.reaper !== false) {
      if (options.reaperDelayMs) this.scheduled.push({ at: this.now + options.reaperDelayMs, run: reap });
      else reap();
    }
    n.running = false;
    n.inbox = [];
    n.deadline = undefined;
    n.nextHeartbeat = Infinity;
  }

  /** The whole host is gone (power off, link down): nothing answers for it anymore. */
  hostDown(id: string): void {
    this.hostsDown.add(id);
    this.crash(id, { reaper: false });
    this.dropHoldings(id); // its addresses answer nothing anymore
  }

  private dropHoldings(id: string): void {
    for (const [g, list] of this.holdings) this.holdings.set(g, list.filter((h) => h.node !== id));
  }

  /** SIGSTOP for `ms`: nothing runs, not even the heartbeat thread; then SIGCONT. */
  freeze(id: string, ms: number): void {
    this.node(id).frozenUntil = this.now + ms;
  }

  /** Blocks traffic between two nodes (both directions). */
  partition(a: string, b: string): void {
    this.blocked.add([a, b].sort().join('|'));
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Makes `id` report a different config digest to everyone. */
  mismatch(id: string): void {
    this.node(id).digestMatches = false;
  }

  /** Calls an engine input on a node at the current time and applies its effects. */
  act(id: string, input: (engine: TakeoverEngine, now: number) => Effect[]): void {
    const n = this.node(id);
    this.apply(n, input(n.engine, this.now));
  }

  holders(group = 0): string[] {
    return (this.holdings.get(group) ?? []).map((h) => h.node).sort();
  }

  /** Runs the simulation for `ms`. */
  run(ms: number): void {
    const end = this.now + ms;
    for (let steps = 0; steps < 1_000_000; steps++) {
      const next = this.nextEventTime();
      if (next > end) break;
      this.now = Math.max(this.now, next);
      this.step();
    }
    this.now = end;
    this.expireLeases();
  }

  /** Runs until `predicate` holds or `ms` pass; returns the time it took. */
  runUntil(predicate: () => boolean, ms: number): number {
    const start = this.now;
    const end = this.now + ms;
    while (this.now < end && !predicate()) this.run(Math.min(0.1, end - this.now));
    return this.now - start;
  }

  private nextEventTime(): number {
    let t = Infinity;
    for (const n of this.nodes.values()) {
      if (!n.running) continue;
      if (n.frozenUntil > this.now) {
        t = Math.min(t, n.frozenUntil);
        continue;
      }
      t = Math.min(t, n.nextHeartbeat);
      if (n.busyUntil > this.now) {
        t = Math.min(t, n.busyUntil);
        continue;
      }
      if (n.deadline !== undefined) t = Math.min(t, n.deadline);
      for (const m of n.inbox) t = Math.min(t, m.at);
    }
    for (const hs of this.holdings.values()) for (const h of hs) t = Math.min(t, h.leaseUntil);
    for (const x of this.scheduled) t = Math.min(t, x.at);
    return t;
  }

  private step(): void {
    this.expireLeases();
    const due = this.scheduled.filter((x) => x.at <= this.now);
    this.scheduled = this.scheduled.filter((x) => x.at > this.now);
    for (const x of due) x.run();
    for (const n of this.nodes.values()) {
      if (!n.running || n.frozenUntil > this.now) continue;
      // As in libuv: expired timers run before pending I/O is read.
      if (n.busyUntil <= this.now && n.deadline !== undefined && n.deadline <= this.now) {
        n.deadline = undefined;
        this.apply(n, n.engine.tick(this.now));
      }
      // Input waits while the loop is busy (it stays queued in the socket).
      while (n.busyUntil <= this.now) {
        const i = n.inbox.findIndex((m) => m.at <= this.now);
        if (i < 0) break;
        const [m] = n.inbox.splice(i, 1);
        // As VipaNode: a routine heartbeat keeps the timer planned before (it fires early, then re-plans).
        const effects = n.engine.receive(m!.message, this.now);
        if (n.engine.decided) this.apply(n, effects);
      }
      if (n.nextHeartbeat <= this.now) {
        this.broadcast(n, this.heartbeat(n, 'heartbeat'));
        n.nextHeartbeat = this.now + this.intervalMs;
      }
    }
    this.checkDoubleHolds();
  }

  private heartbeat(n: SimNode, kind: 'heartbeat' | 'leave'): PeerMessage {
    return { kind, from: n.id, incarnation: n.incarnation, health: n.engine.reportedHealth(), intervalMs: this.intervalMs, groups: n.engine.reportedGroups(), digestMatches: n.digestMatches };
  }

  private broadcast(from: SimNode, message: PeerMessage, only?: string): void {
    for (const to of this.nodes.values()) {
      if (to.id === from.id || (only !== undefined && to.id !== only)) continue;
      if (!to.running || this.blocked.has([from.id, to.id].sort().join('|'))) continue;
      to.inbox.push({ at: this.now + this.latencyMs, message });
    }
  }

  private apply(n: SimNode, effects: Effect[]): void {
    let busyMs = 0;
    for (const effect of effects) {
      if (effect.type === 'acquire') busyMs += this.acquireCostMs.get(n.id) ?? 0;
      this.effects.push({ node: n.id, at: this.now, effect });
      switch (effect.type) {
        case 'acquire':
        case 'refresh-lease': {
          const list = this.holdings.get(effect.group) ?? [];
          const mine = list.find((h) => h.node === n.id);
          if (mine) mine.leaseUntil = this.now + this.leaseMs;
          else if (effect.type === 'acquire') list.push({ node: n.id, leaseUntil: this.now + this.leaseMs });
          this.holdings.set(effect.group, list);
          break;
        }
        case 'release':
          this.holdings.set(effect.group, (this.holdings.get(effect.group) ?? []).filter((h) => h.node !== n.id));
          break;
        case 'send-status':
          this.broadcast(n, this.heartbeat(n, 'heartbeat'));
          break;
        case 'send-leave':
          this.broadcast(n, this.heartbeat(n, 'leave'));
          n.running = false;
          break;
        case 'send-release':
          this.broadcast(n, { kind: 'release', from: n.id, group: effect.group, target: effect.target, pinned: effect.pinned, digestMatches: n.digestMatches });
          break;
        case 'send-move-request':
          this.broadcast(n, { kind: 'move-request', from: n.id, group: effect.group, target: effect.target, digestMatches: n.digestMatches }, effect.holder);
          break;
        case 'event':
          this.events.push({ node: n.id, event: effect.event });
          break;
        case 'announce':
          break;
        case 'probe-holder': {
          // Another host whose kernel holds the group answers, one round trip later.
          const group = effect.group;
          const answers = (this.holdings.get(group) ?? []).some((h) => h.node !== n.id && !this.hostsDown.has(h.node) && !this.blocked.has([h.node, n.id].sort().join('|')));
          if (answers) {
            this.scheduled.push({
              at: this.now + 2 * this.latencyMs,
              run: () => {
                const stillHeld = (this.holdings.get(group) ?? []).some((h) => h.node !== n.id);
                if (n.running && n.frozenUntil <= this.now && stillHeld) this.apply(n, n.engine.holderAnswered(group, this.now));
              },
            });
          }
          break;
        }
      }
    }
    if (busyMs > 0) n.busyUntil = Math.max(n.busyUntil, this.now + busyMs);
    n.deadline = n.running ? n.engine.nextDeadline(this.now + busyMs) : undefined;
  }

  private expireLeases(): void {
    for (const [g, list] of this.holdings) this.holdings.set(g, list.filter((h) => h.leaseUntil > this.now));
  }

  /**
   * Two holders at once are allowed only during a make-before-break handoff
   * (the old holder is 'handing-off'); those instants go to handoffOverlaps,
   * every other one to doubleHolds. Partitions are exempt.
   */
  private checkDoubleHolds(): void {
    if (this.blocked.size > 0) return;
    for (const [group, list] of this.holdings) {
      if (list.length < 2) continue;
      const handingOff = list.filter((h) => this.nodes.get(h.node)?.running && this.nodes.get(h.node)!.engine.groupState(group) === 'handing-off');
      if (list.length - handingOff.length <= 1 && handingOff.length > 0) this.handoffOverlaps.push({ at: this.now, group, nodes: list.map((h) => h.node) });
      else this.doubleHolds.push({ at: this.now, group, nodes: list.map((h) => h.node) });
    }
  }

  /** Instants with two holders because a handoff was completing (see checkDoubleHolds). */
  readonly handoffOverlaps: { at: number; group: number; nodes: string[] }[] = [];

  /** Longest stretch of consecutive handoff-overlap instants (ms). */
  longestHandoffOverlap(): number {
    let longest = 0;
    let start: number | undefined;
    let last: number | undefined;
    for (const o of this.handoffOverlaps) {
      if (last === undefined || o.at - last > 1) start = o.at;
      last = o.at;
      longest = Math.max(longest, o.at - start!);
    }
    return longest;
  }

  /** Transitions of one node, as "from>to:reason". */
  transitions(id: string, group = 0): string[] {
    return this.events.flatMap(({ node, event }) => (node === id && event.type === 'transition' && event.group === group ? [`${event.from}>${event.to}:${event.reason}`] : []));
  }

  eventsOf(type: EngineEvent['type']): { node: string; event: EngineEvent }[] {
    return this.events.filter((e) => e.event.type === type);
  }
}

/** Three nodes: a is home, b rank 200, c rank 100; 10 ms heartbeats, 3 misses. */
export function threeNodeConfig(overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    nodes: [
      { id: 'a', address: '198.51.100.1' },
      { id: 'b', address: '198.51.100.2' },
      { id: 'c', address: '198.51.100.3' },
    ],
    groups: [
      {
        name: 'web',
        addresses: [{ address: '198.51.100.100/24', interface: 'eth0' }, { address: '2001:db8::100/64', interface: 'eth0' }],
        home: 'a',
        backups: [{ node: 'b', rank: 200 }, { node: 'c', rank: 100 }],
      },
    ],
    timers: { heartbeatIntervalMs: 10, missCount: 3, leaseSeconds: 2 },
    ...overrides,
  };
}
