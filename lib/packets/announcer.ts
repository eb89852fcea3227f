/**
 * Telling the link where an address now lives, after a takeover: gratuitous
 * ARP for IPv4 (RFC 5227 §2.3 announcement as a request, RFC 5944 §4.6 as a
 * reply) and unsolicited Neighbor Advertisements for IPv6 (RFC 4861 §7.2.6),
 * on a schedule per address, paced per interface.
 *
 * The kernel does not announce an address when it is added (arp_notify and
 * ndisc_notify fire on link up and MAC changes only), and a single frame is
 * easily lost or ignored, so each address gets a schedule:
 *
 * 1. a first burst, sent at once (its first frame synchronously inside
 *    {@link Announcer.announce}: the takeover path never waits for a timer;
 *    {@link Announcer.announceAll} sends the repeats from the next timer turn);
 * 2. a second burst some seconds later, for neighbours whose cache was busy
 *    (Linux ignores an update for locktime, neigh/locktime, after the last
 *    one — except for gratuitous ARP, arp_process() in net/ipv4/arp.c) and
 *    for switches whose port was still coming up;
 * 3. optionally, periodic refreshes, until the address is cancelled.
 *
 * Defaults follow keepalived (garp_master_repeat 5, garp_master_delay 5 s,
 * garp_master_refresh off): 5 announcements now, 5 more after 5 s. Each
 * IPv4 announcement is a request followed by a reply by default, because
 * some switches and hosts learn only from replies (DESIGN.md).
 *
 * Per-interface pacing is a token bucket: announcing 1000 addresses does not
 * flood a switch's control plane, and the first frame of each new
 * announcement goes ahead of queued repeats, so every address gets its
 * first announcement as early as the pacing allows.
 */
import { parseIp } from '../ip.js';
import type { LinkRef } from '../netlink/address.js';
import { encodeGratuitousArp, type ArpOperation } from './arp.js';
import { LinkSocket } from './link-socket.js';
import { encodeUnsolicitedNeighborAdvertisement } from './ndp.js';

/**
 * Timers and time for the announcer (and the conflict detector): inject a
 * fake one to test schedules without waiting. Times are milliseconds.
 */
export interface AnnouncerClock {
  /** Calls `callback` once after `ms`. Must not keep the process alive (unref). */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer returned by {@link setTimeout}. */
  clearTimeout(handle: unknown): void;
  /** A monotonic time in ms. */
  now(): number;
}

/**
 * The real clock: Node timers, unref'd so that a pending announcement never
 * keeps the process alive, and performance.now() (monotonic).
 */
export const systemClock: AnnouncerClock = Object.freeze({
  setTimeout(callback: () => void, ms: number): unknown {
    const t = setTimeout(callback, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
  now(): number {
    return performance.now();
  },
});

/** Which gratuitous ARP form(s) an IPv4 announcement sends. */
export type ArpMode = 'request' | 'reply' | 'both';

/**
 * The schedule of one address's announcements. An "announcement" is one
 * round: for IPv6 one unsolicited NA; for IPv4 one gratuitous ARP request,
 * one reply, or (arpMode 'both') a request then a reply.
 */
export interface AnnounceSchedule {
  /** Announcements sent at once. Default 5 (keepalived's garp_master_repeat). 1..100. */
  burst: number;
  /** Delay between the announcements of a burst; 0 (default) = back to back, all inside announce(). */
  burstSpacingMs: number;
  /** Delay from announce() to the second burst. Default 5000 (keepalived's garp_master_delay). */
  secondBurstDelayMs: number;
  /** Announcements of the second burst; 0 = none. Default 5. 0..100. */
  secondBurst: number;
  /** Period of a one-announcement refresh after the bursts; 0 (default) = none (keepalived's garp_master_refresh). */
  refreshIntervalMs: number;
  /** IPv4: 'request', 'reply', or 'both' (default: request then reply). */
  arpMode: ArpMode;
}

/** The default schedule: 5 announcements now, 5 more after 5 s, no refresh, ARP request then reply. */
export const DEFAULT_ANNOUNCE_SCHEDULE: Readonly<AnnounceSchedule> = Object.freeze({
  burst: 5,
  burstSpacingMs: 0,
  secondBurstDelayMs: 5000,
  secondBurst: 5,
  refreshIntervalMs: 0,
  arpMode: 'both',
});

/** Per-interface pacing: a token bucket. */
export interface AnnouncerPacing {
  /** Sustained rate. Default 2000 frames/s. */
  framesPerSecond?: number;
  /** Bucket size: frames that may go back to back after a quiet period. Default 100. */
  burstFrames?: number;
}

/**
 * Default pacing: 100 frames at once, then 2000 frames/s per interface.
 * One address with the default schedule (10 IPv4 frames) is never delayed;
 * 1000 addresses get their first frames out within half a second and the
 * rest of their bursts in about 5 s. A conservative choice rather than a
 * measured switch limit: tune it for the network, or pass `pacing: false`.
 */
export const DEFAULT_PACING: Readonly<Required<AnnouncerPacing>> = Object.freeze({ framesPerSecond: 2000, burstFrames: 100 });

/**
 * The interface an announcer sends on: what it needs of a {@link LinkSocket}
 * (which is one). Injectable for tests and to share sockets.
 */
export interface AnnounceLink {
  readonly ifindex: number;
  readonly name: string;
  /** The MAC announced (6 bytes). */
  readonly mac: Uint8Array;
  /** IPv6 forwarding gives the NA's Router flag (RFC 4861 §7.2.6). */
  readonly forwarding: { ipv4: boolean; ipv6: boolean };
  send(frame: Uint8Array): void;
  close(): void;
}

/** Options of an {@link Announcer}. */
export interface AnnouncerOptions {
  /** Network namespace of the interfaces (path or fd). Default: the caller's. */
  netns?: string | number;
  /** Default schedule, field by field over {@link DEFAULT_ANNOUNCE_SCHEDULE}. */
  schedule?: Partial<AnnounceSchedule>;
  /** Per-interface pacing; `false` = as fast as possible. Default {@link DEFAULT_PACING}. */
  pacing?: AnnouncerPacing | false;
  /** Timers and time; default {@link systemClock}. */
  clock?: AnnouncerClock;
  /** Opens the send socket of an interface; default `LinkSocket.open({ link, netns })`. */
  openLink?: (link: LinkRef) => AnnounceLink;
  /**
   * Called for each failed send (the frame is dropped and counted in
   * sendErrors; nothing is thrown, not even from announce()).
   */
  onSendError?: (error: unknown, context: { link: string; address: string }) => void;
}

/** Per-announcement options of {@link Announcer.announce}. */
export interface AnnounceOptions {
  /** Schedule fields for this address, over the announcer's. */
  schedule?: Partial<AnnounceSchedule>;
  /** IPv6: the NA's Router flag; default the interface's IPv6 forwarding setting. */
  router?: boolean;
}

/** Counters of one interface. */
export interface AnnouncerInterfaceStats {
  name: string;
  ifindex: number;
  /** Frames handed to the kernel. */
  framesSent: number;
  /** Sends that failed (frame dropped). */
  sendErrors: number;
  /** Frames waiting for the pacing. */
  queued: number;
  /** Addresses with a running schedule or queued frames. */
  announcing: number;
}

const MAX_BURST = 100;
const MAX_DELAY_MS = 24 * 3600 * 1000;

interface Queued {
  /** undefined for announceNow() frames, which no cancel() withdraws. */
  announcement: Announcement | undefined;
  frame: Buffer;
  /** The address as the caller wrote it, for error reports. */
  address: string;
}

/** A FIFO with O(1) push and shift, compacted as it drains. */
class Fifo {
  private items: Queued[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(q: Queued): void {
    this.items.push(q);
  }
  shift(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const q = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Queued;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return q;
  }
  /** Removes the entries of one announcement; returns how many. */
  removeOf(a: Announcement): number {
    const before = this.length;
    this.items = this.items.slice(this.head).filter((q) => q.announcement !== a);
    this.head = 0;
    return before - this.items.length;
  }
}

interface LinkEntry {
  sender: AnnounceLink;
  tokens: number;
  lastRefill: number;
  urgent: Fifo;
  normal: Fifo;
  drainTimer: unknown;
  framesSent: number;
  sendErrors: number;
  announcements: Map<string, Announcement>;
  /** Encoded frames by address, ARP mode and Router flag (see {@link Announcer.prepareAll}). */
  frames: Map<string, Buffer[]>;
}

interface Announcement {
  entry: LinkEntry;
  /** Key in entry.announcements: the address's bytes (see bytesKey). */
  key: string;
  /** The address as the caller wrote it (for error reports). */
  address: string;
  /** The frames of one round. */
  frames: Buffer[];
  schedule: AnnounceSchedule;
  startedAt: number;
  /** 1: first burst, 2: second burst, 3: refresh. */
  phase: 1 | 2 | 3;
  roundsLeft: number;
  /** The next round's first frame goes ahead of queued repeats. */
  urgentNext: boolean;
  timer: unknown;
  /** Frames of this announcement waiting in the pacing queues. */
  queued: number;
  /** The schedule has nothing left to do (frames may still be queued). */
  done: boolean;
}

function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/** Merges and validates schedule fields. */
export function resolveSchedule(base: Readonly<AnnounceSchedule>, over: Partial<AnnounceSchedule> | undefined): AnnounceSchedule {
  if (over !== undefined && (over === null || typeof over !== 'object')) throw new TypeError(`schedule must be an object, got ${String(over)}`);
  const s = { ...base, ...(over ?? {}) };
  for (const key of Object.keys(over ?? {})) {
    if (!(key in DEFAULT_ANNOUNCE_SCHEDULE)) throw new TypeError(`unknown schedule field ${key}`);
  }
  checkInt('schedule.burst', s.burst, 1, MAX_BURST);
  checkInt('schedule.burstSpacingMs', s.burstSpacingMs, 0, MAX_DELAY_MS);
  checkInt('schedule.secondBurstDelayMs', s.secondBurstDelayMs, 0, MAX_DELAY_MS);
  checkInt('schedule.secondBurst', s.secondBurst, 0, MAX_BURST);
  checkInt('schedule.refreshIntervalMs', s.refreshIntervalMs, 0, MAX_DELAY_MS);
  if (s.arpMode !== 'request' && s.arpMode !== 'reply' && s.arpMode !== 'both') {
    throw new RangeError(`schedule.arpMode must be 'request', 'reply' or 'both', got ${String(s.arpMode)}`);
  }
  return s;
}

function resolvePacing(p: AnnouncerPacing | false | undefined): Required<AnnouncerPacing> | false {
  if (p === false) return false;
  if (p === undefined) return DEFAULT_PACING;
  if (p === null || typeof p !== 'object') throw new TypeError(`pacing must be an object or false, got ${String(p)}`);
  const framesPerSecond = p.framesPerSecond ?? DEFAULT_PACING.framesPerSecond;
  const burstFrames = p.burstFrames ?? DEFAULT_PACING.burstFrames;
  if (typeof framesPerSecond !== 'number' || !Number.isFinite(framesPerSecond) || framesPerSecond <= 0 || framesPerSecond > 1e7) {
    throw new RangeError(`pacing.framesPerSecond must be a number in (0, 1e7], got ${String(framesPerSecond)}`);
  }
  checkInt('pacing.burstFrames', burstFrames, 1, 1_000_000);
  return { framesPerSecond, burstFrames };
}

/** An address to announce and the interface to announce it on. */
export interface AnnounceTarget {
  link: LinkRef;
  address: string;
}

/**
 * Announcements checked and built once by {@link Announcer.prepareAll}, for
 * {@link Announcer.announceAll} to start as often as needed.
 */
export class PreparedAnnouncement {
  /** The addresses, in announcement order. */
  readonly targets: readonly AnnounceTarget[];

  /** @internal Made by {@link Announcer.prepareAll}. */
  constructor(targets: readonly AnnounceTarget[]) {
    this.targets = Object.freeze(targets.map((t) => Object.freeze({ link: t.link, address: t.address })));
  }
}

/** What {@link Announcer.announceAll} needs before its first frame, resolved by an announcer. */
interface PreparedState {
  owner: Announcer;
  options: AnnounceOptions;
  schedule: AnnounceSchedule;
  /** Per target: its address, its interface's entry, the address key and the frames. */
  items: { address: string; entry: LinkEntry; key: string; frames: Buffer[] }[];
}

const preparedStates = new WeakMap<PreparedAnnouncement, PreparedState>();

/**
 * Sends address announcements on schedules, reusing one send socket
 * ({@link LinkSocket}) per interface. Close it (or `using`) to cancel
 * everything and close the sockets. Its timers never keep the process alive.
 *
 * @example
 * ```ts
 * using announcer = new Announcer();
 * nl.addrAddSync({ link: 'eth0', address: '198.51.100.7/24' });
 * announcer.announce('eth0', '198.51.100.7'); // first frames are on the wire when this returns
 * // ... on release:
 * announcer.cancel('eth0', '198.51.100.7');
 * ```
 */
export class Announcer implements Disposable {
  private readonly schedule: AnnounceSchedule;
  private readonly pacing: Required<AnnouncerPacing> | false;
  private readonly clock: AnnouncerClock;
  private readonly openLink: (link: LinkRef) => AnnounceLink;
  private readonly onSendError: AnnouncerOptions['onSendError'];
  private readonly links = new Map<LinkRef, LinkEntry>();
  private readonly entries = new Set<LinkEntry>();
  private closed = false;

  constructor(options: AnnouncerOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    this.schedule = resolveSchedule(DEFAULT_ANNOUNCE_SCHEDULE, options.schedule);
    this.pacing = resolvePacing(options.pacing);
    this.clock = options.clock ?? systemClock;
    const { netns } = options;
    this.openLink = options.openLink ?? ((link) => LinkSocket.open(netns === undefined ? { link } : { link, netns }));
    this.onSendError = options.onSendError;
  }

  /**
   * Starts announcing `address` on `link` with the schedule, and returns the
   * number of frames sent (handed to the kernel, or failed and counted)
   * before returning: 0 only when the pacing held the first frame back. An address already being announced there restarts its schedule.
   *
   * Throws RangeError for a bad address or schedule, and whatever opening the
   * interface's socket throws the first time (RangeError for an interface
   * that cannot carry ARP/NDP, VipaError without CAP_NET_RAW). Send errors
   * are not thrown: see {@link AnnouncerOptions.onSendError}.
   */
  announce(link: LinkRef, address: string, options: AnnounceOptions = {}): number {
    const schedule = this.scheduleOf(options);
    const { entry, key, frames } = this.prepare(link, address, options, schedule.arpMode);
    const before = entry.framesSent + entry.sendErrors;
    this.runRounds(this.begin(entry, key, frames, address, schedule));
    return entry.framesSent + entry.sendErrors - before;
  }

  /**
   * {@link announce} for several addresses at once (a group taking over):
   * every address's first frame goes out now, then the rest of every first
   * round, so the last address is announced microseconds after the first
   * rather than after all the others' burst, and with pacing the burst's
   * tokens announce as many addresses as there are tokens. The first burst's
   * repeats follow from a timer (the burst spacing; 0: the next turn), after
   * the caller's remaining takeover work: each frame costs the sender its
   * delivery to every listener on the segment (a veth bridge delivers in the
   * sending syscall), and a back-to-back burst of 5 rounds of every address
   * took 0.5–2.5 ms of CPU right when the new holder's answers and the old
   * holder's reaper need it. Returns the frames sent before returning (the
   * first rounds, as far as pacing allows). Validates every address before
   * starting any.
   */
  announceAll(targets: readonly AnnounceTarget[] | PreparedAnnouncement, options: AnnounceOptions = {}): number {
    const { schedule, items: prepared } = targets instanceof PreparedAnnouncement ? this.stateOf(targets) : this.resolve(targets, options);
    const counted = new Set(prepared.map((p) => p.entry));
    const sentSoFar = () => [...counted].reduce((n, e) => n + e.framesSent + e.sendErrors, 0);
    const before = sentSoFar();
    const started = prepared.map((p) => this.begin(p.entry, p.key, p.frames, p.address, schedule));
    // Every address's first frame, then the rest of every first round (an
    // IPv4 address's second frame, the reply), then the repeats: with pacing,
    // the burst's tokens go to as many addresses as possible.
    const live = started.filter((a) => a.entry.announcements.get(a.key) === a); // a duplicate target restarted an earlier one
    for (const a of live) this.submit(a.entry, a, a.frames[0]!, true, a.address);
    for (const a of live) for (let i = 1; i < a.frames.length; i++) this.submit(a.entry, a, a.frames[i]!, false, a.address);
    for (const a of live) {
      a.roundsLeft--;
      a.urgentNext = false;
      this.afterRound(a);
    }
    return sentSoFar() - before;
  }

  /**
   * Does once what {@link announceAll} does before its first frame: checks
   * every address and option, opens the interfaces' sockets and builds the
   * frames. A takeover announces a group's addresses with what this returns,
   * so nothing but the sends stands between the address write and the
   * clients hearing of it (another host's kernel answers for the address
   * from the write on: the old holder's and the new holder's answers
   * overlap until the old holder's reaper hears an announcement). Throws as
   * {@link announce}.
   */
  prepareAll(targets: readonly AnnounceTarget[], options: AnnounceOptions = {}): PreparedAnnouncement {
    const state = this.resolve(targets, options);
    const burst = new PreparedAnnouncement(targets);
    preparedStates.set(burst, state);
    return burst;
  }

  /** Checks every target and the options, opens the sockets, builds the frames. */
  private resolve(targets: readonly AnnounceTarget[], options: AnnounceOptions): PreparedState {
    if (!Array.isArray(targets)) throw new TypeError(`targets must be an array, got ${String(targets)}`);
    const schedule = this.scheduleOf(options);
    const items = targets.map((t) => ({ address: t.address, ...this.prepare(t.link, t.address, options, schedule.arpMode) }));
    return { owner: this, options, schedule, items };
  }

  /**
   * What `burst` holds for this announcer: resolved again, once, when another
   * announcer prepared it or one of its sockets was closed since (forget,
   * close).
   */
  private stateOf(burst: PreparedAnnouncement): PreparedState {
    const state = preparedStates.get(burst);
    if (state && state.owner === this && state.items.every((p, i) => this.links.get(burst.targets[i]!.link) === p.entry)) return state;
    const fresh = this.resolve(burst.targets, state?.options ?? {});
    preparedStates.set(burst, fresh);
    return fresh;
  }

  /** Registers a new announcement of `address` (restarting one already running there). */
  private begin(entry: LinkEntry, key: string, frames: Buffer[], address: string, schedule: AnnounceSchedule): Announcement {
    const existing = entry.announcements.get(key);
    if (existing) this.stop(existing);
    const a: Announcement = {
      entry,
      key,
      address,
      frames,
      schedule,
      startedAt: this.clock.now(),
      phase: 1,
      roundsLeft: schedule.burst,
      urgentNext: true,
      timer: undefined,
      queued: 0,
      done: false,
    };
    entry.announcements.set(key, a);
    return a;
  }

  /**
   * Sends one announcement round for `address` on `link` now (ahead of
   * queued repeats, within the pacing), whether or not a schedule runs for
   * it; the schedule, if any, is unchanged, and {@link cancel} does not
   * withdraw these frames. Returns the frames sent before returning.
   */
  announceNow(link: LinkRef, address: string, options: Omit<AnnounceOptions, 'schedule'> & { arpMode?: ArpMode } = {}): number {
    const { entry, frames } = this.prepare(link, address, options, this.arpModeOf(options));
    const before = entry.framesSent + entry.sendErrors;
    for (const frame of frames) this.submit(entry, undefined, frame, true, address);
    return entry.framesSent + entry.sendErrors - before;
  }

  private scheduleOf(options: AnnounceOptions): AnnounceSchedule {
    // The announcer's own schedule was validated once; only overrides need merging.
    return options.schedule === undefined ? this.schedule : resolveSchedule(this.schedule, options.schedule);
  }

  private arpModeOf(options: { arpMode?: ArpMode }): ArpMode {
    const arpMode = options.arpMode ?? this.schedule.arpMode;
    if (arpMode !== 'request' && arpMode !== 'reply' && arpMode !== 'both') throw new RangeError(`arpMode must be 'request', 'reply' or 'both', got ${String(arpMode)}`);
    return arpMode;
  }

  /** Stops announcing `address` on `link` and drops its queued frames. Returns whether anything was running. */
  cancel(link: LinkRef, address: string): boolean {
    const entry = this.links.get(link);
    if (!entry) return false;
    const a = entry.announcements.get(addressKey(address));
    if (!a) return false;
    this.stop(a);
    return true;
  }

  /** Cancels every announcement on every interface. */
  cancelAll(): void {
    for (const entry of this.entries) for (const a of [...entry.announcements.values()]) this.stop(a);
  }

  /**
   * Cancels `link`'s announcements and closes its socket. The next
   * announcement on it opens a new socket and reads the interface again
   * (its MAC and forwarding setting are read when the socket opens).
   */
  forget(link: LinkRef): boolean {
    const entry = this.links.get(link);
    if (!entry) return false;
    this.closeEntry(entry);
    return true;
  }

  /** Whether a schedule runs (or frames are queued) for `address` on `link`. */
  isAnnouncing(link: LinkRef, address: string): boolean {
    return this.links.get(link)?.announcements.has(addressKey(address)) ?? false;
  }

  /** Counters per interface. */
  stats(): AnnouncerInterfaceStats[] {
    return [...this.entries].map((e) => ({
      name: e.sender.name,
      ifindex: e.sender.ifindex,
      framesSent: e.framesSent,
      sendErrors: e.sendErrors,
      queued: e.urgent.length + e.normal.length,
      announcing: e.announcements.size,
    }));
  }

  /** Cancels everything and closes the sockets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const entry of [...this.entries]) this.closeEntry(entry);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----------------------------------------------------------------

  private prepare(link: LinkRef, address: string, options: AnnounceOptions, arpMode: ArpMode): { entry: LinkEntry; key: string; frames: Buffer[] } {
    if (this.closed) throw new Error('Announcer is closed');
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    const parsed = typeof address === 'string' ? parseIp(address) : undefined;
    if (!parsed) throw new RangeError(`address must be an IPv4 or IPv6 address text, got ${JSON.stringify(address)}`);
    if (options.router !== undefined && typeof options.router !== 'boolean') throw new TypeError(`router must be a boolean, got ${String(options.router)}`);
    const entry = this.linkFor(link);
    const mac = entry.sender.mac;
    const key = bytesKey(parsed.bytes);
    const router = parsed.family === 6 ? (options.router ?? entry.sender.forwarding.ipv6) : false;
    const cacheKey = `${key}|${parsed.family === 4 ? arpMode : router}`;
    let frames = entry.frames.get(cacheKey);
    if (!frames) {
      if (parsed.family === 4) {
        const ops: ArpOperation[] = arpMode === 'both' ? ['request', 'reply'] : [arpMode];
        frames = ops.map((operation) => encodeGratuitousArp({ mac, address: parsed.bytes, operation }));
      } else {
        frames = [encodeUnsolicitedNeighborAdvertisement({ mac, address: parsed.bytes, router })];
      }
      // Bounded by the addresses announced on this interface (the entry goes with forget()).
      entry.frames.set(cacheKey, frames);
    }
    return { entry, key, frames };
  }

  private linkFor(link: LinkRef): LinkEntry {
    const known = this.links.get(link);
    if (known) return known;
    if (typeof link !== 'string' && !(Number.isInteger(link) && link > 0)) {
      throw new TypeError(`link must be an interface name or a positive index, got ${String(link)}`);
    }
    const sender = this.openLink(link);
    // The same interface by its other name (index vs name): share the entry.
    const same = this.links.get(sender.ifindex) ?? this.links.get(sender.name);
    if (same) {
      sender.close();
      this.links.set(link, same);
      return same;
    }
    const entry: LinkEntry = {
      sender,
      tokens: this.pacing ? this.pacing.burstFrames : 0,
      lastRefill: this.clock.now(),
      urgent: new Fifo(),
      normal: new Fifo(),
      drainTimer: undefined,
      framesSent: 0,
      sendErrors: 0,
      announcements: new Map(),
      frames: new Map(),
    };
    this.entries.add(entry);
    this.links.set(link, entry);
    this.links.set(sender.ifindex, entry);
    this.links.set(sender.name, entry);
    return entry;
  }

  /** Sends the current burst's rounds: all now when back to back, else one now and the next after the spacing. */
  private runRounds(a: Announcement): void {
    a.timer = undefined;
    // Bounded: roundsLeft ≤ MAX_BURST (resolveSchedule).
    do {
      a.roundsLeft--;
      for (let i = 0; i < a.frames.length; i++) this.submit(a.entry, a, a.frames[i]!, a.urgentNext && i === 0, a.address);
      a.urgentNext = false;
    } while (a.roundsLeft > 0 && a.schedule.burstSpacingMs === 0);
    this.afterRound(a);
  }

  /** After a round: the burst's next rounds after the spacing (0: the next timer turn), or what follows the burst. */
  private afterRound(a: Announcement): void {
    if (a.roundsLeft > 0) a.timer = this.clock.setTimeout(() => this.runRounds(a), a.schedule.burstSpacingMs);
    else this.burstDone(a);
  }

  private startBurst(a: Announcement, phase: 1 | 2 | 3, rounds: number): void {
    a.phase = phase;
    a.roundsLeft = rounds;
    this.runRounds(a);
  }

  private burstDone(a: Announcement): void {
    const s = a.schedule;
    if (a.phase === 1 && s.secondBurst > 0) {
      // Measured from announce(), as keepalived's garp_master_delay is from the transition to master.
      const delay = Math.max(0, a.startedAt + s.secondBurstDelayMs - this.clock.now());
      a.timer = this.clock.setTimeout(() => this.startBurst(a, 2, s.secondBurst), delay);
    } else if (s.refreshIntervalMs > 0) {
      a.timer = this.clock.setTimeout(() => this.startBurst(a, 3, 1), s.refreshIntervalMs);
    } else {
      a.done = true;
      this.maybeFinish(a);
    }
  }

  private maybeFinish(a: Announcement): void {
    if (a.done && a.queued === 0 && a.entry.announcements.get(a.key) === a) a.entry.announcements.delete(a.key);
  }

  private stop(a: Announcement): void {
    if (a.timer !== undefined) this.clock.clearTimeout(a.timer);
    a.timer = undefined;
    a.done = true;
    if (a.queued > 0) {
      a.entry.urgent.removeOf(a);
      a.entry.normal.removeOf(a);
      a.queued = 0;
    }
    if (a.entry.announcements.get(a.key) === a) a.entry.announcements.delete(a.key);
  }

  /** Sends `frame` now if the pacing allows, else queues it (urgent frames ahead of repeats). */
  private submit(entry: LinkEntry, a: Announcement | undefined, frame: Buffer, urgent: boolean, address: string): void {
    if (!this.pacing) {
      this.sendNow(entry, frame, address);
      return;
    }
    this.refill(entry);
    const nothingAhead = entry.urgent.length === 0 && (urgent || entry.normal.length === 0);
    if (nothingAhead && entry.tokens >= 1) {
      entry.tokens -= 1;
      this.sendNow(entry, frame, address);
      return;
    }
    (urgent ? entry.urgent : entry.normal).push({ announcement: a, frame, address });
    if (a) a.queued++;
    this.armDrain(entry);
  }

  private refill(entry: LinkEntry): void {
    const p = this.pacing as Required<AnnouncerPacing>;
    const now = this.clock.now();
    const elapsed = now - entry.lastRefill;
    entry.lastRefill = now;
    if (elapsed > 0) entry.tokens = Math.min(p.burstFrames, entry.tokens + (elapsed * p.framesPerSecond) / 1000);
  }

  private armDrain(entry: LinkEntry): void {
    if (entry.drainTimer !== undefined || entry.urgent.length + entry.normal.length === 0) return;
    const p = this.pacing as Required<AnnouncerPacing>;
    const wait = Math.max(1, Math.ceil(((1 - entry.tokens) * 1000) / p.framesPerSecond));
    entry.drainTimer = this.clock.setTimeout(() => this.drain(entry), wait);
  }

  private drain(entry: LinkEntry): void {
    entry.drainTimer = undefined;
    this.refill(entry);
    // Bounded by the queues' lengths and by the tokens.
    while (entry.tokens >= 1) {
      const q = entry.urgent.shift() ?? entry.normal.shift();
      if (!q) break;
      entry.tokens -= 1;
      const a = q.announcement;
      if (a) a.queued--;
      this.sendNow(entry, q.frame, q.address);
      if (a) this.maybeFinish(a);
    }
    this.armDrain(entry);
  }

  private sendNow(entry: LinkEntry, frame: Buffer, address: string): void {
    try {
      entry.sender.send(frame);
      entry.framesSent++;
    } catch (e) {
      entry.sendErrors++;
      this.onSendError?.(e, { link: entry.sender.name, address });
    }
  }

  private closeEntry(entry: LinkEntry): void {
    for (const a of [...entry.announcements.values()]) this.stop(a);
    if (entry.drainTimer !== undefined) this.clock.clearTimeout(entry.drainTimer);
    entry.drainTimer = undefined;
    for (const [ref, e] of [...this.links]) if (e === entry) this.links.delete(ref);
    this.entries.delete(entry);
    entry.sender.close();
  }
}

/**
 * A map key for an address: its bytes as a string (one char per 16 bits),
 * so every text form of one address ('2001:DB8::1', '2001:db8:0::1') is one
 * key, without formatting it (announce() is on the takeover hot path).
 */
function bytesKey(bytes: Uint8Array): string {
  let key = '';
  for (let i = 0; i < bytes.length; i += 2) key += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!);
  return key;
}

/** The key of an address text, or a key no address has when it does not parse. */
function addressKey(address: string): string {
  const parsed = typeof address === 'string' ? parseIp(address) : undefined;
  return parsed ? bytesKey(parsed.bytes) : '';
}
