/**
 * One AF_PACKET socket (packet(7)) bound to one interface, for one purpose:
 * sending announcements, or sending probes and receiving the ARP and NDP
 * frames of the link for conflict detection.
 *
 * - Opened in a given network namespace (the addon enters it with setns(2)
 *   for the socket(2) call only), nonblocking, close-on-exec.
 * - Bound to the interface: frames go out there as they are written (SOCK_RAW
 *   sends the whole Ethernet frame), and only that interface's frames come in.
 * - Send sockets bind protocol 0: packet(7) delivers nothing to such a socket,
 *   so it costs no receive work. Receive sockets bind ETH_P_ALL with a classic
 *   BPF filter (lib/packets/bpf.ts) so that only ARP and NS/NA frames wake the
 *   event loop, and set PACKET_IGNORE_OUTGOING (Linux ≥ 4.20, packet(7)) so
 *   that our own frames are not looped back to us by the packet tap.
 * - Needs CAP_NET_RAW in the namespace's owning user namespace (packet(7):
 *   "only processes with effective UID 0 or the CAP_NET_RAW capability may
 *   open packet sockets"); without it, a {@link VipaError} whose message
 *   names CAP_NET_RAW.
 */
import { DecodeError, VipaError } from '../errors.js';
import { formatMac, parseMac } from '../ip.js';
import { native, type NativeSocket } from '../native.js';
import { Netlink } from '../netlink/netlink.js';
import type { Link } from '../netlink/link.js';
import { decodeArp, type ArpPacket } from './arp.js';
import { dropAllFilter, neighborDiscoveryFilter } from './bpf.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV6, ETHERNET_HEADER_LENGTH } from './ethernet.js';
import { decodeNdp, type NdpPacket } from './ndp.js';

/** ETH_P_ALL (linux/if_ether.h): every protocol, narrowed by the BPF filter. */
const ETH_P_ALL = 0x0003;
/** ARPHRD_ETHER (linux/if_arp.h). */
const ARPHRD_ETHER = 1;
/**
 * Receive buffer for one frame. A frame larger than the buffer is an
 * EMSGSIZE receive error in the addon (it never truncates silently); NS/NA
 * frames carry a few options and ARP frames are 42–60 bytes, so a jumbo MTU
 * plus headers is plenty.
 */
const FRAME_BUFFER_BYTES = 9216 + ETHERNET_HEADER_LENGTH;

/** A decoded frame from a receive socket. */
export type LinkFrame = { kind: 'arp'; packet: ArpPacket } | { kind: 'ndp'; packet: NdpPacket };

/** Options of {@link LinkSocket.open}. */
export interface LinkSocketOptions {
  /** Interface name or index. */
  link: string | number;
  /**
   * Network namespace: a path (/run/netns/NAME, /proc/PID/ns/net) or an open
   * fd. Default: the caller's. The interface is looked up there too.
   */
  netns?: string | number;
  /** true: also receive ARP and NS/NA frames ({@link LinkSocket.onFrame}). Default false: send only. */
  receive?: boolean;
  /**
   * Receive sockets: open paused (see {@link LinkSocket.pause}); nothing is
   * received until {@link LinkSocket.resume}. Default false.
   */
  paused?: boolean;
  /**
   * A {@link Netlink} handle on the same namespace to look the interface up
   * with; default: a handle opened and closed for the lookup.
   */
  netlink?: Netlink;
}

/** Counters of one socket. */
export interface LinkSocketStats {
  /** Frames handed to the kernel by {@link LinkSocket.send}. */
  framesSent: number;
  /** Frames received and decoded (receive sockets). */
  framesReceived: number;
  /** Frames the filter let through that did not decode (malformed): dropped. */
  decodeErrors: number;
  /** Frames of another EtherType (the filter should make this 0): dropped. */
  ignored: number;
  /** Receive errors reported by the kernel (ENETDOWN while the link is down, ENOBUFS...). */
  receiveErrors: number;
}

/** Why an interface cannot carry ARP/NDP announcements, or an empty list when it can. */
export function linkRefusalReasons(link: Link): string[] {
  const reasons: string[] = [];
  if (link.flags.loopback) reasons.push('it is a loopback interface');
  else if (link.type !== ARPHRD_ETHER) reasons.push(`it is not an Ethernet interface (ARPHRD ${link.type})`);
  if (!link.flags.up) reasons.push('it is down (ip link set dev NAME up)');
  if (link.flags.noarp) reasons.push('it has NOARP set (ip link set dev NAME arp on)');
  const mac = link.mac === null ? undefined : parseMac(link.mac);
  if (!mac) reasons.push('it has no 6-byte MAC address');
  else if (mac.every((b) => b === 0)) reasons.push('its MAC address is all zeroes');
  return reasons.map((r) => r.replace('NAME', link.name));
}

/**
 * An AF_PACKET socket bound to one interface. Open it with
 * {@link LinkSocket.open}; close it with {@link LinkSocket.close} or `using`.
 *
 * A receive socket keeps the process alive while it is open, as any
 * listening socket does; a send socket does not.
 *
 * @example
 * ```ts
 * using s = LinkSocket.open({ link: 'eth0' });
 * s.send(encodeGratuitousArp({ mac: s.mac, address: parseIp('198.51.100.7')!.bytes, operation: 'request' }));
 * ```
 */
export class LinkSocket implements Disposable {
  /** Interface index. */
  readonly ifindex: number;
  /** Interface name. */
  readonly name: string;
  /** The interface's MAC (6 bytes), as it was when the socket was opened. */
  readonly mac: Uint8Array;
  /** The interface's forwarding settings when the socket was opened (IPv6: the NA Router flag, RFC 4861 §7.2.6). */
  readonly forwarding: { ipv4: boolean; ipv6: boolean };
  /** Whether this socket receives frames. */
  readonly receiving: boolean;
  /** Counters; see {@link LinkSocketStats}. */
  readonly stats: LinkSocketStats = { framesSent: 0, framesReceived: 0, decodeErrors: 0, ignored: 0, receiveErrors: 0 };
  /** The last receive error (negative errno turned into a VipaError), if any. */
  lastReceiveError: VipaError | undefined;
  /**
   * The last decode failure (for diagnostics): a {@link DecodeError}, or any
   * other error a decoder threw, which would be a bug (the decoders are
   * fuzzed to throw DecodeError only) but must not take the receive path down.
   */
  lastDecodeError: Error | undefined;

  private socket: NativeSocket | undefined;
  private readonly listeners = new Set<(frame: LinkFrame) => void>();
  private readonly buffer: Buffer | undefined;

  private constructor(link: Link, mac: Uint8Array, socket: NativeSocket, receive: boolean) {
    this.ifindex = link.index;
    this.name = link.name;
    this.mac = mac;
    this.forwarding = { ipv4: link.forwarding.ipv4 === true, ipv6: link.forwarding.ipv6 === true };
    this.receiving = receive;
    this.socket = socket;
    if (receive) {
      this.buffer = Buffer.alloc(FRAME_BUFFER_BYTES);
      socket.startReading(this.buffer, (n) => this.onDatagram(n));
    }
  }

  /**
   * Looks the interface up (in `netns`) and opens a socket bound to it.
   *
   * Throws RangeError for an unknown interface, and for one that cannot carry
   * ARP/NDP: down, NOARP, loopback, not Ethernet, or without a usable MAC
   * (the message names the interface and every reason). Throws
   * {@link VipaError} when the socket cannot be opened (EPERM: the message
   * names CAP_NET_RAW).
   */
  static open(options: LinkSocketOptions): LinkSocket {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    const { link, netns, netlink } = options;
    const receive = options.receive ?? false;
    if (typeof receive !== 'boolean') throw new TypeError(`receive must be a boolean, got ${String(receive)}`);
    const paused = options.paused ?? false;
    if (typeof paused !== 'boolean') throw new TypeError(`paused must be a boolean, got ${String(paused)}`);
    if (paused && !receive) throw new TypeError('paused applies to receive sockets only (receive: true)');
    if (typeof link !== 'string' && !(Number.isInteger(link) && link > 0)) {
      throw new TypeError(`link must be an interface name or a positive index, got ${String(link)}`);
    }
    let info: Link;
    if (netlink) info = netlink.linkGetSync(link);
    else {
      using nl = new Netlink(netns === undefined ? {} : { netns });
      info = nl.linkGetSync(link);
    }
    const reasons = linkRefusalReasons(info);
    if (reasons.length > 0) {
      throw new RangeError(`interface ${info.name} (index ${info.index}) cannot send ARP/NDP announcements: ${reasons.join('; ')}`);
    }
    const op = receive ? 'packet open (receive)' : 'packet open (send)';
    let socket: NativeSocket;
    try {
      socket = new (native().Socket)('packet', {
        ifindex: info.index,
        protocol: receive ? ETH_P_ALL : 0,
        ...(receive ? { filter: paused ? dropAllFilter() : neighborDiscoveryFilter(), ignoreOutgoing: true } : {}),
        ...(netns === undefined ? {} : { netns }),
        op,
      });
    } catch (e) {
      // Re-raise with the interface named; the message keeps the CAP_NET_RAW hint (errors.ts).
      if (e instanceof VipaError) throw new VipaError({ errno: e.errno, syscall: e.syscall, op, subject: `dev ${info.name}`, cause: e });
      throw e;
    }
    const s = new LinkSocket(info, parseMac(info.mac!)!, socket, receive);
    s.pausedFlag = paused;
    return s;
  }

  /** The MAC as text (lower-case colon hex). */
  get macText(): string {
    return formatMac(this.mac);
  }

  /** Whether the socket is still open. */
  get open(): boolean {
    return this.socket !== undefined;
  }

  /**
   * Sends one whole Ethernet frame (header included, no FCS) out of the
   * interface: one send(2). Throws {@link VipaError} on failure (ENETDOWN
   * when the link went down, ENXIO when it is gone, EBADF once closed).
   */
  send(frame: Uint8Array): void {
    const socket = this.socket;
    if (!socket) throw new VipaError({ errno: 9 /* EBADF */, syscall: 'sendto', op: 'packet send', subject: `dev ${this.name} (socket closed)` });
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    socket.send(buf);
    this.stats.framesSent++;
  }

  /**
   * Calls `listener` with every ARP and NS/NA frame received on the
   * interface from other hosts (our own outgoing frames are not delivered).
   * Malformed frames are counted in {@link LinkSocketStats.decodeErrors} and
   * dropped; the receive path never throws on network input. Returns a
   * function that removes the listener. Receive sockets only.
   */
  onFrame(listener: (frame: LinkFrame) => void): () => void {
    if (!this.receiving) throw new Error(`LinkSocket on ${this.name} was opened without receive: true`);
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onDatagram(n: number): void {
    if (n < 0) {
      this.stats.receiveErrors++;
      this.lastReceiveError = new VipaError({ errno: -n, syscall: 'recvfrom', op: 'packet receive', subject: `dev ${this.name}` });
      return;
    }
    const frame = this.buffer!.subarray(0, n);
    let decoded: LinkFrame;
    try {
      // The EtherType picks the decoder; the decoders check everything else.
      const ethertype = n >= ETHERNET_HEADER_LENGTH ? (frame[12]! << 8) | frame[13]! : -1;
      if (ethertype === ETHERTYPE_ARP) decoded = { kind: 'arp', packet: decodeArp(frame) };
      else if (ethertype === ETHERTYPE_IPV6) decoded = { kind: 'ndp', packet: decodeNdp(frame) };
      else {
        this.stats.ignored++;
        return;
      }
    } catch (e) {
      this.stats.decodeErrors++;
      this.lastDecodeError = e instanceof Error ? e : new DecodeError('frame', 'invalid', 0, String(e));
      return;
    }
    this.stats.framesReceived++;
    // Listeners are user code: their exceptions are theirs, as with EventEmitter.
    for (const listener of this.listeners) listener(decoded);
  }

  /** Stops receiving and closes the socket. Idempotent. */
  /** Whether a receive socket is paused (see {@link pause}). */
  get paused(): boolean {
    return this.pausedFlag;
  }

  /**
   * Receive sockets: stops receiving by attaching a filter that drops every
   * frame in the kernel, so an idle socket costs no wake-ups. Cheaper than
   * closing and reopening: closing a receive packet socket waits for an RCU
   * grace period (packet_release calls synchronize_net), milliseconds during
   * which the calling thread is blocked. Frames queued before stay readable.
   */
  pause(): void {
    this.setPaused(true);
  }

  /** Receive sockets: receives ARP and NS/NA frames again (see {@link pause}). */
  resume(): void {
    this.setPaused(false);
  }

  private pausedFlag = false;

  private setPaused(paused: boolean): void {
    const socket = this.socket;
    if (!socket) throw new VipaError({ errno: 9 /* EBADF */, syscall: 'setsockopt', op: 'packet filter', subject: `dev ${this.name} (socket closed)` });
    if (!this.receiving) throw new TypeError(`${paused ? 'pause' : 'resume'}: dev ${this.name} is a send-only socket`);
    if (this.pausedFlag === paused) return;
    socket.setFilter(paused ? dropAllFilter() : neighborDiscoveryFilter());
    this.pausedFlag = paused;
  }

  close(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    this.listeners.clear();
    socket.close();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
