/**
 * Address conflict detection on one interface (RFC 5227 for IPv4, RFC 4862
 * §5.4 Duplicate Address Detection for IPv6):
 *
 * - **Watch** the addresses this host holds: an ARP packet whose sender IP is
 *   one of them, or a Neighbor Advertisement whose target is one of them,
 *   from another MAC, means another host claims it (RFC 5227 §2.4, "Ongoing
 *   Address Conflict Detection"; RFC 4861 §7.2.5 for the NA). Each is a
 *   `'conflict'` event, after the defend policy acted on it.
 * - **Probe** watched addresses periodically (option `probeIntervalMs`): a
 *   host that holds the address too but never announces it (a stale holder
 *   whose daemon died, a hand-configured address) still answers an ARP probe
 *   (the Linux kernel replies to it, arp_process() in net/ipv4/arp.c) and a
 *   DAD Neighbor Solicitation (it defends with an NA to ff02::1, RFC 4861
 *   §7.2.4), so it is noticed within one probe interval.
 * - **Probe before claiming** ({@link ConflictDetector.probe}): RFC 5227
 *   §2.1.1 ARP probes / RFC 4862 §5.4.2 DAD NS, then a bounded wait.
 *
 * The kernel keeps defending the addresses it holds on its own (answering
 * probes and DAD NS), so another host's probe for one of ours is not a
 * conflict here: it is the other host's conflict.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { formatIp, formatMac, parseIp } from '../ip.js';
import type { LinkRef } from '../netlink/address.js';
import { encodeArpProbe, encodeGratuitousArp } from './arp.js';
import { systemClock, type AnnounceLink, type AnnouncerClock } from './announcer.js';
import { LinkSocket, type LinkFrame } from './link-socket.js';
import { encodeDadNeighborSolicitation, encodeUnsolicitedNeighborAdvertisement } from './ndp.js';

/**
 * What to do when another host claims a held address (RFC 5227 §2.4):
 * - `'stop'` — (a): cease using it: action `'release'`.
 * - `'defend-once'` — (b): defend with one announcement (action
 *   `'defended'`); a second conflict within `defendIntervalMs` of the
 *   defended one: `'release'`.
 * - `'defend-always'` — (c): defend every time, at most once per
 *   `defendIntervalMs` (action `'defended'`, or `'ignored'` within the
 *   interval). Only for an address this host must keep (RFC 5227 §2.4 warns
 *   that two hosts doing this loop forever).
 */
export type DefendPolicy = 'stop' | 'defend-once' | 'defend-always';

/** RFC 5227 §1.1 DEFEND_INTERVAL: 10 seconds. */
export const DEFEND_INTERVAL_MS = 10_000;

/** What the detector did about a conflict. */
export type ConflictAction = 'release' | 'defended' | 'ignored';

/** A `'conflict'` event. */
export interface ConflictEvent {
  /** The held address another host claims (canonical text). */
  address: string;
  /** The other host's MAC (ARP sender hardware address; NA target link-layer option, else Ethernet source). */
  mac: string;
  /** What carried the claim. */
  via: 'arp' | 'na';
  /**
   * `'release'`: stop using the address now (the detector stopped watching
   * it); `'defended'`: one announcement was sent; `'ignored'`: defended
   * recently, nothing sent.
   */
  action: ConflictAction;
}

/** Result of {@link ConflictDetector.probe}. */
export type ProbeResult = { inUse: false } | { inUse: true; /** The user's MAC. */ mac: string };

/** Options of {@link ConflictDetector.probe}. */
export interface ProbeOptions {
  /**
   * Probes to send (RFC 5227 PROBE_NUM is 3; RFC 4862 DupAddrDetectTransmits
   * defaults to 1). Default 3. 1..100.
   */
  count?: number;
  /**
   * Between probes. Default 10 ms: on a LAN the defender's answer takes
   * microseconds; RFC 5227 asks for 1–2 s (PROBE_MIN/PROBE_MAX) to cover
   * slow hosts and links. 0..60000.
   */
  intervalMs?: number;
  /** After the last probe (RFC 5227 ANNOUNCE_WAIT is 2 s; RFC 4862 RetransTimer 1 s). Default 20 ms. 0..60000. */
  waitMs?: number;
}

/** The socket a detector uses: a receive {@link LinkSocket} (injectable for tests). */
export interface ConflictSocket extends AnnounceLink {
  onFrame(listener: (frame: LinkFrame) => void): () => void;
}

/** Options of a {@link ConflictDetector}. */
export interface ConflictDetectorOptions {
  /** Interface name or index. */
  link: LinkRef;
  /** Network namespace (path or fd). Default: the caller's. */
  netns?: string | number;
  /** Default 'defend-once' (RFC 5227 §2.4 (b)). */
  policy?: DefendPolicy;
  /** RFC 5227 DEFEND_INTERVAL. Default 10000. */
  defendIntervalMs?: number;
  /** Probe each watched address this often; first probe when it is watched. 0 (default) = never. */
  probeIntervalMs?: number;
  /** IPv6 defense NA's Router flag; default the interface's IPv6 forwarding. */
  router?: boolean;
  /** Timers and time; default the real, unref'd ones. */
  clock?: AnnouncerClock;
  /**
   * An open receive socket on the interface to use instead of opening one
   * (the caller keeps ownership: close() does not close it).
   */
  socket?: ConflictSocket;
}

/** Events of a {@link ConflictDetector}. */
export interface ConflictDetectorEvents {
  conflict: [ConflictEvent];
  /** A failed send (defense or periodic probe). Emitted only when listened to; always counted. */
  error: [unknown];
}

/** Counters of a detector. */
export interface ConflictDetectorStats {
  /** Conflicts seen on watched addresses. */
  conflicts: number;
  /** Announcements sent in defense. */
  defenses: number;
  /** Probes sent (periodic and by probe()). */
  probesSent: number;
  /** Sends that failed. */
  sendErrors: number;
}

/** A claim on an address carried by one frame: the address's bytes, the claimant's MAC, and how. */
export interface Claim {
  address: Uint8Array;
  mac: Uint8Array;
  via: 'arp' | 'na';
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The address a frame claims for its sender, if any (pure):
 * - ARP (request or reply) with a sender IP other than 0.0.0.0: that IP, at
 *   the sender hardware address (RFC 5227 §2.4: "an ARP packet ... where the
 *   'sender IP address' is (one of) the host's own IP address");
 * - NA: the target, at the target link-layer address option, else the
 *   Ethernet source (RFC 4861 §4.4: the option is required on multicast NAs
 *   over Ethernet, and the Ethernet source is the sender).
 * An NS claims nothing: a DAD NS is a question, and a resolution NS from
 * our address would also carry our address as source only if sent by us.
 */
export function claimOf(frame: LinkFrame): Claim | undefined {
  if (frame.kind === 'arp') {
    const p = frame.packet;
    if (isZero(p.senderIp)) return undefined;
    return { address: p.senderIp, mac: p.senderMac, via: 'arp' };
  }
  const p = frame.packet;
  if (p.type !== 'na') return undefined;
  return { address: p.target, mac: p.targetLinkLayer ?? p.ethSource, via: 'na' };
}

/**
 * Whether a frame shows `address` in use by another host while we probe it
 * (pure); the other host's MAC, or undefined.
 * - IPv4 (RFC 5227 §2.1.1): any ARP whose sender IP is the address; or an
 *   ARP probe for the address (another host probing at the same time).
 * - IPv6 (RFC 4862 §5.4.3, §5.4.4): an NA for the address; or a DAD NS for
 *   it from another host (not carrying our own `nonce`, RFC 7527).
 * Frames from `ourMac` never count (our own, looped back).
 */
export function probeConflict(frame: LinkFrame, address: Uint8Array, ourMac: Uint8Array, nonce?: Uint8Array): Uint8Array | undefined {
  if (frame.kind === 'arp') {
    if (address.length !== 4) return undefined;
    const p = frame.packet;
    if (equal(p.senderMac, ourMac)) return undefined;
    if (equal(p.senderIp, address)) return p.senderMac;
    if (isZero(p.senderIp) && p.operation === 'request' && equal(p.targetIp, address)) return p.senderMac;
    return undefined;
  }
  if (address.length !== 16) return undefined;
  const p = frame.packet;
  if (!equal(p.target, address)) return undefined;
  if (p.type === 'na') {
    const mac = p.targetLinkLayer ?? p.ethSource;
    return equal(mac, ourMac) ? undefined : mac;
  }
  if (!isZero(p.ipSource) || equal(p.ethSource, ourMac)) return undefined;
  if (nonce && p.nonce && equal(p.nonce, nonce)) return undefined;
  return p.ethSource;
}

/** Per-address defend state. */
export interface DefendState {
  /** When the last defended conflict was recorded (defend-once), or undefined. */
  lastConflictAt: number | undefined;
  /** When the last defense was sent (defend-always), or undefined. */
  lastDefendedAt: number | undefined;
}

/**
 * The RFC 5227 §2.4 decision for one conflict at time `now` (pure): the
 * action, and the state to keep.
 */
export function decideDefense(policy: DefendPolicy, state: DefendState, now: number, defendIntervalMs: number): { action: ConflictAction; state: DefendState } {
  switch (policy) {
    case 'stop':
      return { action: 'release', state };
    case 'defend-once':
      // (b): defend if no conflict was recorded within DEFEND_INTERVAL, recording
      // this one; another within DEFEND_INTERVAL of it: cease using the address.
      if (state.lastConflictAt !== undefined && now - state.lastConflictAt < defendIntervalMs) return { action: 'release', state };
      return { action: 'defended', state: { lastConflictAt: now, lastDefendedAt: now } };
    case 'defend-always':
      // (c): defend, but not if already defended within DEFEND_INTERVAL.
      if (state.lastDefendedAt !== undefined && now - state.lastDefendedAt < defendIntervalMs) return { action: 'ignored', state };
      return { action: 'defended', state: { lastConflictAt: now, lastDefendedAt: now } };
    default:
      throw new RangeError(`policy must be 'stop', 'defend-once' or 'defend-always', got ${String(policy)}`);
  }
}

interface Watched {
  text: string;
  bytes: Uint8Array;
  defend: DefendState;
  timer: unknown;
}

interface ActiveProbe {
  bytes: Uint8Array;
  nonce: Uint8Array | undefined;
  settle(result: ProbeResult | Error): void;
}

function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function parseAddress(address: string): { text: string; bytes: Uint8Array } {
  const parsed = typeof address === 'string' ? parseIp(address) : undefined;
  if (!parsed) throw new RangeError(`address must be an IPv4 or IPv6 address text, got ${JSON.stringify(address)}`);
  return { text: formatIp(parsed.bytes), bytes: parsed.bytes };
}

/**
 * Watches one interface for other hosts claiming this host's addresses, and
 * probes addresses before they are claimed. Holds one receive socket
 * ({@link LinkSocket}), which keeps the process alive until {@link close}.
 *
 * @example
 * ```ts
 * using detector = new ConflictDetector({ link: 'eth0', probeIntervalMs: 1000 });
 * if ((await detector.probe('198.51.100.7')).inUse) throw new Error('taken');
 * // add the address, announce it, then:
 * detector.watch('198.51.100.7');
 * detector.on('conflict', (c) => { if (c.action === 'release') release(c.address); });
 * ```
 */
export class ConflictDetector extends EventEmitter<ConflictDetectorEvents> implements Disposable {
  /** Counters; see {@link ConflictDetectorStats}. */
  readonly stats: ConflictDetectorStats = { conflicts: 0, defenses: 0, probesSent: 0, sendErrors: 0 };
  private readonly socket: ConflictSocket;
  private readonly ownsSocket: boolean;
  private readonly policy: DefendPolicy;
  private readonly defendIntervalMs: number;
  private readonly probeIntervalMs: number;
  private readonly router: boolean;
  private readonly clock: AnnouncerClock;
  private readonly watched = new Map<string, Watched>();
  private readonly probes = new Set<ActiveProbe>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(options: ConflictDetectorOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    const policy = options.policy ?? 'defend-once';
    if (policy !== 'stop' && policy !== 'defend-once' && policy !== 'defend-always') {
      throw new RangeError(`policy must be 'stop', 'defend-once' or 'defend-always', got ${String(policy)}`);
    }
    this.policy = policy;
    this.defendIntervalMs = checkInt('defendIntervalMs', options.defendIntervalMs ?? DEFEND_INTERVAL_MS, 0, 24 * 3600 * 1000);
    this.probeIntervalMs = checkInt('probeIntervalMs', options.probeIntervalMs ?? 0, 0, 24 * 3600 * 1000);
    if (options.router !== undefined && typeof options.router !== 'boolean') throw new TypeError(`router must be a boolean, got ${String(options.router)}`);
    this.clock = options.clock ?? systemClock;
    if (options.socket) {
      this.socket = options.socket;
      this.ownsSocket = false;
    } else {
      const { link, netns } = options;
      this.socket = LinkSocket.open(netns === undefined ? { link, receive: true } : { link, netns, receive: true });
      this.ownsSocket = true;
    }
    this.router = options.router ?? this.socket.forwarding.ipv6;
    this.unsubscribe = this.socket.onFrame((frame) => this.onFrame(frame));
  }

  /** The interface's name. */
  get link(): string {
    return this.socket.name;
  }

  /** The interface's MAC (ours: frames from it are never conflicts). */
  get mac(): string {
    return formatMac(this.socket.mac);
  }

  /** The watched addresses (canonical text). */
  watching(): string[] {
    return [...this.watched.keys()];
  }

  /**
   * Starts watching a held address: conflicts on it are acted on by the
   * policy and emitted. With `probeIntervalMs`, probes it now and then
   * periodically. Watching an address again changes nothing.
   */
  watch(address: string): void {
    this.assertOpen();
    const { text, bytes } = parseAddress(address);
    if (this.watched.has(text)) return;
    const w: Watched = { text, bytes, defend: { lastConflictAt: undefined, lastDefendedAt: undefined }, timer: undefined };
    this.watched.set(text, w);
    if (this.probeIntervalMs > 0) this.periodicProbe(w);
  }

  /** Stops watching an address (and probing it). Returns whether it was watched. */
  unwatch(address: string): boolean {
    const parsed = typeof address === 'string' ? parseIp(address) : undefined;
    const w = parsed ? this.watched.get(formatIp(parsed.bytes)) : undefined;
    if (!w) return false;
    this.dropWatch(w);
    return true;
  }

  /**
   * Probes whether `address` is in use on the link before claiming it
   * (RFC 5227 §2.1.1 for IPv4: ARP probes from 0.0.0.0; RFC 4862 §5.4 for
   * IPv6: DAD Neighbor Solicitations from ::, with an RFC 7527 nonce). The
   * first probe is sent before this returns. Resolves `{ inUse: true, mac }`
   * as soon as another host answers, announces the address, or probes for it
   * too; `{ inUse: false }` after `count` probes and `waitMs` more of
   * silence. Bounded: at most `count` frames, and
   * (count − 1) × intervalMs + waitMs of waiting. Rejects when a probe cannot
   * be sent or the detector closes.
   *
   * Note: with MLD snooping, a switch forwards another host's DAD NS to the
   * solicited-node group only to members; this socket does not join it (the
   * defender's NA goes to all-nodes and is always received).
   */
  probe(address: string, options: ProbeOptions = {}): Promise<ProbeResult> {
    try {
      this.assertOpen();
      if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
      const count = checkInt('count', options.count ?? 3, 1, 100);
      const intervalMs = checkInt('intervalMs', options.intervalMs ?? 10, 0, 60_000);
      const waitMs = checkInt('waitMs', options.waitMs ?? 20, 0, 60_000);
      const { bytes } = parseAddress(address);
      const nonce = bytes.length === 16 ? new Uint8Array(randomBytes(6)) : undefined;
      const frame = this.probeFrame(bytes, nonce);
      return new Promise<ProbeResult>((resolve, reject) => {
        let timer: unknown;
        let sent = 0;
        const p: ActiveProbe = {
          bytes,
          nonce,
          settle: (result) => {
            if (!this.probes.delete(p)) return;
            if (timer !== undefined) this.clock.clearTimeout(timer);
            if (result instanceof Error) reject(result);
            else resolve(result);
          },
        };
        this.probes.add(p);
        const sendOne = (): void => {
          timer = undefined;
          if (!this.probes.has(p)) return;
          try {
            this.socket.send(frame);
            this.stats.probesSent++;
          } catch (e) {
            this.stats.sendErrors++;
            p.settle(e instanceof Error ? e : new Error(String(e)));
            return;
          }
          sent++;
          timer = sent < count ? this.clock.setTimeout(sendOne, intervalMs) : this.clock.setTimeout(() => p.settle({ inUse: false }), waitMs);
        };
        sendOne();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Stops watching and probing, rejects pending probes, and closes the socket it opened. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watched.values()]) this.dropWatch(w);
    for (const p of [...this.probes]) p.settle(new Error('ConflictDetector closed'));
    this.unsubscribe();
    if (this.ownsSocket) this.socket.close();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error('ConflictDetector is closed');
  }

  private probeFrame(bytes: Uint8Array, nonce: Uint8Array | undefined): Buffer {
    const mac = this.socket.mac;
    if (bytes.length === 4) return encodeArpProbe({ mac, address: bytes });
    return encodeDadNeighborSolicitation(nonce ? { mac, address: bytes, nonce } : { mac, address: bytes });
  }

  private dropWatch(w: Watched): void {
    if (w.timer !== undefined) this.clock.clearTimeout(w.timer);
    w.timer = undefined;
    if (this.watched.get(w.text) === w) this.watched.delete(w.text);
  }

  private periodicProbe(w: Watched): void {
    w.timer = undefined;
    if (this.watched.get(w.text) !== w) return;
    // No nonce: we hold the address, so no copy of our own NS can look like another prober's.
    this.sendOrReport(this.probeFrame(w.bytes, undefined), () => this.stats.probesSent++);
    w.timer = this.clock.setTimeout(() => this.periodicProbe(w), this.probeIntervalMs);
  }

  private sendOrReport(frame: Buffer, onSent: () => void): void {
    try {
      this.socket.send(frame);
      onSent();
    } catch (e) {
      this.stats.sendErrors++;
      if (this.listenerCount('error') > 0) this.emit('error', e);
    }
  }

  private onFrame(frame: LinkFrame): void {
    for (const p of this.probes) {
      const mac = probeConflict(frame, p.bytes, this.socket.mac, p.nonce);
      if (mac) p.settle({ inUse: true, mac: formatMac(mac) });
    }
    if (this.watched.size === 0) return;
    const claim = claimOf(frame);
    if (!claim || equal(claim.mac, this.socket.mac)) return;
    const w = this.watched.get(formatIp(claim.address));
    if (!w) return;
    this.stats.conflicts++;
    const decision = decideDefense(this.policy, w.defend, this.clock.now(), this.defendIntervalMs);
    w.defend = decision.state;
    if (decision.action === 'release') this.dropWatch(w);
    else if (decision.action === 'defended') this.sendOrReport(this.defenseFrame(w.bytes), () => this.stats.defenses++);
    this.emit('conflict', { address: w.text, mac: formatMac(claim.mac), via: claim.via, action: decision.action });
  }

  /** RFC 5227 §2.4 (b)/(c): "one single ARP Announcement"; for IPv6 the same as an unsolicited NA. */
  private defenseFrame(bytes: Uint8Array): Buffer {
    const mac = this.socket.mac;
    if (bytes.length === 4) return encodeGratuitousArp({ mac, address: bytes, operation: 'request' });
    return encodeUnsolicitedNeighborAdvertisement({ mac, address: bytes, router: this.router });
  }
}
