/**
 * The bench's own network: checks that this process runs in the private
 * namespace scripts/run-bench.mjs made for it, and runs ip(8) there.
 * Nothing here can reach the caller's namespace: the namespace dies with the
 * bench process, and with it every link and address the suites made.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';

export const IP = '/usr/sbin/ip';

/** Throws unless this process is in a network namespace other than the one `npm run bench` was started in. */
export function assertPrivateNetns(): void {
  const outer = process.env.VIPA_BENCH_OUTER_NETNS;
  if (!outer) {
    throw new Error('bench suites change interfaces: run them through `npm run bench` (scripts/run-bench.mjs), which gives them a private network namespace');
  }
  const own = readlinkSync('/proc/self/ns/net');
  if (own === outer) throw new Error(`still in the caller's network namespace (${own}): refusing to change interfaces`);
}

/** Runs ip(8) in this namespace; throws with its stderr. Bounded by a timeout. */
export function ip(...args: string[]): string {
  try {
    return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** Creates a veth pair, both ends up (carrier on, as a real VIP interface), and lo up. */
export function createVethPair(name: string, peer: string): void {
  assertPrivateNetns();
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', name, 'up');
  ip('link', 'set', peer, 'up');
}

/** Deletes a link (and its peer, for veth); ignores a link already gone. */
export function deleteLink(name: string): void {
  try {
    ip('link', 'del', name);
  } catch {
    // Already gone; the namespace takes whatever is left when the bench exits.
  }
}

/** Reads a sysctl of this namespace (/proc/sys/net is per network namespace). */
export function readSysctl(path: string): string {
  return readFileSync(`/proc/sys/${path.replace(/\./g, '/')}`, 'utf8').trim();
}
