/**
 * Throwaway network namespaces for the demo, the kernel tests and the bench.
 *
 * Each host is a namespace held open by a keeper process (`unshare --net`
 * running `read`): the namespace lives exactly as long as the keeper, and the
 * keeper exits when its stdin closes, that is when we destroy the host or
 * when the test process dies for any reason. Works as root and inside an
 * unprivileged `unshare -rn`, never touches the caller's own namespace, and
 * needs no /run/netns mount.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const IP = '/usr/sbin/ip';

/** A network namespace created for a test. */
export class TestHost {
  readonly name: string;
  readonly pid: number;
  /** Path for setns(2) / `new Netlink({ netns })`. */
  readonly netns: string;
  private readonly keeper: ChildProcess;

  constructor(name: string, keeper: ChildProcess) {
    this.name = name;
    this.keeper = keeper;
    this.pid = keeper.pid!;
    this.netns = `/proc/${this.pid}/ns/net`;
  }

  /** Runs a command inside this namespace and returns its stdout; throws with stderr on failure. */
  run(command: string, ...args: string[]): string {
    try {
      return execFileSync('nsenter', [`--net=${this.netns}`, '--', command, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`[${this.name}] ${command} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
    }
  }

  /** Runs ip(8) inside this namespace. */
  ip(...args: string[]): string {
    return this.run(IP, ...args);
  }

  /** Runs ip(8) with -json and parses the output. */
  ipJson<T = unknown>(...args: string[]): T {
    const out = this.ip('-json', ...args).trim();
    return (out ? JSON.parse(out) : []) as T;
  }

  /** The MAC address of interface `dev` (default eth0), as ip(8) prints it. */
  mac(dev = 'eth0'): string {
    return this.ipJson<{ address: string }[]>('link', 'show', dev)[0]!.address;
  }

  /**
   * Spawns a long-running process inside this namespace (killed by
   * destroy()). It also dies with this process, even by SIGKILL
   * (PR_SET_PDEATHSIG through setpriv(1); nsenter and setpriv exec, so the
   * child's pid is the command's).
   */
  spawn(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn('nsenter', [`--net=${this.netns}`, '--', 'setpriv', '--pdeathsig', 'KILL', command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  private readonly children = new Set<ChildProcess>();

  /** Kills this host's processes and its namespace. */
  async destroy(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    if (this.keeper.exitCode !== null || this.keeper.signalCode !== null) return;
    const exited = once(this.keeper, 'exit');
    this.keeper.stdin?.end();
    this.keeper.kill('SIGKILL');
    await exited;
  }
}

/** Creates an empty namespace with `lo` up. */
export async function createHost(name: string): Promise<TestHost> {
  // `read` returns at EOF, i.e. when our end of the pipe closes, even if we crash.
  // keep_addr_on_down: like a host whose network manager restores its
  // addresses, an IPv6 address survives its link going down (by default the
  // kernel flushes IPv6 addresses then, and the host would lose its
  // heartbeat address for good).
  const setup = `${IP} link set lo up && echo 1 > /proc/sys/net/ipv6/conf/default/keep_addr_on_down && echo 1 > /proc/sys/net/ipv6/conf/all/keep_addr_on_down`;
  const keeper = spawn('unshare', ['--net', '--', 'sh', '-c', `${setup} && echo ready && read _`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  keeper.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    keeper.stdout!.once('data', () => resolve());
    keeper.once('exit', (code) => reject(new Error(`cannot create namespace ${name} (unshare exited ${code}): ${stderr.trim()}`)));
    keeper.once('error', reject);
  });
  await ready;
  return new TestHost(name, keeper);
}

/** A LAN: hosts each with `eth0` on one bridge that lives in its own switch namespace. */
export class TestLan {
  readonly switch: TestHost;
  readonly hosts: Map<string, TestHost>;
  /** Bridge port name in the switch namespace for each host (for nftables rules). */
  readonly ports: Map<string, string>;

  constructor(sw: TestHost, hosts: Map<string, TestHost>, ports: Map<string, string>) {
    this.switch = sw;
    this.hosts = hosts;
    this.ports = ports;
  }

  /** The host called `name`. */
  host(name: string): TestHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in this LAN`);
    return h;
  }

  /** Destroys every namespace of the LAN. */
  async destroy(): Promise<void> {
    await Promise.all([...this.hosts.values(), this.switch].map((h) => h.destroy()));
  }

  /** For `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/**
 * Builds a LAN: a switch namespace with bridge br0 and, for each name, a host
 * namespace whose eth0 is a veth into br0 (port `p-<name>`). Everything is up;
 * no addresses are configured.
 */
export async function createLan(names: string[]): Promise<TestLan> {
  const created: TestHost[] = [];
  try {
    const sw = await createHost('switch');
    created.push(sw);
    sw.ip('link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0');
    sw.ip('link', 'set', 'br0', 'up');
    const hosts = new Map<string, TestHost>();
    const ports = new Map<string, string>();
    for (const name of names) {
      const host = await createHost(name);
      created.push(host);
      const port = `p-${name}`.slice(0, 15);
      sw.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(host.pid));
      sw.ip('link', 'set', port, 'master', 'br0', 'up');
      host.ip('link', 'set', 'eth0', 'up');
      hosts.set(name, host);
      ports.set(name, port);
    }
    return new TestLan(sw, hosts, ports);
  } catch (e) {
    await Promise.all(created.map((h) => h.destroy()));
    throw e;
  }
}
