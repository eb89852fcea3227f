/**
 * The client prober: how a client on the LAN sees a failover. Runs in the
 * client's network namespace (the process is started there through nsenter;
 * Node's UDP sockets cannot be opened in another namespace).
 *
 * Two probes run side by side:
 *
 * - UDP: one 12-byte probe (probe-wire.ts) every `intervalMs` to VIP:port
 *   from one unconnected socket, answered by the echo responder on whichever
 *   host holds the address. Each reply is recorded with its round trip and
 *   the responder's name. Unconnected because the responder cannot choose
 *   its reply's source address (see echo-responder.ts); a connected socket
 *   would drop replies from the host's own address.
 * - Neighbour: an ARP request (IPv4) or a Neighbor Solicitation to the
 *   address's solicited-node group (IPv6) every `neighborProbeIntervalMs`
 *   on an AF_PACKET socket (from a made-up identity, see below), and a
 *   record of every ARP message / Neighbor Advertisement / Solicitation
 *   claiming the address, with the claiming MAC. Every holder answers a
 *   request, so two MACs answering at once show split brain or an address
 *   left behind, which the UDP probe (one reply per probe, from whichever
 *   MAC the client's cache names) cannot show.
 *
 * Scheduling: Node timers have millisecond granularity; `setInterval(…, 1)`
 * fires every ~1.1 ms here (libuv rounds its poll timeout to whole ms, plus
 * the kernel's 50 µs timer slack). Each tick sends every probe whose slot
 * (start + k × interval) has come, so the average rate is the configured
 * one while individual probes may leave in pairs; the time resolution of a
 * gap is one tick, ~1.1 ms, at any interval below 4 ms. Measured here over
 * 10 s at 1 ms (2 cores shared with other tests): 981 probes/s, the prober
 * using 14.5% of one core (12.8% without neighbour requests), the echo
 * responder 5.7%. Neighbour requests go at most one per tick (~750–900/s
 * at 1 ms). A tick later than the stall limit (3 ms, or 3 ticks) means the
 * event loop did not run: the missed slots are skipped and counted, not
 * sent in a burst (probes sent together measure nothing), and the stall is
 * recorded, since replies that came meanwhile were read, and timestamped,
 * only at its end; analysis.ts takes stalls out of outages. No
 * busy-waiting: the process sleeps in epoll between ticks.
 *
 * Neighbour requests leave the client's kernel alone. Answers to requests
 * from this host's own MAC and address would reach its kernel, which
 * refreshes an existing neighbour entry with every ARP reply / solicited NA
 * (net/ipv4/arp.c arp_process(), RFC 4861 §7.2.5): the client would follow
 * whichever holder answered last, learn a new holder within one neighbour
 * interval without any announcement, and, with two holders, switch to one
 * that then deletes the address (measured: a 740 ms outage the prober itself
 * caused). So by default (`neighborIdentity: 'phantom'`) requests go out
 * from a second, made-up identity: a locally administered MAC derived from
 * ours, and an address nobody uses in the target's subnet (see phantomAddress)
 * or the EUI-64 link-local address of that MAC (IPv6). Holders answer it by
 * unicast to the made-up MAC; this host's kernel drops such frames
 * (PACKET_OTHERHOST) while the packet socket still sees them. Not an ARP
 * probe (sender 0.0.0.0) nor a DAD NS (source ::): a host about to claim the
 * address would take those for a rival claimant (RFC 5227 §2.1.1, RFC 4862
 * §5.4.3) and vipa does.
 *
 * Limits of the made-up identity: the interface must deliver unicast frames
 * for a MAC that is not its own. A veth does (tests, demo, bench); a
 * physical NIC only in promiscuous mode. `neighborIdentity: 'own'` uses this host's MAC and address
 * instead, accepting the effect on the kernel's cache; `neighborProbeIntervalMs:
 * 0` sends nothing and only records announcements and holders' own requests.
 */
import dgram from 'node:dgram';
import { formatIp, formatMac, parseIp, parseMac, type IpFamily } from '../ip.js';
import { native, type NativeSocket } from '../native.js';
import type { Address } from '../netlink/address.js';
import { Netlink } from '../netlink/netlink.js';
import { decodeArp, encodeArp, isGratuitousArp } from '../packets/arp.js';
import { neighborDiscoveryFilter } from '../packets/bpf.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV6 } from '../packets/ethernet.js';
import { NDP_HOP_LIMIT, decodeNdp, encodeNdp, ipv6MulticastMac, solicitedNodeMulticast } from '../packets/ndp.js';
import type { NeighborKind, NeighborRecord, ProbeRecord, ProbeReply, ProberStall } from './analysis.js';
import { decodeEchoReply, encodeProbe } from './probe-wire.js';
import { bindSocket, closeSocket } from './udp-socket.js';

/** Options of {@link Prober.start}. */
export interface ProberOptions {
  /** The virtual address to probe, IPv4 or IPv6 (no scope id). */
  target: string;
  /** The echo responders' UDP port. */
  port: number;
  /** UDP probe interval, 0.5..100 ms (default 1). */
  intervalMs?: number;
  /** The interface facing the LAN (default 'eth0'). */
  interface?: string;
  /** Stop by itself after this many ms (default: run until {@link Prober.stop}). */
  durationMs?: number;
  /**
   * Neighbour probe interval, 0.5..10000 ms (default 1); 0 sends no
   * requests and only records what arrives (see the module comment).
   */
  neighborProbeIntervalMs?: number;
  /**
   * Who sends the neighbour requests (see the module comment): 'phantom'
   * (default), a made-up MAC and address whose answers this host's kernel
   * ignores; or 'own', this host's MAC and address.
   */
  neighborIdentity?: NeighborIdentity;
  /**
   * Sender address of the neighbour requests (ARP ar$spa, NS source).
   * Default with 'phantom': an unused address in the target's subnet (see
   * phantomAddress). With 'own': this interface's address of the target's family,
   * preferring one in the target's subnet; never a tentative IPv6 address.
   */
  source?: string;
  /** A probe without a reply after this long is lost (default 1000 ms). */
  lossTimeoutMs?: number;
  /** Keep records in {@link Prober.record} (default true); a streaming caller uses the callbacks only. */
  retain?: boolean;
  /** Records kept per list at most (default 1,000,000, ~17 min at 1 ms); later ones are counted, not kept. */
  maxRecords?: number;
  /** Called for each reply, neighbour message and loss, as they happen. */
  onReply?: (reply: ProbeReply) => void;
  onNeighbor?: (record: NeighborRecord) => void;
  onLost?: (seq: number, sentAt: number) => void;
  onStall?: (stall: ProberStall) => void;
}

/** Who sends the neighbour requests: see {@link ProberOptions.neighborIdentity}. */
export type NeighborIdentity = 'phantom' | 'own';

/** Counters of a {@link Prober}. */
export interface ProberStats {
  /** UDP probes sent. */
  sent: number;
  /** Valid replies received (duplicates and late ones included). */
  replies: number;
  /** Replies for a sequence number already answered. */
  duplicates: number;
  /** Replies that came after their probe was declared lost. */
  late: number;
  lost: number;
  /** Probe slots skipped because the event loop was late (see the module comment). */
  skippedSlots: number;
  /** Datagrams on the probe socket that were no valid reply. */
  invalid: number;
  /** UDP sends the kernel refused (no route, ...). */
  sendErrors: number;
  neighborRequests: number;
  neighborRecords: number;
  /** Neighbour requests the packet socket refused (link down, ...). */
  neighborSendErrors: number;
  /** Frames the ARP/NDP decoders refused (never fatal). */
  frameErrors: number;
  /** Receive errors of the packet socket (e.g. ENOBUFS). */
  receiveErrors: number;
  /** Records not kept because of maxRecords. */
  dropped: number;
  /** Timer ticks, and the longest time between two (ms): the timing resolution actually achieved. */
  ticks: number;
  maxTickGapMs: number;
  /** Ticks later than the catch-up limit, recorded as stalls. */
  stalls: number;
  startedAt: number;
  /** NaN while running. */
  stoppedAt: number;
  /** Probes per second over the run so far. */
  ratePerS: number;
  /** CPU time this process used since start (ms). */
  cpuUserMs: number;
  cpuSystemMs: number;
}

/** What the prober resolved at start. */
export interface ProberInfo {
  target: string;
  family: IpFamily;
  port: number;
  interface: string;
  ifindex: number;
  /** This host's MAC on the interface. */
  mac: string;
  /** Who sends the neighbour requests, from which MAC and address; source undefined when only listening. */
  neighborIdentity: NeighborIdentity;
  neighborMac: string;
  source: string | undefined;
  intervalMs: number;
  neighborProbeIntervalMs: number;
  startedAt: number;
}

/** Ticks per probe interval, at least: slot times are met within a quarter interval, or 1 ms. */
const TICKS_PER_INTERVAL = 4;
/** Stall limit: a tick later than this (ms, or 3 ticks) skips slots instead of bursting, and is recorded. */
const MIN_STALL_MS = 3;
/** Longest wait in stop() for replies still in flight (ms). */
const MAX_DRAIN_MS = 200;
/** Receive buffer of the packet socket: any frame fits (ARP/ND are < 100 bytes, but the MTU may be 9000). */
const FRAME_BUFFER_BYTES = 65536;
/** Socket buffers: a stalled loop must not lose the replies that queue meanwhile. */
const SOCKET_BUFFER_BYTES = 1 << 20;

function checkRange(name: string, value: number, min: number, max: number, allowZero = false): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || ((value < min || value > max) && !(allowZero && value === 0))) {
    throw new RangeError(`${name} must be ${allowZero ? '0 or ' : ''}${min}..${max}, got ${String(value)}`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function inPrefix(address: Uint8Array, network: Uint8Array, prefixLength: number): boolean {
  if (address.length !== network.length) return false;
  let bits = prefixLength;
  for (let i = 0; i < address.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i]! & mask) !== (network[i]! & mask)) return false;
  }
  return true;
}

/**
 * The address to send neighbour requests from: usable (not tentative, not
 * failed DAD), not the target itself, in the target's subnet when one is;
 * for IPv6 a global address before a link-local one.
 */
export function chooseSourceAddress(addresses: readonly Address[], target: Uint8Array): string | undefined {
  const usable = addresses
    .map((a) => ({ a, bytes: parseIp(a.address)?.bytes }))
    .filter(({ a, bytes }) => bytes && bytes.length === target.length && !a.flags.tentative && !a.flags.dadfailed && !sameBytes(bytes, target));
  const score = ({ a, bytes }: { a: Address; bytes?: Uint8Array }): number =>
    (inPrefix(bytes!, target, a.prefixLength) ? 2 : 0) + (a.scope === 0 ? 1 : 0);
  usable.sort((x, y) => score(y) - score(x));
  return usable[0]?.a.address;
}

/**
 * A running prober. Start with {@link Prober.start}; end with
 * {@link Prober.stop} (waits briefly for replies in flight) or
 * {@link Prober.close} (at once). Either releases every socket and timer.
 */
export class Prober {
  /** What was resolved at start. */
  readonly info: ProberInfo;
  /** The timeline so far (live arrays; copy before keeping it past stop if you mutate). */
  readonly record: ProbeRecord = { replies: [], neighbors: [], lost: [], stalls: [] };
  /** Resolves with the timeline once the prober has stopped, by stop(), close() or durationMs. */
  readonly done: Promise<ProbeRecord>;

  private readonly options: ProberOptions;
  private readonly targetBytes: Uint8Array;
  /** This host's MAC and the neighbour requests' one: what they claim is not another holder. */
  private readonly ourMacs: Uint8Array[];
  private readonly udp: dgram.Socket;
  private readonly packet: NativeSocket;
  private readonly frameBuffer = Buffer.alloc(FRAME_BUFFER_BYTES);
  private readonly neighborRequest: Buffer | undefined;
  private readonly counters: Omit<ProberStats, 'ratePerS' | 'cpuUserMs' | 'cpuSystemMs' | 'startedAt' | 'stoppedAt'> = {
    sent: 0, replies: 0, duplicates: 0, late: 0, lost: 0, skippedSlots: 0, invalid: 0, sendErrors: 0,
    neighborRequests: 0, neighborRecords: 0, neighborSendErrors: 0, frameErrors: 0, receiveErrors: 0, dropped: 0,
    ticks: 0, maxTickGapMs: 0, stalls: 0,
  };
  private readonly startNs: bigint;
  private readonly cpuAtStart = process.cpuUsage();
  private readonly maxRecords: number;
  /** Timer period: 1 ms (Node's finest) up to a quarter of the shortest interval. */
  private readonly tickMs: number;
  private readonly stallMs: number;
  private readonly lossTimeoutNs: bigint;
  /** Unanswered probes: seq → send time (ns). Insertion order is send order, so the oldest come first. */
  private readonly pending = new Map<number, bigint>();
  /** Answered and lost sequence numbers are all below nextSeq; `answered` tells duplicates from late ones. */
  private readonly answered = new Set<number>();
  private nextSeq = 0;
  private probeSlots = 0;
  private neighborSlots = 0;
  private lastTickNs: bigint;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<ProbeRecord> | undefined;
  private finished = false;
  private stoppedAt = NaN;
  private resolveDone!: (record: ProbeRecord) => void;
  private readonly onSent = (error: Error | null): void => {
    if (error) this.counters.sendErrors++;
  };

  private constructor(options: ProberOptions, info: ProberInfo, targetBytes: Uint8Array, ourMacs: Uint8Array[],
    udp: dgram.Socket, packet: NativeSocket, neighborRequest: Buffer | undefined, startNs: bigint) {
    this.options = options;
    this.info = info;
    this.targetBytes = targetBytes;
    this.ourMacs = ourMacs;
    this.udp = udp;
    this.packet = packet;
    this.neighborRequest = neighborRequest;
    this.startNs = startNs;
    this.lastTickNs = startNs;
    this.maxRecords = options.maxRecords ?? 1_000_000;
    const shortest = Math.min(info.intervalMs, info.neighborProbeIntervalMs > 0 ? info.neighborProbeIntervalMs : Infinity);
    this.tickMs = Math.max(1, Math.floor(shortest / TICKS_PER_INTERVAL));
    this.stallMs = Math.max(MIN_STALL_MS, 3 * this.tickMs);
    this.lossTimeoutNs = BigInt(Math.round((options.lossTimeoutMs ?? 1000) * 1e6));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /**
   * Resolves the interface and source address, opens the sockets and starts
   * probing. Throws RangeError for bad options or an unknown interface, and
   * Error when neighbour probing needs a source address and the interface has
   * none of the target's family.
   */
  static async start(options: ProberOptions): Promise<Prober> {
    const parsed = typeof options.target === 'string' ? parseIp(options.target) : undefined;
    if (!parsed) throw new RangeError(`target must be an IPv4 or IPv6 address, got ${String(options.target)}`);
    checkRange('port', options.port, 1, 65535);
    const intervalMs = options.intervalMs ?? 1;
    checkRange('intervalMs', intervalMs, 0.5, 100);
    const neighborProbeIntervalMs = options.neighborProbeIntervalMs ?? 1;
    checkRange('neighborProbeIntervalMs', neighborProbeIntervalMs, 0.5, 10_000, true);
    if (options.durationMs !== undefined) checkRange('durationMs', options.durationMs, 1, 7 * 24 * 3600_000);
    if (options.lossTimeoutMs !== undefined) checkRange('lossTimeoutMs', options.lossTimeoutMs, 1, 60_000);
    if (options.maxRecords !== undefined) checkRange('maxRecords', options.maxRecords, 0, 1e8);
    const ifname = options.interface ?? 'eth0';
    const { family, bytes: targetBytes } = parsed;

    const identity = options.neighborIdentity ?? 'phantom';
    if (identity !== 'phantom' && identity !== 'own') throw new RangeError(`neighborIdentity must be 'phantom' or 'own', got ${String(identity)}`);
    let ifindex: number;
    let mac: string | null;
    let ownAddresses: Address[] = [];
    {
      using nl = new Netlink();
      ({ index: ifindex, mac } = nl.linkGetSync(ifname));
      if (neighborProbeIntervalMs > 0 && identity === 'own' && options.source === undefined) {
        ownAddresses = nl.addrListSync({ link: ifindex, family });
      }
    }
    const macBytes = mac ? parseMac(mac) : undefined;
    if (!macBytes) throw new RangeError(`interface ${ifname} has no Ethernet MAC address`);
    const neighborMac = identity === 'phantom' ? phantomMac(macBytes) : macBytes;
    let source: string | undefined;
    let neighborRequest: Buffer | undefined;
    if (neighborProbeIntervalMs > 0) {
      source =
        options.source ??
        (identity === 'phantom' ? formatIp(phantomAddress(neighborMac, targetBytes)) : chooseSourceAddress(ownAddresses, targetBytes));
      if (source === undefined) {
        throw new Error(`${ifname} has no usable IPv${family} address to send neighbour requests from; pass source, or neighborProbeIntervalMs: 0`);
      }
      const sourceBytes = parseIp(source)?.bytes;
      if (!sourceBytes || sourceBytes.length !== targetBytes.length) throw new RangeError(`source must be an IPv${family} address, got ${source}`);
      neighborRequest =
        family === 4 ? arpRequest(neighborMac, sourceBytes, targetBytes) : neighborSolicitation(neighborMac, sourceBytes, targetBytes);
    }

    // The packet socket first: it throws synchronously (EPERM without
    // CAP_NET_RAW), before anything asynchronous needs undoing. Bound to the
    // family's EtherType; the ARP/ND filter drops the rest of IPv6 in the
    // kernel; our own requests are not looped back (PACKET_IGNORE_OUTGOING).
    const Socket = native().Socket;
    const packet = new Socket('packet', {
      ifindex,
      protocol: family === 4 ? ETHERTYPE_ARP : ETHERTYPE_IPV6,
      filter: neighborDiscoveryFilter(),
      ignoreOutgoing: true,
      op: 'prober',
    });
    const udp = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', recvBufferSize: SOCKET_BUFFER_BYTES });
    try {
      await bindSocket(udp, 0, family === 4 ? '0.0.0.0' : '::');
    } catch (e) {
      packet.close();
      await closeSocket(udp);
      throw e;
    }
    const startNs = process.hrtime.bigint();
    const info: ProberInfo = {
      target: options.target,
      family,
      port: options.port,
      interface: ifname,
      ifindex,
      mac: formatMac(macBytes),
      neighborIdentity: identity,
      neighborMac: formatMac(neighborMac),
      source,
      intervalMs,
      neighborProbeIntervalMs,
      startedAt: Number(startNs) / 1e6,
    };
    const prober = new Prober(options, info, targetBytes, [macBytes, neighborMac], udp, packet, neighborRequest, startNs);
    prober.begin();
    return prober;
  }

  private begin(): void {
    this.udp.on('message', (datagram) => this.onDatagram(datagram));
    // Without a listener an asynchronous socket error would be thrown; count it instead.
    this.udp.on('error', () => this.counters.sendErrors++);
    this.packet.startReading(this.frameBuffer, (length) => this.onFrame(length));
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.tick(); // slot 0 goes out now, not a tick later
  }

  /** Counters so far, with the rate and this process's CPU use since start. */
  get stats(): ProberStats {
    const endNs = Number.isNaN(this.stoppedAt) ? process.hrtime.bigint() : BigInt(Math.round(this.stoppedAt * 1e6));
    const elapsedS = Number(endNs - this.startNs) / 1e9;
    const cpu = process.cpuUsage(this.cpuAtStart);
    return {
      ...this.counters,
      startedAt: this.info.startedAt,
      stoppedAt: this.stoppedAt,
      ratePerS: elapsedS > 0 ? this.counters.sent / elapsedS : 0,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
    };
  }

  /** True until stop() or close() began. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  private tick(): void {
    const nowNs = process.hrtime.bigint();
    const gapMs = Number(nowNs - this.lastTickNs) / 1e6;
    this.counters.ticks++;
    if (gapMs > this.counters.maxTickGapMs) this.counters.maxTickGapMs = gapMs;
    if (gapMs > this.stallMs) {
      // The loop did not run: replies that came meanwhile get this tick's time. Analysis takes it out of gaps.
      const stall: ProberStall = { from: Number(this.lastTickNs) / 1e6, to: Number(nowNs) / 1e6 };
      this.counters.stalls++;
      this.keep(this.record.stalls, stall);
      this.options.onStall?.(stall);
    }
    this.lastTickNs = nowNs;
    const elapsedMs = Number(nowNs - this.startNs) / 1e6;
    if (this.options.durationMs !== undefined && elapsedMs >= this.options.durationMs) {
      void this.stop();
      return;
    }

    // UDP probes: every slot start + k × interval that has come, within the catch-up limit.
    const intervalMs = this.info.intervalMs;
    const due = Math.floor(elapsedMs / intervalMs) + 1;
    const maxBurst = Math.max(1, Math.ceil(this.stallMs / intervalMs));
    if (due - this.probeSlots > maxBurst) {
      this.counters.skippedSlots += due - this.probeSlots - 1;
      this.probeSlots = due - 1;
    }
    for (; this.probeSlots < due; this.probeSlots++) this.sendProbe(nowNs);

    // Neighbour requests: at most one per tick; a request repeated at once would only be answered twice.
    if (this.neighborRequest) {
      const neighborDue = Math.floor(elapsedMs / this.info.neighborProbeIntervalMs) + 1;
      if (neighborDue > this.neighborSlots) {
        this.neighborSlots = neighborDue;
        this.sendNeighborRequest();
      }
    }

    this.expireLost(nowNs);
  }

  private sendProbe(nowNs: bigint): void {
    const seq = this.nextSeq;
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    this.pending.set(seq, nowNs);
    // A fresh 12-byte buffer per probe: dgram may still hold the previous one when the send is queued.
    this.udp.send(encodeProbe(seq, nowNs), this.options.port, this.info.target, this.onSent);
    this.counters.sent++;
  }

  private sendNeighborRequest(): void {
    try {
      this.packet.send(this.neighborRequest!);
      this.counters.neighborRequests++;
    } catch {
      this.counters.neighborSendErrors++; // ENETDOWN while the link is down, ENOBUFS: keep probing
    }
  }

  /** Probes older than the loss timeout are lost; `pending` is in send order, so stop at the first young one. */
  private expireLost(nowNs: bigint): void {
    const cutoff = nowNs - this.lossTimeoutNs;
    for (const [seq, sentNs] of this.pending) {
      if (sentNs > cutoff) break;
      this.markLost(seq, sentNs);
    }
  }

  private markLost(seq: number, sentNs: bigint): void {
    this.pending.delete(seq);
    this.counters.lost++;
    const sentAt = Number(sentNs) / 1e6;
    this.keep(this.record.lost, { seq, sentAt });
    this.options.onLost?.(seq, sentAt);
  }

  private keep<T>(list: T[], item: T): void {
    if (this.options.retain === false) return;
    if (list.length < this.maxRecords) list.push(item);
    else this.counters.dropped++;
  }

  private onDatagram(datagram: Buffer): void {
    const nowNs = process.hrtime.bigint();
    const reply = decodeEchoReply(datagram);
    if (!reply || reply.seq >= this.nextSeq) {
      this.counters.invalid++;
      return;
    }
    const pendingSentNs = this.pending.get(reply.seq);
    if (pendingSentNs !== undefined) {
      // The send time must be ours, not just any bytes that decode.
      if (pendingSentNs !== reply.sentAtNs) {
        this.counters.invalid++;
        return;
      }
      this.pending.delete(reply.seq);
      this.answered.add(reply.seq);
    } else {
      if (reply.sentAtNs < this.startNs || reply.sentAtNs > nowNs) {
        this.counters.invalid++;
        return;
      }
      if (this.answered.has(reply.seq)) this.counters.duplicates++;
      else {
        this.counters.late++;
        this.answered.add(reply.seq);
      }
    }
    this.counters.replies++;
    // `answered` only needs sequence numbers that can still be answered twice; keep it bounded.
    if (this.answered.size > 4096) this.trimAnswered();
    const record: ProbeReply = {
      seq: reply.seq,
      sentAt: Number(reply.sentAtNs) / 1e6,
      rttMs: Number(nowNs - reply.sentAtNs) / 1e6,
      responder: reply.responder,
    };
    this.keep(this.record.replies, record);
    this.options.onReply?.(record);
  }

  private trimAnswered(): void {
    let excess = this.answered.size - 2048;
    for (const seq of this.answered) {
      if (excess-- <= 0) break;
      this.answered.delete(seq);
    }
  }

  private onFrame(length: number): void {
    const at = Number(process.hrtime.bigint()) / 1e6;
    if (length < 0) {
      this.counters.receiveErrors++;
      return;
    }
    const frame = this.frameBuffer.subarray(0, length);
    let mac: Uint8Array | undefined;
    let kind: NeighborKind | undefined;
    try {
      if (this.info.family === 4) {
        const arp = decodeArp(frame);
        if (sameBytes(arp.senderIp, this.targetBytes)) {
          mac = arp.senderMac;
          kind = arp.operation === 'reply' ? 'reply' : isGratuitousArp(arp) ? 'announcement' : 'request';
        }
      } else {
        const ndp = decodeNdp(frame);
        if (ndp.type === 'na' && sameBytes(ndp.target, this.targetBytes)) {
          mac = ndp.targetLinkLayer ?? ndp.ethSource;
          kind = ndp.flags.solicited ? 'reply' : 'announcement';
        } else if (ndp.type === 'ns' && sameBytes(ndp.ipSource, this.targetBytes)) {
          mac = ndp.sourceLinkLayer ?? ndp.ethSource;
          kind = 'request';
        }
      }
    } catch {
      // The filter lets through frames the decoders reject (bad checksum,
      // truncated): a stranger's broken frame must not stop the prober.
      this.counters.frameErrors++;
      return;
    }
    if (!mac || !kind || this.ourMacs.some((ours) => sameBytes(mac, ours))) return;
    this.counters.neighborRecords++;
    const record: NeighborRecord = { at, mac: formatMac(mac), kind };
    this.keep(this.record.neighbors, record);
    this.options.onNeighbor?.(record);
  }

  /**
   * Stops probing, waits for the replies still in flight (at most the loss
   * timeout, and 200 ms), declares the rest lost, and closes everything.
   * Resolves with the timeline; a second call returns the same promise.
   */
  stop(): Promise<ProbeRecord> {
    if (this.stopping) return this.stopping;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stoppedAt = Number(process.hrtime.bigint()) / 1e6;
    const drainMs = Math.min(MAX_DRAIN_MS, this.options.lossTimeoutMs ?? 1000);
    this.stopping = new Promise<void>((resolve) => {
      const deadline = Date.now() + drainMs;
      const poll = (): void => {
        if (this.finished || this.pending.size === 0 || Date.now() >= deadline) resolve();
        else setTimeout(poll, 2);
      };
      poll();
    }).then(() => this.finish());
    return this.stopping;
  }

  /** Stops at once: unanswered probes are lost, sockets and timer closed. Idempotent. */
  close(): void {
    if (!this.stopping) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.stoppedAt = Number(process.hrtime.bigint()) / 1e6;
      this.stopping = Promise.resolve(this.record);
    }
    this.finish(); // also cuts a stop() that is still waiting for replies short
  }

  private finish(): ProbeRecord {
    if (this.finished) return this.record;
    this.finished = true;
    for (const [seq, sentNs] of this.pending) this.markLost(seq, sentNs);
    this.packet.close(); // stops the uv_poll handle, then closes the fd
    void closeSocket(this.udp);
    this.resolveDone(this.record);
    return this.record;
  }
}

/**
 * The made-up MAC of the neighbour requests: ours with the top bit of the
 * first byte flipped, marked locally administered and unicast (IEEE 802
 * U/L and I/G bits), so it differs from ours and from any vendor MAC.
 */
export function phantomMac(mac: Uint8Array): Uint8Array {
  const out = Uint8Array.from(mac);
  out[0] = ((mac[0]! ^ 0x80) | 0x02) & 0xfe;
  return out;
}

/**
 * The made-up address for a made-up MAC, in the target's own subnet so the
 * probing stays inside the network under test: IPv4 the target's /24 with
 * host .254; IPv6 the target's /64 with the modified EUI-64 interface
 * identifier of the MAC (RFC 4291 Appendix A), as a host with that MAC
 * would configure itself. Nobody holds either.
 */
export function phantomAddress(mac: Uint8Array, target: Uint8Array): Uint8Array {
  if (target.length === 4) return Uint8Array.from([target[0]!, target[1]!, target[2]!, 254]);
  return Uint8Array.from([...target.subarray(0, 8), mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!]);
}

/** The ARP request "who has target, tell source" (RFC 826), broadcast from `mac`. */
function arpRequest(mac: Uint8Array, source: Uint8Array, target: Uint8Array): Buffer {
  return encodeArp({
    operation: 'request',
    ethDestination: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ethSource: mac,
    senderMac: mac,
    senderIp: source,
    targetMac: new Uint8Array(6), // unknown yet: what we ask for
    targetIp: target,
  });
}

/**
 * The Neighbor Solicitation of address resolution (RFC 4861 §7.2.2): to the
 * target's solicited-node group, from our address, with a Source
 * Link-Layer Address option so that the holder can answer without resolving
 * us first (§4.3).
 */
function neighborSolicitation(mac: Uint8Array, source: Uint8Array, target: Uint8Array): Buffer {
  const group = solicitedNodeMulticast(target);
  return encodeNdp({
    type: 'ns',
    ethDestination: ipv6MulticastMac(group),
    ethSource: mac,
    trafficClass: 0,
    flowLabel: 0,
    ipSource: source,
    ipDestination: group,
    hopLimit: NDP_HOP_LIMIT,
    target,
    flags: { router: false, solicited: false, override: false },
    sourceLinkLayer: mac,
  });
}
