/**
 * Observers of a bulk takeover, outside the daemon that does it, on the
 * bench's clock (CLOCK_MONOTONIC, as the probers):
 *
 * - {@link AddressWatch}: the kernel's address notifications
 *   (RTM_NEWADDR, rtnetlink multicast groups) in one host's namespace: when
 *   the first and the last of a set of addresses appeared there.
 * - {@link AnnounceWatch}: the wire, from the client's namespace (AF_PACKET,
 *   ARP and NS/NA frames): when each address of the set was first announced
 *   (gratuitous ARP, or an unsolicited NA for it).
 *
 * Both run in the bench process (vipa's compiled library, dist/), which does
 * nothing else during a scale trial. Times are taken when the bench reads
 * the message, so a burst is seen up to one read batch late: the same for
 * every contender, including the kernel floor, which is watched the same way.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { monotonicMs } from '../../lib/demo/probe-wire.js';

import type { NetlinkMonitor } from '../../lib/index.js';
import type { NativeSocket } from '../../lib/native.js';

type Vipa = typeof import('../../lib/index.js');

function loadVipa(root: string): Vipa {
  return createRequire(join(root, 'package.json'))('./dist/index.js') as Vipa;
}

/** Canonical text of an address (without prefix), as the decoders print it. */
function canonical(vipa: Vipa, cidr: string): string {
  const text = cidr.split('/')[0]!;
  return vipa.formatIp(vipa.parseIp(text)!.bytes);
}

/** A set of addresses seen arriving; first and last times. */
class Arrivals {
  private readonly wanted: Set<string>;
  private seen = new Set<string>();
  first: number | undefined;
  last: number | undefined;
  private waiter: (() => void) | undefined;

  constructor(addresses: Iterable<string>) {
    this.wanted = new Set(addresses);
  }

  reset(): void {
    this.seen = new Set();
    this.first = undefined;
    this.last = undefined;
  }

  note(address: string): void {
    if (!this.wanted.has(address) || this.seen.has(address)) return;
    const at = monotonicMs();
    this.seen.add(address);
    this.first ??= at;
    if (this.seen.size === this.wanted.size) {
      this.last = at;
      this.waiter?.();
    }
  }

  get count(): number {
    return this.seen.size;
  }

  /** Resolves with the time the last address arrived; rejects after `ms`. */
  all(ms: number, what: string): Promise<number> {
    if (this.last !== undefined) return Promise.resolve(this.last);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${what}: ${this.seen.size} of ${this.wanted.size} within ${ms} ms`));
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(this.last!);
      };
    });
  }
}

/** RTM_NEWADDR for a set of addresses in one namespace. */
export class AddressWatch {
  private readonly monitor: NetlinkMonitor;
  readonly arrivals: Arrivals;

  constructor(root: string, netns: string, addresses: readonly string[]) {
    const vipa = loadVipa(root);
    this.arrivals = new Arrivals(addresses.map((a) => canonical(vipa, a)));
    this.monitor = new vipa.NetlinkMonitor({ netns, links: false });
    this.monitor.on('address', (e) => {
      if (e.action === 'new') this.arrivals.note(e.address.address);
    });
    // A resync (lost notifications) lists every address: count those as arrived now.
    this.monitor.on('resync', (e) => {
      for (const a of e.addresses) this.arrivals.note(a.address);
    });
    this.monitor.on('error', () => undefined);
  }

  get overflows(): number {
    return this.monitor.overflows;
  }

  close(): void {
    this.monitor.close();
  }
}

/**
 * First announcement on the wire of each address of a set, seen from one
 * namespace: an AF_PACKET socket on its eth0 (vipa's addon and BPF filter,
 * as the prober uses them) with an 8 MiB receive buffer, because a takeover
 * of 1000 addresses puts thousands of frames on the link within a second
 * and a dropped first frame would show as a late one.
 */
export class AnnounceWatch {
  private readonly socket: NativeSocket;
  private readonly buffer = Buffer.alloc(65536);
  readonly arrivals: Arrivals;
  /** Frames read (for a sanity check against what the senders sent). */
  frames = 0;
  receiveErrors = 0;

  constructor(root: string, netns: string, addresses: readonly string[]) {
    const req = createRequire(join(root, 'package.json'));
    const vipa = req('./dist/index.js') as Vipa;
    const { native } = req('./dist/native.js') as typeof import('../../lib/native.js');
    const { neighborDiscoveryFilter } = req('./dist/packets/bpf.js') as typeof import('../../lib/packets/bpf.js');
    this.arrivals = new Arrivals(addresses.map((a) => canonical(vipa, a)));
    let ifindex: number;
    {
      using nl = new vipa.Netlink({ netns });
      ifindex = nl.linkGetSync('eth0').index;
    }
    // ETH_P_ALL narrowed by the filter to ARP and NS/NA (lib/packets/bpf.ts).
    this.socket = new (native().Socket)('packet', { ifindex, protocol: 0x0003, filter: neighborDiscoveryFilter(), ignoreOutgoing: true, netns, op: 'bench announce watch' });
    this.socket.setBufferSizes(8 << 20, 1 << 16);
    this.socket.startReading(this.buffer, (n) => {
      if (n < 0) {
        this.receiveErrors++;
        return;
      }
      this.frames++;
      try {
        const frame = this.buffer.subarray(0, n);
        const ethertype = frame.readUInt16BE(12);
        if (ethertype === vipa.ETHERTYPE_ARP) {
          const p = vipa.decodeArp(frame);
          if (vipa.isGratuitousArp(p)) this.arrivals.note(vipa.formatIp(p.senderIp));
        } else if (ethertype === vipa.ETHERTYPE_IPV6) {
          const p = vipa.decodeNdp(frame);
          if (p.type === 'na' && !p.flags.solicited) this.arrivals.note(vipa.formatIp(p.target));
        }
      } catch {
        // not an ARP / NDP frame the decoders accept: not an announcement
      }
    });
  }

  close(): void {
    this.socket.close();
  }
}
