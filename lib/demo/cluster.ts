/**
 * A vipa cluster of real daemons, for the demo, the multi-process tests and
 * the bench: hosts a, b, c and
 * a client on one bridge (test/helpers/netns.ts), one `vipa run` process per
 * node inside its namespace, config files and keys in a temp dir. Faults are
 * injected from outside: signals, link down, nftables partitions on the
 * bridge.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../cli/control.js';
import type { VipaNodeStatus } from '../takeover/node.js';
import { createLan, type TestHost, type TestLan } from './lan.js';
import { ProberOutput } from './prober-lines.js';

/**
 * A compiled entry point: next to this file in dist/, or in dist/ itself
 * when this file runs from its TypeScript source (tests).
 */
export function demoScript(name: string): string {
  const here = join(__dirname, `${name}.js`);
  return existsSync(here) ? here : join(__dirname, '../../dist/demo', `${name}.js`);
}

const CLI = demoScript('../cli/main');
/** UDP port of the echo responders the prober talks to. */
export const PROBE_PORT = 7777;

/** Options of a test cluster. */
export interface TestClusterOptions {
  family: 4 | 6;
  nodes?: string[];
  heartbeatIntervalMs?: number;
  giveback?: { mode: 'immediate' } | { mode: 'manual' } | { mode: 'hold-down'; delayMs: number };
  leaseSeconds?: number;
  metricsPort?: number;
}

/** A running daemon. */
export interface TestDaemon {
  id: string;
  host: TestHost;
  process: ChildProcess | undefined;
  socket: string;
  configFile: string;
  log: string[];
  exit: Promise<number | null> | undefined;
}

/** The cluster: LAN, daemons, and helpers to observe and break it. */
export class TestCluster {
  readonly lan: TestLan;
  readonly dir: string;
  readonly vip: string;
  readonly vipCidr: string;
  readonly family: 4 | 6;
  readonly daemons = new Map<string, TestDaemon>();
  readonly options: Required<Omit<TestClusterOptions, 'metricsPort'>> & { metricsPort: number | undefined };

  constructor(lan: TestLan, dir: string, options: TestClusterOptions) {
    this.lan = lan;
    this.dir = dir;
    this.family = options.family;
    this.vip = options.family === 4 ? '198.51.100.100' : '2001:db8::100';
    this.vipCidr = options.family === 4 ? `${this.vip}/24` : `${this.vip}/64`;
    this.options = {
      family: options.family,
      nodes: options.nodes ?? ['a', 'b', 'c'],
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 10,
      giveback: options.giveback ?? { mode: 'immediate' },
      leaseSeconds: options.leaseSeconds ?? 2,
      metricsPort: options.metricsPort,
    };
  }

  /** Host address of node or client index i (1-based) in the test family. */
  hostAddress(i: number): string {
    return this.family === 4 ? `198.51.100.${i}` : `2001:db8::${i}`;
  }

  /** Writes the shared config with this node's name. */
  writeConfig(id: string, overrides: Record<string, unknown> = {}): string {
    const nodes = this.options.nodes;
    const file = join(this.dir, `${id}.json`);
    const config = {
      node: id,
      cluster: {
        nodes: nodes.map((n, i) => ({ id: n, address: this.hostAddress(i + 1), port: 5405 })),
        groups: [
          {
            name: 'web',
            addresses: [{ address: this.vipCidr, interface: 'eth0' }],
            home: nodes[0],
            backups: nodes.slice(1).map((n, i) => ({ node: n, rank: 200 - i * 50 })),
          },
        ],
        timers: { heartbeatIntervalMs: this.options.heartbeatIntervalMs, missCount: 3, leaseSeconds: this.options.leaseSeconds },
        giveback: this.options.giveback,
      },
      auth: { keyFile: join(this.dir, 'key') },
      log: { format: 'json', level: 'debug' },
      ...(this.options.metricsPort ? { metrics: { listen: `${this.family === 4 ? this.hostAddress(nodes.indexOf(id) + 1) : `[${this.hostAddress(nodes.indexOf(id) + 1)}]`}:${this.options.metricsPort}` } } : {}),
      ...overrides,
    };
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  }

  /** Starts (or restarts) the daemon of node `id`; resolves once its control socket answers. */
  async start(id: string): Promise<TestDaemon> {
    const host = this.lan.host(id);
    const existing = this.daemons.get(id);
    const daemon: TestDaemon = existing ?? { id, host, process: undefined, socket: join(this.dir, `${id}.sock`), configFile: this.writeConfig(id), log: [], exit: undefined };
    const child = host.spawn(process.execPath, [CLI, 'run', '--config', daemon.configFile, '--socket', daemon.socket]);
    daemon.process = child;
    daemon.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      daemon.log.push(...lines);
    });
    child.stderr!.on('data', (d: Buffer) => daemon.log.push(`stderr: ${d.toString().trim()}`));
    this.daemons.set(id, daemon);
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`daemon ${id} exited ${child.exitCode}: ${daemon.log.slice(-5).join('\n')}`);
      try {
        return (await controlRequest(daemon.socket, { cmd: 'status' }, 500)).ok;
      } catch {
        return false;
      }
    }, 10_000, `daemon ${id} to answer on its control socket`);
    return daemon;
  }

  /** The daemon's status through its control socket. */
  async status(id: string): Promise<VipaNodeStatus> {
    const reply = await controlRequest(this.daemons.get(id)!.socket, { cmd: 'status' });
    if (!reply.ok) throw new Error(reply.error);
    return reply.result as VipaNodeStatus;
  }

  /** Nodes whose kernel holds the virtual address (read with ip(8), not from vipa). */
  holders(): string[] {
    return this.options.nodes.filter((id) => {
      const host = this.lan.host(id);
      try {
        return host.ip('-o', 'addr', 'show', 'dev', 'eth0').includes(` ${this.vipCidr} `);
      } catch {
        return false;
      }
    });
  }

  /** Waits until exactly `id` holds the address. */
  async waitForHolder(id: string, ms = 5000): Promise<number> {
    const t0 = performance.now();
    await waitUntil(() => {
      const h = this.holders();
      return h.length === 1 && h[0] === id;
    }, ms, `${id} to be the only holder (holders: ${this.holders().join(',') || 'none'})`);
    return performance.now() - t0;
  }

  /** The client reaches the address, and its neighbour entry points at `id`'s MAC. */
  clientReaches(id: string): void {
    const client = this.lan.host('client');
    client.run('ping', '-c', '1', '-W', '2', this.vip);
    const mac = this.mac(id);
    const neigh = client.ipJson<{ dst: string; lladdr?: string }[]>('neigh', 'show', this.vip);
    if (neigh[0]?.lladdr !== mac) throw new Error(`client maps ${this.vip} to ${neigh[0]?.lladdr ?? 'nothing'}, expected ${id}'s ${mac}`);
  }

  mac(id: string): string {
    return this.lan.host(id).mac();
  }

  /** Sends a signal to node `id`'s daemon. */
  signal(id: string, signal: NodeJS.Signals): void {
    const child = this.daemons.get(id)?.process;
    if (!child?.pid) throw new Error(`no daemon for ${id}`);
    // The daemon runs under nsenter, which execs into node: same pid.
    process.kill(child.pid, signal);
  }

  /** Cuts `id` off from every other port of the bridge (nftables, bridge family, forward hook). */
  partition(id: string): void {
    const port = this.lan.ports.get(id)!;
    const sw = this.lan.switch;
    sw.run('nft', 'add', 'table', 'bridge', 'vipatest');
    sw.run('nft', 'add', 'chain', 'bridge', 'vipatest', 'partition', '{ type filter hook forward priority 0; }');
    sw.run('nft', 'add', 'rule', 'bridge', 'vipatest', 'partition', 'iifname', port, 'drop');
    sw.run('nft', 'add', 'rule', 'bridge', 'vipatest', 'partition', 'oifname', port, 'drop');
  }

  heal(): void {
    this.lan.switch.run('nft', 'delete', 'table', 'bridge', 'vipatest');
  }

  /**
   * Starts a UDP echo responder on every node and the prober in the client,
   * probing the virtual address every `intervalMs`; resolves once it runs.
   * Its timeline fills in `output.record`; stop it with `prober.kill()`.
   */
  async startProber(intervalMs = 1): Promise<{ prober: ChildProcess; output: ProberOutput }> {
    for (const id of this.options.nodes) {
      this.helpers.push(this.lan.host(id).spawn(process.execPath, [demoScript('echo-responder-main'), '--port', String(PROBE_PORT), '--name', id]));
    }
    const prober = this.lan.host('client').spawn(process.execPath, [demoScript('prober-main'), '--target', this.vip, '--port', String(PROBE_PORT), '--interval', String(intervalMs)]);
    this.helpers.push(prober);
    const output = ProberOutput.follow(prober.stdout!);
    await output.ready;
    return { prober, output };
  }

  private readonly helpers: ChildProcess[] = [];

  /** Stops every daemon (SIGKILL if SIGTERM does not end it) and removes the LAN and temp files. */
  async destroy(): Promise<void> {
    for (const h of this.helpers) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
    for (const d of this.daemons.values()) {
      if (d.process && d.process.exitCode === null && d.process.signalCode === null) {
        d.process.kill('SIGCONT');
        d.process.kill('SIGTERM');
        const exited = await Promise.race([d.exit, new Promise((r) => setTimeout(() => r('timeout'), 3000))]);
        if (exited === 'timeout') d.process.kill('SIGKILL');
      }
    }
    await this.lan.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `predicate` every 5 ms until it holds; throws naming `what` after `ms`. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Builds the LAN (nodes + client), addresses, key and configs, and starts every daemon. */
export async function startCluster(options: TestClusterOptions): Promise<TestCluster> {
  const nodes = options.nodes ?? ['a', 'b', 'c'];
  const lan = await createLan([...nodes, 'client']);
  const dir = mkdtempSync(join(tmpdir(), 'vipa-cluster-'));
  const cluster = new TestCluster(lan, dir, options);
  try {
    writeFileSync(join(dir, 'key'), `${Buffer.alloc(32, 7).toString('hex')}\n`, { mode: 0o600 });
    [...nodes, 'client'].forEach((id, i) => {
      const prefix = options.family === 4 ? '24' : '64';
      lan.host(id).ip('addr', 'add', `${cluster.hostAddress(i + 1)}/${prefix}`, 'dev', 'eth0', ...(options.family === 6 ? ['nodad'] : []));
    });
    for (const id of nodes) await cluster.start(id);
    return cluster;
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
}
