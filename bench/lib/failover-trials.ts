/**
 * The failover scenarios of the failover suite, run the same way against
 * vipa and keepalived (a {@link Contender} hides which one runs):
 *
 * - host-dies: the holder's bridge port goes down (from then on nothing it
 *   sends reaches anyone, as when a host loses power), then its daemon gets
 *   SIGKILL;
 * - process-dies: SIGKILL to the holder's daemon, its host stays up;
 * - graceful: SIGTERM to the holder's daemon;
 * - move: an operator moves the address to the first backup, then back
 *   (vipa: `move` on the control socket; keepalived: the holder's priority
 *   lowered by 100 through its track_file, then restored);
 * - giveback: the home node returns (its daemon starts again after each of
 *   the first three) and takes the address back;
 * - baseline: nothing happens; the window is as long as a handoff trial's.
 *   Its "outage" (the longest gap between replies anyway) is the floor of
 *   the measurement on this machine: probes, replies and the processes
 *   sending them are scheduled like everything else.
 *
 * The home node (nodes[0]) holds the address before every trial. Each
 * trial's window starts when the bench acts and ends a settle time after
 * the client's probes get replies from another host; what the client saw in
 * it comes from lib/demo/analysis.ts. After each trial the bench checks that
 * exactly the expected node holds the addresses (read from the kernels); if
 * not, the trial is marked unsettled and the cluster is restarted from
 * scratch before the next one.
 */
import { monotonicMs } from '../../lib/demo/probe-wire.js';
import type { BenchLan } from './failover-lan.js';
import type { KeepalivedCluster } from './keepalived.js';
import { readCpu } from './proc-cpu.js';
import { NoGate, type QuietGate } from './quiet-gate.js';
import type { BenchVipaCluster, HolderChange, LogMark } from './vipa-cluster.js';

export type Tool = 'vipa' | 'keepalived';
export type Scenario = 'baseline' | 'host-dies' | 'process-dies' | 'graceful' | 'move' | 'giveback';

/** The operations the scenarios need, for either tool. */
export interface Contender {
  tool: Tool;
  intervalMs: number;
  lan: BenchLan;
  /** Home first, then backups by rank. */
  nodes: string[];
  /** The addresses that move (CIDR). */
  addresses: string[];
  /** The longest failure detection can take (ms), for time limits. */
  detectionMs: number;
  start(id: string): Promise<void>;
  kill(id: string): void;
  terminate(id: string): Promise<void>;
  reap(id: string): Promise<void>;
  move(to: string): Promise<void>;
  /** Resolves once `id` holds everything (as the tool itself reports it). */
  waitHolder(id: string, ms: number): Promise<void>;
  mark(): LogMark;
  transitionsSince(mark: LogMark): HolderChange[];
  /** What the daemons logged since `mark` that explains a trial, ms after `t0` (vipa only; see VipaCluster.timelineSince). */
  timelineSince?(mark: LogMark, t0: number): string[];
  /** Whether a logged change made its node a holder (a takeover, handoff, move, ...). */
  isAcquisition(change: HolderChange): boolean;
  processIds(id: string): number[];
  destroy(): Promise<void>;
  /** The cluster's temp dir (configs, keys, sockets). */
  dir: string;
  /** The vipa cluster itself (vipa only): its control socket for stalls. */
  vipa?: BenchVipaCluster;
}

export function vipaContender(c: BenchVipaCluster, lan: BenchLan, nodes: string[]): Contender {
  return {
    tool: 'vipa',
    intervalMs: c.intervalMs,
    lan,
    nodes,
    addresses: c.addresses,
    detectionMs: 3 * c.intervalMs,
    start: async (id) => void (await c.start(id)),
    kill: (id) => c.kill(id),
    terminate: (id) => c.terminate(id),
    reap: (id) => c.reap(id),
    // Asked on the target's socket: it asks the holder, which hands the group over.
    move: (to) => c.move(to, to),
    waitHolder: (id, ms) => c.waitForGroupHolder(id, ms),
    mark: () => c.mark(),
    transitionsSince: (m) => c.transitionsSince(m),
    timelineSince: (m, t0) => c.timelineSince(m, t0),
    // Into 'active' from a non-holding state ('verifying' → 'active' is the same holder re-asserting).
    isAcquisition: (t) => t.to === 'active' && t.from !== 'verifying' && t.from !== 'draining',
    processIds: (id) => [c.pid(id)].filter((p): p is number => p !== undefined),
    destroy: () => c.destroy(),
    dir: c.dir,
    vipa: c,
  };
}

export function keepalivedContender(k: KeepalivedCluster, lan: BenchLan): Contender {
  const home = k.nodes[0]!;
  return {
    tool: 'keepalived',
    intervalMs: k.intervalMs,
    lan,
    nodes: k.nodes,
    addresses: k.addresses,
    // VRRPv3 Master_Down_Interval of the first backup (priority 100): 3 × interval + skew.
    detectionMs: 3 * k.intervalMs + ((256 - 100) * k.intervalMs) / 256,
    start: (id) => k.start(id),
    kill: (id) => k.kill(id),
    terminate: (id) => k.terminate(id),
    reap: (id) => k.reap(id),
    move: async (to) => k.setPriorityOffset(home, to === home ? 0 : -100),
    waitHolder: (id, ms) => k.waitForMaster(id, ms),
    mark: () => k.mark(),
    transitionsSince: (m) => k.transitionsSince(m),
    isAcquisition: (t) => t.to === 'MASTER',
    processIds: (id) => k.processIds(id),
    destroy: () => k.destroy(),
    dir: k.dir,
  };
}

/** What the client saw in one trial, for one address family. */
export interface TrialResult {
  tool: Tool;
  intervalMs: number;
  scenario: Scenario;
  family: 4 | 6;
  /** Block (fast phase) or shard (slow phase) the trial ran in. */
  block: string;
  /** Longest time without a reply, from the last reply before the action (ms). */
  outageMs: number;
  /** Time two MACs answered for the address in the window (ms). */
  twoMacMs: number;
  /** Time the prober itself was stalled in the window (ms): a hole in the measurement. */
  proberStallMs: number;
  holderAfter: string | undefined;
  /** Holder acquisitions other than the one expected (wrong node, or twice), per trial (same in both families' records). */
  unexpectedTakeovers: number;
  /** process-dies / host-dies: the dead holder still had an address ~200 ms after its process died. */
  leftover?: boolean;
  /** The client had no reply from the expected host within the time limit. */
  timedOut: boolean;
  /** After the trial, holders (read from the kernels) were not exactly the expected node. */
  unsettled: boolean;
}

/** Something wrong that a trial ran into, with evidence, for the report. */
export interface Anomaly {
  tool: Tool;
  intervalMs: number;
  scenario: Scenario;
  block: string;
  what: string;
  /** Holder changes logged during the trial. */
  changes: string[];
  /** The daemons' events during the trial, ms after it began (vipa; in the JSON data only). */
  timeline?: string[];
}

export type Fault = 'host-dies' | 'process-dies' | 'graceful';

export interface RoundOptions {
  /** Rounds of the faults (each followed by a giveback). */
  rounds: number;
  /** Default: host-dies, process-dies, graceful. */
  faults?: Fault[];
  /** A move cycle (there and back) every this many rounds; 0 = none. */
  moveEvery: number;
  block: string;
  log: (m: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long after the first reply from the new holder a trial keeps watching: flaps and two-MAC windows show up in it. */
export function settleMs(intervalMs: number): number {
  return Math.min(300, Math.max(30, 3 * intervalMs));
}

/** Runs the scenarios against one contender and appends the results. */
export class TrialRunner {
  readonly results: TrialResult[] = [];
  readonly anomalies: Anomaly[] = [];
  /** Trials whose cluster had to be restarted, and restarts that failed. */
  recoveries = 0;

  /** `gate`: shared by clusters that run at once (see quiet-gate.ts); none by default. */
  constructor(
    private readonly c: Contender,
    private readonly gate: QuietGate = new NoGate(),
  ) {}

  async rounds(o: RoundOptions): Promise<void> {
    for (let r = 0; r < o.rounds; r++) {
      await this.baseline(o.block);
      for (const scenario of o.faults ?? (['host-dies', 'process-dies', 'graceful'] as const)) await this.faultCycle(scenario, o.block);
      if (o.moveEvery > 0 && r % o.moveEvery === 0) await this.moveCycle(o.block);
      o.log(`    ${this.c.lan.label} ${o.block}: round ${r + 1}/${o.rounds} done`);
    }
  }

  private get home(): string {
    return this.c.nodes[0]!;
  }

  private get backup(): string {
    return this.c.nodes[1]!;
  }

  private faultTimeoutMs(): number {
    // Detection, twice, plus room for a client stuck on a stale neighbour entry (seconds) and a loaded machine.
    return 2 * this.c.detectionMs + 8000;
  }

  /** The trial's holder acquisitions beyond the one expected of `expected`, per unit (group / VRRP instance). */
  private unexpected(changes: HolderChange[], expected: string): number {
    const acquisitions = changes.filter((t) => this.c.isAcquisition(t));
    let n = 0;
    const units = new Set(acquisitions.map((t) => t.unit));
    for (const unit of units) {
      const mine = acquisitions.filter((t) => t.unit === unit);
      n += mine.filter((t) => t.node !== expected).length;
      n += Math.max(0, mine.filter((t) => t.node === expected).length - 1);
    }
    return n;
  }

  /** Records a trial that went wrong: what, the holder changes and (vipa) the daemons' timeline since `mark`, ms after `t0`. */
  private anomaly(scenario: Scenario, block: string, what: string, changes: HolderChange[], mark: LogMark, t0: number): void {
    const { c } = this;
    this.anomalies.push({ tool: c.tool, intervalMs: c.intervalMs, scenario, block, what, changes: this.describe(changes), ...(c.timelineSince ? { timeline: c.timelineSince(mark, t0) } : {}) });
  }

  /** `id` as a rebooted host has it: without the addresses (a killed keepalived leaves them), with an empty neighbour cache. */
  private rebooted(id: string): void {
    this.c.lan.deleteAddresses(id, this.c.addresses);
    this.c.lan.forgetNeighbours(id);
  }

  private describe(changes: HolderChange[]): string[] {
    return changes.map((t) => `${t.node} ${t.unit}: ${t.from ? `${t.from} → ` : ''}${t.to}${t.reason ? ` (${t.reason})` : ''}`);
  }

  /** Who holds any of the addresses now, read from the kernels. */
  holders(): string[] {
    return this.c.nodes.filter((id) => this.c.lan.heldAddresses(id, this.c.addresses).length > 0);
  }

  /** Exactly `expected` holds every address. */
  private settled(expected: string): boolean {
    const h = this.holders();
    return h.length === 1 && h[0] === expected && this.c.lan.heldAddresses(expected, this.c.addresses).length === this.c.addresses.length;
  }

  private async record(scenario: Scenario, block: string, t0: number, end: number, extra: Pick<TrialResult, 'unexpectedTakeovers' | 'timedOut' | 'unsettled'> & { leftover?: boolean }): Promise<void> {
    await this.c.lan.caughtUp(end);
    for (const p of this.c.lan.probers) {
      const w = p.window(scenario, t0, end);
      this.results.push({
        tool: this.c.tool,
        intervalMs: this.c.intervalMs,
        scenario,
        family: p.family,
        block,
        outageMs: w.outageMs,
        twoMacMs: w.twoMacMs,
        proberStallMs: w.proberStallMs,
        holderAfter: w.holderAfter,
        ...extra,
      });
    }
  }

  private trim(before: number): void {
    for (const p of this.c.lan.probers) p.trim(before);
  }

  /** A window with no fault, as long as a handoff trial's: the measurement's own floor; every holder acquisition in it is unexpected, and so is a second MAC answering. */
  private async baseline(block: string): Promise<void> {
    const { c, home } = this;
    const mark = c.mark();
    const { t0, end } = await this.gate.shortTrial(async () => {
      const t0 = monotonicMs();
      await sleep(settleMs(c.intervalMs) + 10);
      return { t0, end: monotonicMs() };
    });
    const changes = c.transitionsSince(mark);
    const unexpectedTakeovers = changes.filter((t) => c.isAcquisition(t)).length;
    const unsettled = !this.settled(home);
    const first = this.results.length;
    await this.record('baseline', block, t0, end, { unexpectedTakeovers, timedOut: false, unsettled });
    const twoMac = this.results.slice(first).filter((r) => r.twoMacMs > 0);
    if (unexpectedTakeovers > 0 || unsettled || twoMac.length > 0) {
      const macs = twoMac.map((r) => `two MACs ${r.twoMacMs.toFixed(2)} ms (IPv${r.family})`).join(', ');
      this.anomaly('baseline', block, `holders after: ${this.holders().join(',') || 'none'}; unexpected takeovers: ${unexpectedTakeovers}${macs ? `; ${macs}` : ''}`, changes, mark, t0);
      if (unexpectedTakeovers > 0 || unsettled) await this.recover();
    }
  }

  /** A fault, then the home's return (a giveback trial). */
  private async faultCycle(scenario: Fault, block: string): Promise<void> {
    const { c, home } = this;
    const mark = c.mark();
    let stopping: Promise<void> | undefined;
    const window = async (act: () => void) => {
      const t0 = monotonicMs();
      act();
      let timedOut = false;
      try {
        await c.lan.waitForResponder((r) => r !== home, t0, this.faultTimeoutMs());
      } catch {
        timedOut = true;
      }
      await sleep(settleMs(c.intervalMs));
      return { t0, end: monotonicMs(), timedOut };
    };
    let t0: number;
    let end: number;
    let timedOut: boolean;
    if (scenario === 'host-dies') {
      // A long window (detection): only the kill and the exit after it keep the other clusters' short trials out.
      const { trial } = await this.gate.heavyOp(() => ({
        trial: window(() => {
          c.lan.linkDown(home);
          c.kill(home);
        }),
      }), 30);
      ({ t0, end, timedOut } = await trial);
    } else {
      ({ t0, end, timedOut } = await this.gate.shortTrial(() =>
        window(() => {
          if (scenario === 'process-dies') c.kill(home);
          else stopping = c.terminate(home);
        }),
      ));
    }
    await this.gate.heavyOp(() => stopping ?? c.reap(home));
    // The dead holder's addresses: vipa's reaper deletes them when the daemon dies; keepalived leaves them.
    let left = c.lan.heldAddresses(home, c.addresses).length;
    for (let i = 0; i < 20 && left > 0 && scenario !== 'graceful'; i++) {
      await sleep(10);
      left = c.lan.heldAddresses(home, c.addresses).length;
    }
    const changes = c.transitionsSince(mark);
    const unexpectedTakeovers = this.unexpected(changes, this.backup);
    const holders = this.holders().filter((h) => h !== home);
    const unsettled = !(holders.length === 1 && holders[0] === this.backup);
    await this.record(scenario, block, t0, end, { unexpectedTakeovers, timedOut, unsettled, ...(scenario === 'graceful' ? {} : { leftover: left > 0 }) });
    if (timedOut || unsettled || unexpectedTakeovers > 0) {
      this.anomaly(scenario, block, `${timedOut ? 'no reply from a new holder in time; ' : ''}holders after: ${holders.join(',') || 'none'}; unexpected takeovers: ${unexpectedTakeovers}`, changes, mark, t0);
    }

    // The home returns, as a rebooted host.
    await this.gate.heavyOp(() => {
      this.rebooted(home);
      if (scenario === 'host-dies') c.lan.linkUp(home);
    });
    await this.givebackTrial(block, end);
  }

  private async givebackTrial(block: string, previousEnd: number): Promise<void> {
    const { c, home } = this;
    const mark = c.mark();
    const r0 = monotonicMs();
    let timedOut = false;
    try {
      await this.gate.heavyOp(() => c.start(home));
      await c.lan.waitForResponder(home, r0, this.faultTimeoutMs());
    } catch {
      timedOut = true;
    }
    await sleep(settleMs(c.intervalMs));
    const end = monotonicMs();
    const changes = c.transitionsSince(mark);
    const unexpectedTakeovers = this.unexpected(changes, home);
    const unsettled = !this.settled(home);
    await this.record('giveback', block, r0, end, { unexpectedTakeovers, timedOut, unsettled });
    this.trim(Math.min(previousEnd, r0) - 1000);
    if (timedOut || unsettled || unexpectedTakeovers > 0) {
      this.anomaly('giveback', block, `${timedOut ? 'home not answering in time; ' : ''}holders after: ${this.holders().join(',') || 'none'}; unexpected takeovers: ${unexpectedTakeovers}`, changes, mark, r0);
    }
    if (unsettled || timedOut) await this.recover();
  }

  /** Moves the address to the first backup and back: two move trials. */
  private async moveCycle(block: string): Promise<void> {
    for (const target of [this.backup, this.home]) {
      const { c } = this;
      const mark = c.mark();
      const { t0, end, timedOut } = await this.gate.shortTrial(async () => {
        const t0 = monotonicMs();
        let timedOut = false;
        try {
          await c.move(target);
          await c.lan.waitForResponder(target, t0, this.faultTimeoutMs());
        } catch {
          timedOut = true;
        }
        await sleep(settleMs(c.intervalMs));
        return { t0, end: monotonicMs(), timedOut };
      });
      const changes = c.transitionsSince(mark);
      const unexpectedTakeovers = this.unexpected(changes, target);
      const unsettled = !this.settled(target);
      await this.record('move', block, t0, end, { unexpectedTakeovers, timedOut, unsettled });
      this.trim(t0 - 1000);
      if (timedOut || unsettled || unexpectedTakeovers > 0) {
        this.anomaly('move', block, `${timedOut ? `${target} not answering in time; ` : ''}holders after: ${this.holders().join(',') || 'none'}; unexpected takeovers: ${unexpectedTakeovers}`, changes, mark, t0);
        await this.recover();
        return;
      }
    }
  }

  /** Back to the starting state from anywhere: every daemon killed, addresses deleted, links up, daemons started, home holding. */
  async recover(): Promise<void> {
    await this.gate.heavyOp(() => this.restartAll());
  }

  private async restartAll(): Promise<void> {
    const { c, home } = this;
    this.recoveries++;
    for (const id of c.nodes) {
      try {
        c.kill(id);
      } catch {
        // not running
      }
    }
    for (const id of c.nodes) {
      await c.reap(id).catch(() => undefined);
      this.rebooted(id);
      c.lan.linkUp(id);
    }
    if (c.tool === 'keepalived') await c.move(home); // priority offset back to 0
    for (const id of c.nodes) await c.start(id);
    await c.waitHolder(home, 10_000 + 10 * c.detectionMs);
    await c.lan.waitForResponder(home, monotonicMs(), 10_000);
  }
}

/** CPU used by each node's daemon over `windowMs` of steady state, in ms of CPU per second. */
export async function measureCpu(c: Contender, windowMs: number): Promise<Map<string, number>> {
  const before = new Map(c.nodes.map((id) => [id, readCpu(c.processIds(id))]));
  const t0 = performance.now();
  await sleep(windowMs);
  const seconds = (performance.now() - t0) / 1000;
  return new Map(c.nodes.map((id) => [id, (readCpu(c.processIds(id)).schedNs - before.get(id)!.schedNs) / 1e6 / seconds]));
}
