/**
 * The failover suite's network: holder hosts and a client on one bridge
 * (lib/demo/lan.ts: a namespace per host, held by a keeper process), every
 * host dual-stack, an echo responder on each holder and, on the client, one
 * prober per address family. Both are the C instruments of bench/instruments/
 * (same options and output as lib/demo/echo-responder-main.ts and
 * lib/demo/prober-main.ts, see client-prober.ts): UDP probes every 0.5 ms,
 * ARP/NS probes of the virtual address every millisecond.
 *
 * Addresses: only 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32. Host
 * number n (1..254) is 198.51.100.n/24 and 2001:db8::n/64 (n written in
 * decimal digits: 2001:db8::251 is a valid address).
 *
 * Every long-running process is started through `setpriv --pdeathsig KILL`
 * (the bench is its parent; if the bench dies, so does it) and every
 * namespace is registered with the {@link Sentinel}, which kills whatever is
 * left in them once the bench is gone.
 */
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createLan, type TestHost, type TestLan } from '../../lib/demo/lan.js';
import { ClientProber } from './client-prober.js';
import { benchInstrument } from './floor.js';
import { spawnGuarded, waitForExit, waitForOutput } from './guarded-spawn.js';
import type { Sentinel } from './sentinel.js';

type Vipa = typeof import('../../lib/index.js');

/** The virtual addresses of the failover scenarios. */
export const VIP4 = '198.51.100.100';
export const VIP6 = '2001:db8::100';
export const VIP4_CIDR = `${VIP4}/24`;
export const VIP6_CIDR = `${VIP6}/64`;
/** The echo responders' UDP port. */
export const ECHO_PORT = 7777;

export interface BenchLanOptions {
  /** Label in logs and errors. */
  label: string;
  /** Holder host names, in order. */
  holders: string[];
  /** Host number of each host (holders and 'client'); default: holders 1..n, client 200. */
  hostNumbers?: Record<string, number>;
  /** Start an echo responder on every holder and two probers on the client (default true). */
  probe?: boolean;
  root: string;
  sentinel: Sentinel;
}

/** A LAN of holder hosts and a client, see the module comment. */
export class BenchLan {
  readonly label: string;
  readonly lan: TestLan;
  readonly holders: string[];
  readonly numbers: Record<string, number>;
  readonly root: string;
  /** The cleanup watcher its namespaces are registered with. */
  readonly sentinel: Sentinel;
  /** Probers on the client, one per family (when probing). */
  readonly probers: ClientProber[] = [];
  private readonly responders: ChildProcess[] = [];
  private readonly vipa: Vipa;

  private constructor(label: string, lan: TestLan, holders: string[], numbers: Record<string, number>, root: string, sentinel: Sentinel) {
    this.sentinel = sentinel;
    this.label = label;
    this.lan = lan;
    this.holders = holders;
    this.numbers = numbers;
    this.root = root;
    // The compiled library (what users get), for address checks and cleanups inside the hosts' namespaces.
    this.vipa = createRequire(join(root, 'package.json'))('./dist/index.js') as Vipa;
  }

  static async create(options: BenchLanOptions): Promise<BenchLan> {
    const { holders, sentinel } = options;
    const names = [...holders, 'client'];
    const numbers: Record<string, number> = options.hostNumbers ?? Object.fromEntries([...holders.map((h, i) => [h, i + 1]), ['client', 200]]);
    const lan = await createLan(names);
    const benchLan = new BenchLan(options.label, lan, holders, numbers, options.root, sentinel);
    try {
      for (const h of [lan.switch, ...lan.hosts.values()]) sentinel.watchNetnsOf(h.pid);
      for (const name of names) {
        const host = lan.host(name);
        const n = numbers[name];
        if (n === undefined) throw new Error(`${options.label}: no host number for ${name}`);
        // No DAD for the link-local address (keepalived's VRRPv3 over IPv6 sends from it, and
        // would wait 1-2 s for it otherwise): set accept_dad=0, then take the link down and up
        // so the link-local address is made again, untentative. Virtual addresses are added
        // with nodad by both vipa and keepalived anyway, so this changes nothing for them.
        host.run('sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad && ip link set eth0 down && ip link set eth0 up');
        host.ip('addr', 'add', `198.51.100.${n}/24`, 'dev', 'eth0');
        host.ip('addr', 'add', `2001:db8::${n}/64`, 'dev', 'eth0', 'nodad');
      }
      if (options.probe !== false) await benchLan.startProbing();
      return benchLan;
    } catch (e) {
      await benchLan.destroy();
      throw e;
    }
  }

  host(name: string): TestHost {
    return this.lan.host(name);
  }

  /** The heartbeat / VRRP address of a host (IPv4). */
  address4(name: string): string {
    return `198.51.100.${this.numbers[name]}`;
  }

  private async startProbing(): Promise<void> {
    const buildDir = join(this.root, 'bench/.build');
    const responder = benchInstrument(this.root, buildDir, 'responder');
    // Started together, probers too.
    const ready = this.holders.map((h) => {
      const child = spawnGuarded(this.host(h), responder, ['--port', String(ECHO_PORT), '--name', h], { realtime: true });
      this.responders.push(child);
      return waitForOutput(child, 'ready', 10_000, `${this.label}: echo responder on ${h}`);
    });
    const client = this.host('client');
    const probers = [VIP4, VIP6].map((target) => ClientProber.start(client, this.root, target, ECHO_PORT, `${this.label}: prober ${target}`, buildDir));
    const started = await Promise.allSettled([...ready, ...probers]);
    for (const p of started.slice(ready.length)) if (p.status === 'fulfilled') this.probers.push(p.value as ClientProber);
    const failed = started.find((p) => p.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** The prober of a family. */
  prober(family: 4 | 6): ClientProber {
    const p = this.probers.find((x) => x.family === family);
    if (!p) throw new Error(`${this.label}: no IPv${family} prober`);
    return p;
  }

  /**
   * Waits until every prober got a reply from a responder that `match`es
   * (a reply that arrived after `after`); resolves with the responders seen.
   */
  async waitForResponder(match: string | ((responder: string) => boolean), after: number, timeoutMs: number): Promise<string[]> {
    const test = typeof match === 'string' ? (r: string) => r === match : match;
    const seen = await Promise.all(this.probers.map((p) => p.waitForResponder(test, after, timeoutMs)));
    return seen.map((s) => s.responder);
  }

  /** Resolves once every prober's output has reached time `t` (see ClientProber.caughtUp). */
  async caughtUp(t: number): Promise<void> {
    await Promise.all(this.probers.map((p) => p.caughtUp(t)));
  }

  /** Takes `name`'s bridge port down: from that instant nothing it sends reaches anyone (a dead host, as the LAN sees it). */
  linkDown(name: string): void {
    this.lan.switch.ip('link', 'set', this.lan.ports.get(name)!, 'down');
  }

  linkUp(name: string): void {
    this.lan.switch.ip('link', 'set', this.lan.ports.get(name)!, 'up');
  }

  /** The index of `name`'s eth0 in its namespace. */
  ifindex(name: string): number {
    using nl = new this.vipa.Netlink({ netns: this.host(name).netns });
    return nl.linkGetSync('eth0').index;
  }

  /** Which of `addresses` (with prefix) `name`'s eth0 holds, read from the kernel. */
  heldAddresses(name: string, addresses: readonly string[]): string[] {
    using nl = new this.vipa.Netlink({ netns: this.host(name).netns });
    // A dump runs into NLM_F_DUMP_INTR while a daemon adds or deletes hundreds of addresses; vipa retries
    // 5 times and then throws (a bare Error, see the report), so retry a bounded number of times more.
    for (let attempt = 0; ; attempt++) {
      try {
        const present = new Set(nl.addrListSync({ link: 'eth0' }).map((a) => `${a.address}/${a.prefixLength}`));
        return addresses.filter((a) => present.has(a));
      } catch (e) {
        if (attempt >= 20) throw new Error(`${this.label}: cannot list ${name}'s addresses: ${(e as Error).message || (e as Error).constructor.name}`, { cause: e });
      }
    }
  }

  /**
   * Empties `name`'s neighbour cache on eth0, as a reboot would: after its
   * link was down, the entries its dying processes created stay unresolved,
   * and the kernel holds what a new daemon sends to those peers until the
   * next ARP retry (up to a second).
   */
  forgetNeighbours(name: string): void {
    this.host(name).ip('neigh', 'flush', 'dev', 'eth0');
  }

  /** Deletes `addresses` (with prefix) from `name`'s eth0 where present; returns how many were there. */
  deleteAddresses(name: string, addresses: readonly string[]): number {
    using nl = new this.vipa.Netlink({ netns: this.host(name).netns });
    const link = nl.linkGetSync('eth0').index;
    const results = nl.addrBatchSync(addresses.map((a) => ({ op: 'delete' as const, link, address: a, allowMissing: true })));
    return results.filter((r) => r.ok && r.changed).length;
  }

  /** Stops probers and responders, destroys every namespace. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.probers.splice(0).map((p) => p.stop()));
    for (const r of this.responders.splice(0)) {
      r.kill('SIGTERM');
      if (!(await waitForExit(r, 2000))) r.kill('SIGKILL');
    }
    await this.lan.destroy();
  }
}

