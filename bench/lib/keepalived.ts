/**
 * keepalived (the Debian package) on the holder hosts of a {@link BenchLan},
 * as the failover suite's reference: VRRPv3, one instance per address
 * family (VRRPv3 carries one family per instance: V4 for the IPv4 address,
 * V6 for the IPv6 one, both with the same priorities and timers), multicast
 * adverts on the bridge, preemption on (keepalived's default) with no
 * preempt delay, the home node started with `state MASTER`.
 *
 * Each daemon runs `keepalived -n -l -P -f CONF -p PIDFILE -r VRRPPIDFILE`
 * in its own temp dir: foreground, logging to the console (stderr, read by
 * the bench), VRRP subsystem only. Priorities: the home 150, backups 100,
 * 90, ... A `track_file` per node (weight 1) holds a number added to its
 * priority: the bench's way to move the address (keepalived has no operator
 * move): writing -100 to the holder's file drops it below the next node.
 *
 * Many addresses (scale runs): the first address goes in virtual_ipaddress,
 * the rest in virtual_ipaddress_excluded (keepalived's advice for large sets:
 * a VRRP advert carries at most 255 addresses; excluded ones are still added,
 * removed and announced, only not listed in the adverts).
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchLan } from './failover-lan.js';
import { spawnGuarded, waitForExit } from './guarded-spawn.js';
import type { HolderChange, LogMark } from './vipa-cluster.js';

export interface KeepalivedClusterOptions {
  lan: BenchLan;
  /** Members, home first. */
  nodes: string[];
  /** advert_int in ms (keepalived takes seconds with centisecond resolution: 10 ms minimum). */
  intervalMs: number;
  /** Addresses of the IPv4 instance (CIDR); empty = no IPv4 instance. */
  addresses4: string[];
  /** Addresses of the IPv6 instance (CIDR); empty = no IPv6 instance. */
  addresses6: string[];
}

interface Daemon {
  id: string;
  process: ChildProcess | undefined;
  /** Console lines with the bench's receipt time. */
  log: string[];
  conf: string;
  pidFile: string;
  vrrpPidFile: string;
  priorityFile: string;
}

const STATE = /\((V[46])\) Entering (MASTER|BACKUP|FAULT) STATE/;

/** `keepalived -v`, first line (e.g. "Keepalived v2.2.7 (01/16,2022)"); undefined when it is not installed. */
export function keepalivedVersion(): string | undefined {
  // keepalived prints its version on stderr.
  const r = spawnSync('keepalived', ['-v'], { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.startsWith('Keepalived'))?.trim();
}

export class KeepalivedCluster {
  readonly bench: BenchLan;
  readonly intervalMs: number;
  readonly nodes: string[];
  readonly dir: string;
  readonly daemons = new Map<string, Daemon>();
  readonly addresses: string[];
  private readonly instances: string[];

  private constructor(o: KeepalivedClusterOptions) {
    if (o.intervalMs < 10 || o.intervalMs % 10 !== 0) throw new RangeError(`keepalived advert_int is in centiseconds, ≥ 10 ms; got ${o.intervalMs} ms`);
    this.bench = o.lan;
    this.intervalMs = o.intervalMs;
    this.nodes = o.nodes;
    this.addresses = [...o.addresses4, ...o.addresses6];
    this.instances = [...(o.addresses4.length ? ['V4'] : []), ...(o.addresses6.length ? ['V6'] : [])];
    this.dir = mkdtempSync(join(tmpdir(), 'keepalived-bench-'));
    o.nodes.forEach((id, i) => {
      const d: Daemon = {
        id,
        process: undefined,
        log: [],
        conf: join(this.dir, `${id}.conf`),
        pidFile: join(this.dir, `${id}.pid`),
        vrrpPidFile: join(this.dir, `${id}.vrrp.pid`),
        priorityFile: join(this.dir, `${id}.priority`),
      };
      writeFileSync(d.priorityFile, '0\n');
      writeFileSync(d.conf, this.config(id, i === 0 ? 150 : 100 - 10 * (i - 1), i === 0, d.priorityFile, o));
      this.daemons.set(id, d);
    });
  }

  private config(id: string, priority: number, home: boolean, priorityFile: string, o: KeepalivedClusterOptions): string {
    const advert = (o.intervalMs / 1000).toFixed(2);
    const instance = (name: string, vrid: number, addresses: string[]) => {
      const [first, ...rest] = addresses;
      return [
        `vrrp_instance ${name} {`,
        `  state ${home ? 'MASTER' : 'BACKUP'}`,
        '  interface eth0',
        `  virtual_router_id ${vrid}`,
        `  priority ${priority}`,
        `  advert_int ${advert}`,
        '  track_file {',
        '    prio weight 1',
        '  }',
        '  virtual_ipaddress {',
        `    ${first}`,
        '  }',
        ...(rest.length ? ['  virtual_ipaddress_excluded {', ...rest.map((a) => `    ${a}`), '  }'] : []),
        '}',
      ].join('\n');
    };
    return [
      `# vipa bench: node ${id}, written by bench/lib/keepalived.ts`,
      'global_defs {',
      `  router_id ${id}`,
      '  vrrp_version 3',
      '}',
      'track_file prio {',
      `  file ${priorityFile}`,
      '}',
      ...(o.addresses4.length ? [instance('V4', 51, o.addresses4)] : []),
      ...(o.addresses6.length ? [instance('V6', 52, o.addresses6)] : []),
      '',
    ].join('\n');
  }

  /** Starts every daemon (home first) and waits until the home is master of every instance. */
  static async create(o: KeepalivedClusterOptions): Promise<KeepalivedCluster> {
    const cluster = new KeepalivedCluster(o);
    try {
      for (const id of o.nodes) await cluster.start(id);
      await cluster.waitForMaster(o.nodes[0]!, 10_000 + 10 * o.intervalMs);
      return cluster;
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
  }

  /** Starts (or restarts) `id`; resolves once its VRRP child has started both instances. */
  async start(id: string): Promise<void> {
    const d = this.daemons.get(id)!;
    rmSync(d.vrrpPidFile, { force: true });
    rmSync(d.pidFile, { force: true });
    const child = spawnGuarded(this.bench.host(id), 'keepalived', ['-n', '-l', '-P', '-f', d.conf, '-p', d.pidFile, '-r', d.vrrpPidFile]);
    d.process = child;
    let partial = '';
    const onData = (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      d.log.push(...lines);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const mark = d.log.length;
    const deadline = performance.now() + 10_000;
    // Up when every instance has entered a state (BACKUP at init, or MASTER).
    for (;;) {
      const states = new Set(d.log.slice(mark).map((l) => STATE.exec(l)?.[1]).filter(Boolean));
      if (this.instances.every((i) => states.has(i)) && existsSync(d.vrrpPidFile)) return;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.bench.label}: keepalived on ${id} exited: ${d.log.slice(-5).join(' | ')}`);
      if (performance.now() > deadline) throw new Error(`${this.bench.label}: keepalived on ${id} did not start within 10 s: ${d.log.slice(-5).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The last state each instance of `id` entered, from its log. */
  states(id: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const l of this.daemons.get(id)!.log) {
      const m = STATE.exec(l);
      if (m) out.set(m[1]!, m[2]!);
    }
    return out;
  }

  async waitForMaster(id: string, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!this.instances.every((i) => this.states(id).get(i) === 'MASTER')) {
      if (performance.now() > deadline) throw new Error(`${this.bench.label}: keepalived on ${id} is not master after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pids(id: string): { parent: number | undefined; vrrp: number | undefined } {
    const d = this.daemons.get(id)!;
    const live = d.process && d.process.exitCode === null && d.process.signalCode === null;
    let vrrp: number | undefined;
    try {
      vrrp = Number(readFileSync(d.vrrpPidFile, 'utf8').trim()) || undefined;
    } catch {
      vrrp = undefined;
    }
    return { parent: live ? d.process!.pid : undefined, vrrp };
  }

  /** The daemon's processes (parent and VRRP child), for CPU accounting. */
  processIds(id: string): number[] {
    const { parent, vrrp } = this.pids(id);
    return [parent, vrrp].filter((p): p is number => p !== undefined);
  }

  /**
   * SIGKILL to keepalived, parent and VRRP child: the parent respawns a dead
   * child, so it is stopped first (SIGSTOP), then the child killed, then the
   * parent. Nothing runs keepalived's shutdown: its addresses stay.
   */
  kill(id: string): void {
    const { parent, vrrp } = this.pids(id);
    if (parent) process.kill(parent, 'SIGSTOP');
    if (vrrp) {
      try {
        process.kill(vrrp, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (parent) process.kill(parent, 'SIGKILL');
  }

  /** SIGTERM: keepalived's graceful stop (priority-0 adverts, addresses removed); waits for the exit. */
  async terminate(id: string, ms = 5000): Promise<void> {
    const p = this.daemons.get(id)!.process!;
    p.kill('SIGTERM');
    if (!(await waitForExit(p, ms))) throw new Error(`${this.bench.label}: keepalived on ${id} did not exit within ${ms} ms of SIGTERM`);
  }

  async reap(id: string, ms = 5000): Promise<void> {
    const p = this.daemons.get(id)?.process;
    if (p && !(await waitForExit(p, ms))) throw new Error(`${this.bench.label}: keepalived on ${id} still runs ${ms} ms after SIGKILL`);
    // The VRRP child is not our child: wait until it is gone too.
    const vrrp = this.pids(id).vrrp;
    const deadline = performance.now() + ms;
    while (vrrp && existsSync(`/proc/${vrrp}`) && !readFileSync(`/proc/${vrrp}/stat`, 'utf8').includes(') Z')) {
      if (performance.now() > deadline) throw new Error(`${this.bench.label}: keepalived VRRP child ${vrrp} on ${id} survives`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Adds `offset` to `id`'s priority (track_file, weight 1); keepalived sees the change through inotify. */
  setPriorityOffset(id: string, offset: number): void {
    writeFileSync(this.daemons.get(id)!.priorityFile, `${offset}\n`);
  }

  mark(): LogMark {
    return new Map([...this.daemons.values()].map((d) => [d.id, d.log.length]));
  }

  /** State changes logged since `mark`, as holder changes (to 'MASTER' = became holder). */
  transitionsSince(mark: LogMark): HolderChange[] {
    const out: HolderChange[] = [];
    for (const d of this.daemons.values()) {
      for (const l of d.log.slice(mark.get(d.id) ?? 0)) {
        const m = STATE.exec(l);
        if (m) out.push({ node: d.id, unit: m[1]!, from: '', to: m[2]!, reason: l.includes('(init)') ? 'init' : '' });
      }
    }
    return out;
  }

  /** Stops every daemon (SIGTERM, SIGKILL after 3 s) and removes the temp dir. */
  async destroy(): Promise<void> {
    for (const d of this.daemons.values()) {
      const p = d.process;
      if (p && p.exitCode === null && p.signalCode === null) {
        p.kill('SIGCONT');
        p.kill('SIGTERM');
        if (!(await waitForExit(p, 3000))) this.kill(d.id);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
