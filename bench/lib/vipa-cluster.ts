/**
 * A vipa cluster for the failover suite: real `vipa run` daemons (the
 * compiled CLI, dist/cli/main.js) on the holder hosts of a {@link BenchLan},
 * built on lib/demo/cluster.ts (the demo's and the tests' cluster harness)
 * with the bench's config: one group holding any set of addresses (both
 * families at once, or a thousand for the scale runs), heartbeats over IPv4,
 * home = the first node, backups ranked in order.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../lib/cli/control.js';
import { TestCluster } from '../../lib/demo/cluster.js';
import { monotonicMs } from '../../lib/demo/probe-wire.js';
import type { BenchLan } from './failover-lan.js';
import { waitForExit } from './guarded-spawn.js';

/** A change of holder seen in a daemon's log. */
export interface HolderChange {
  /** The node that logged it. */
  node: string;
  /** The unit that changed hands: the group name here, the VRRP instance for keepalived. */
  unit: string;
  from: string;
  to: string;
  reason: string;
}

/** Where each daemon's log stood at some moment (line counts). */
export type LogMark = Map<string, number>;

/** Heartbeat-derived timers of a cluster at `intervalMs` (missCount 3). */
export function vipaTimers(intervalMs: number): { heartbeatIntervalMs: number; missCount: number; leaseSeconds: number } {
  // The lease must outlast detection (config.ts refuses otherwise): 3 s, or one second more than 3 intervals.
  return { heartbeatIntervalMs: intervalMs, missCount: 3, leaseSeconds: Math.max(3, Math.ceil((3 * intervalMs) / 1000) + 1) };
}

export interface BenchVipaClusterOptions {
  lan: BenchLan;
  /** Members, home first, then backups by descending rank. */
  nodes: string[];
  intervalMs: number;
  /** The group's addresses (CIDR, on eth0). */
  addresses: string[];
}

const TRANSITION = /^(\S+): (\w+) → (\w+) \(([\w-]+)\)$/;

export class BenchVipaCluster extends TestCluster {
  readonly bench: BenchLan;
  readonly intervalMs: number;
  readonly addresses: string[];
  private readonly clusterBlock: Record<string, unknown>;

  private constructor(o: BenchVipaClusterOptions, dir: string) {
    super(o.lan.lan, dir, { family: 4, nodes: o.nodes, heartbeatIntervalMs: o.intervalMs });
    this.bench = o.lan;
    this.intervalMs = o.intervalMs;
    this.addresses = o.addresses;
    this.clusterBlock = {
      nodes: o.nodes.map((id) => ({ id, address: o.lan.address4(id), port: 5405 })),
      groups: [
        {
          name: 'web',
          addresses: o.addresses.map((address) => ({ address, interface: 'eth0' })),
          home: o.nodes[0],
          // Ranks 200, 190, ...: distinct, so every node computes the same successor.
          backups: o.nodes.slice(1).map((node, i) => ({ node, rank: 200 - 10 * i })),
        },
      ],
      timers: vipaTimers(o.intervalMs),
      giveback: { mode: 'immediate' },
    };
  }

  /** Writes configs and key, starts every daemon (home first), waits until the home holds the group. */
  static async create(o: BenchVipaClusterOptions): Promise<BenchVipaCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'vipa-bench-'));
    writeFileSync(join(dir, 'key'), `${Buffer.alloc(32, 7).toString('hex')}\n`, { mode: 0o600 });
    const cluster = new BenchVipaCluster(o, dir);
    try {
      // All at once: each listens for its startup grace, then the home claims the group.
      await Promise.all(o.nodes.map((id) => cluster.start(id)));
      await cluster.waitForGroupHolder(o.nodes[0]!, 10_000 + 10 * o.intervalMs);
      return cluster;
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
  }

  /** The bench's cluster block replaces the harness's single-VIP one; JSON logs at debug level carry every transition and engine event. */
  override writeConfig(id: string, overrides: Record<string, unknown> = {}): string {
    return super.writeConfig(id, { cluster: this.clusterBlock, log: { format: 'json', level: 'debug' }, ...overrides });
  }

  /**
   * Stops every daemon (SIGTERM, SIGKILL after 3 s) and removes the temp dir,
   * but leaves the LAN: it belongs to the bench, which runs several clusters
   * in one LAN (TestCluster.destroy() would destroy the LAN too).
   */
  override async destroy(): Promise<void> {
    for (const d of this.daemons.values()) {
      const p = d.process;
      if (p && p.exitCode === null && p.signalCode === null) {
        p.kill('SIGCONT');
        p.kill('SIGTERM');
        if (!(await waitForExit(p, 3000))) p.kill('SIGKILL');
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Waits until `id` reports holding the group (control socket), at most `ms`. */
  async waitForGroupHolder(id: string, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      try {
        const s = await this.status(id);
        if (s.groups.every((g) => g.holder === id && (g.state === 'active' || g.state === 'verifying'))) return;
      } catch {
        // not answering yet
      }
      if (performance.now() > deadline) throw new Error(`${this.bench.label}: ${id} does not hold the group after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The current log length of every daemon. */
  mark(): LogMark {
    return new Map([...this.daemons.values()].map((d) => [d.id, d.log.length]));
  }

  /** Transitions every daemon logged since `mark`. */
  transitionsSince(mark: LogMark): HolderChange[] {
    const out: HolderChange[] = [];
    for (const line of this.linesSince(mark)) {
      const m = TRANSITION.exec(String(line.entry.msg ?? ''));
      if (m) out.push({ node: line.node, unit: m[1]!, from: m[2]!, to: m[3]!, reason: m[4]! });
    }
    return out;
  }

  /** Debug events (split-brain, late-timer, peer-down, ...) logged since `mark`, by message. */
  eventsSince(mark: LogMark): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { entry } of this.linesSince(mark)) {
      const msg = String(entry.msg ?? '');
      if (entry.level === 'debug' || entry.level === 'warn' || entry.level === 'error') counts.set(msg, (counts.get(msg) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * What the daemons logged since `mark` that explains a trial: transitions,
   * peers up and down (with how long they were silent), split brains,
   * deferred takeovers, late timers; one line each, ms after `t0`
   * ({@link monotonicMs}, as the trials time; the daemons' log times are wall-clock ms),
   * in time order, at most `max` lines.
   */
  timelineSince(mark: LogMark, t0: number, max = 60): string[] {
    const wallT0 = t0 + (Date.now() - monotonicMs());
    const out: { at: number; text: string }[] = [];
    for (const { node, entry } of this.linesSince(mark)) {
      const msg = String(entry.msg ?? '');
      const at = Date.parse(String(entry.time ?? '')) - wallT0;
      let detail: string | undefined;
      if (TRANSITION.test(msg)) detail = msg;
      else if (msg === 'peer-up') detail = `peer-up ${String(entry.peer)}`;
      else if (msg === 'peer-down') {
        const silent = typeof entry.lastHeardAt === 'number' && typeof entry.at === 'number' ? `, silent ${(entry.at - entry.lastHeardAt).toFixed(1)} ms` : '';
        detail = `peer-down ${String(entry.peer)} (${String(entry.reason)}${silent})`;
      } else if (msg === 'split-brain') detail = `split-brain ${JSON.stringify(entry.holders)} winner ${String(entry.winner)}`;
      else if (msg === 'takeover-deferred') detail = `takeover-deferred (holder ${String(entry.holder)})`;
      else if (msg === 'late-timer') detail = `late-timer ${Number(entry.lateMs).toFixed(1)} ms`;
      if (detail !== undefined && Number.isFinite(at)) out.push({ at, text: `${at >= 0 ? '+' : ''}${at.toFixed(0)} ${node} ${detail}` });
    }
    return out.sort((a, b) => a.at - b.at).slice(0, max).map((x) => x.text);
  }

  private *linesSince(mark: LogMark): Generator<{ node: string; entry: Record<string, unknown> }> {
    for (const d of this.daemons.values()) {
      for (const text of d.log.slice(mark.get(d.id) ?? 0)) {
        if (!text.startsWith('{')) continue;
        try {
          yield { node: d.id, entry: JSON.parse(text) as Record<string, unknown> };
        } catch {
          // a line split by the pipe: not a transition
        }
      }
    }
  }

  /** The daemon process's pid (nsenter execs node: the pid is the daemon's). */
  pid(id: string): number | undefined {
    const p = this.daemons.get(id)?.process;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  /** SIGKILL: the process dies, its host stays (vipa's reaper child then deletes its addresses). */
  kill(id: string): void {
    this.signal(id, 'SIGKILL');
  }

  /** SIGTERM and wait for the exit (bounded). */
  async terminate(id: string, ms = 5000): Promise<void> {
    this.signal(id, 'SIGTERM');
    const p = this.daemons.get(id)!.process!;
    if (!(await waitForExit(p, ms))) throw new Error(`${this.bench.label}: ${id} did not exit within ${ms} ms of SIGTERM`);
  }

  /** Waits for a killed daemon's exit (bounded). */
  async reap(id: string, ms = 5000): Promise<void> {
    const p = this.daemons.get(id)?.process;
    if (p && !(await waitForExit(p, ms))) throw new Error(`${this.bench.label}: ${id} still runs ${ms} ms after SIGKILL`);
  }

  /** Operator move of the group to `node`, asked through `via`'s control socket. */
  async move(node: string, via: string): Promise<void> {
    const reply = await controlRequest(this.daemons.get(via)!.socket, { cmd: 'move', target: 'web', node }, 2000);
    if (!reply.ok) throw new Error(`${this.bench.label}: move to ${node}: ${reply.error}`);
  }

  /** Busy-loops `id`'s JS thread for `ms` (VIPA_DEBUG_HOOKS=1); resolves when the daemon answers again. */
  async stall(id: string, ms: number): Promise<void> {
    const reply = await controlRequest(this.daemons.get(id)!.socket, { cmd: 'debug-stall', ms }, ms + 5000);
    if (!reply.ok) throw new Error(`${this.bench.label}: debug-stall: ${reply.error}`);
  }
}
