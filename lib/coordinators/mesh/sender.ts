/**
 * Heartbeats that keep going while the JavaScript event loop stalls.
 *
 * At a 10 ms heartbeat interval a 100 ms garbage-collection pause or busy
 * callback on the holder would look like death to its peers if heartbeats
 * were sent from the event loop. Here the mesh pre-signs a queue of future
 * heartbeat datagrams (each with its own sequence number and HMAC, encoded in
 * TypeScript) and a native thread sends one per interval to every peer.
 *
 * The queue is the watchdog: the mesh refills it well before it runs dry; a
 * process frozen for longer than queue length × interval stops refilling,
 * the thread runs dry ('starved') and the heartbeats stop, which is what its
 * peers must see. Size the queue to the longest stall to be tolerated, not
 * more: every queued heartbeat is a promise that this node is alive.
 *
 * Each peer gets its own connected UDP socket, so a peer host that is up but
 * has no process on the heartbeat port answers with ICMP port unreachable and
 * the sender reports 'peer-error' with code ECONNREFUSED at once (udp(7):
 * errors are reported on connected sockets) — a dead holder process is seen
 * within one round trip instead of after a detection timeout.
 */
import { EventEmitter } from 'node:events';
import { errnoName } from '../../errors.js';
import { parseIp } from '../../ip.js';
import { native, type NativeHeartbeatOptions, type NativeHeartbeatSender, type NativeHeartbeatStats } from '../../native.js';

/** A peer that receives heartbeats. */
export interface HeartbeatPeer {
  /** IPv4 or IPv6 address literal (global or ULA: no link-local scope ids). */
  readonly address: string;
  /** UDP port the peer listens on, 1..65535. */
  readonly port: number;
}

/** Options of a {@link HeartbeatSender}. */
export interface HeartbeatSenderOptions {
  /** Where to send; at least one, no duplicates. */
  peers: readonly HeartbeatPeer[];
  /** Interval between heartbeats in milliseconds, 1..60000 (fractions down to 1 µs). */
  intervalMs: number;
  /**
   * Network namespace to open the sockets in: a path (/run/netns/NAME,
   * /proc/PID/ns/net) or an open fd. Default: the caller's.
   */
  netns?: string | number;
  /**
   * Source address of the heartbeats; must be of the family of every peer.
   * Without it the kernel picks one by route at connect time, which may be a
   * virtual address this node holds; bind to the node's own address.
   */
  bindAddress?: string;
  /** DSCP of the heartbeats, 0..63 (e.g. 48, CS6, network control). Default: 0. */
  dscp?: number;
  /**
   * Run the sender thread as SCHED_FIFO priority 1 when the process may
   * (root, CAP_SYS_NICE or RLIMIT_RTPRIO ≥ 1; see sched(7)), so busy
   * threads cannot delay it; otherwise it silently stays SCHED_OTHER.
   * `stats.realtime` tells which. Default: true.
   */
  realtime?: boolean;
  /**
   * When the thread wakes this many ms later than planned, the whole process
   * was stopped (SIGSTOP, a paused VM) or starved: it drops the queued
   * heartbeats, which were signed before and may claim what peers have
   * meanwhile taken over, and emits 'stale'. Use the peers' detection time
   * (interval × misses). Default: never.
   */
  staleAfterMs?: number;
}

/** A peer's socket reported an error: ECONNREFUSED means nothing listens on its port. */
export interface HeartbeatPeerError {
  /** Index of the peer in `options.peers`. */
  peerIndex: number;
  /** The peer itself. */
  peer: HeartbeatPeer;
  /** Errno name, e.g. 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH'. */
  code: string;
  /** Positive errno value. */
  errno: number;
}

/** Counters of a {@link HeartbeatSender}: the thread's (see lib/native.ts) and the queue length. */
export type HeartbeatSenderStats = NativeHeartbeatStats & {
  /** Heartbeats queued ahead. */
  queued: number;
};

/** Events of a {@link HeartbeatSender}, for typed `on`/`once`. */
export interface HeartbeatSenderEvents {
  /** A peer's socket reported an error, e.g. ECONNREFUSED: its host is up, its process is not. */
  'peer-error': [HeartbeatPeerError];
  /** The queue ran dry and heartbeats stopped. Emitted once per dry spell, never before the first heartbeat. */
  starved: [];
  /** Heartbeats started again after 'starved'. */
  resumed: [];
  /** The thread woke later than `staleAfterMs` and dropped the queue: refill it with a fresh status. */
  stale: [];
}

const MIN_INTERVAL_MS = 1;
const MAX_INTERVAL_MS = 60_000;
const OPTION_KEYS = new Set(['peers', 'intervalMs', 'netns', 'bindAddress', 'dscp', 'realtime', 'staleAfterMs']);

function checkPeer(peer: unknown, index: number): { family: 4 | 6; key: string } {
  if (peer === null || typeof peer !== 'object') throw new TypeError(`peers[${index}] must be an object, got ${String(peer)}`);
  const { address, port } = peer as Partial<HeartbeatPeer>;
  if (typeof address !== 'string') throw new TypeError(`peers[${index}].address must be a string, got ${typeof address}`);
  const parsed = parseIp(address);
  if (!parsed) throw new RangeError(`peers[${index}].address: malformed IP address ${JSON.stringify(address)}`);
  if (typeof port !== 'number') throw new TypeError(`peers[${index}].port must be a number, got ${typeof port}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`peers[${index}].port must be an integer 1..65535, got ${port}`);
  return { family: parsed.family, key: `${parsed.bytes.join('.')}/${port}` };
}

/** Checks the options without touching the kernel and returns the native form (minus onEvent). */
function toNativeOptions(options: HeartbeatSenderOptions): Omit<NativeHeartbeatOptions, 'onEvent'> {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`unknown heartbeat sender option ${JSON.stringify(key)}`);
  }
  const { peers, intervalMs, netns, bindAddress, dscp, realtime, staleAfterMs } = options;
  if (!Array.isArray(peers)) throw new TypeError(`peers must be an array, got ${typeof peers}`);
  if (peers.length === 0) throw new RangeError('peers must name at least one peer');
  const families = new Set<number>();
  const seen = new Map<string, number>();
  peers.forEach((peer, index) => {
    const { family, key } = checkPeer(peer, index);
    const first = seen.get(key);
    if (first !== undefined) throw new RangeError(`peers[${index}] repeats peers[${first}] (${peer.address} port ${peer.port})`);
    seen.set(key, index);
    families.add(family);
  });
  if (typeof intervalMs !== 'number') throw new TypeError(`intervalMs must be a number, got ${typeof intervalMs}`);
  if (!(intervalMs >= MIN_INTERVAL_MS && intervalMs <= MAX_INTERVAL_MS)) {
    throw new RangeError(`intervalMs must be from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS} (1 ms to 60 s), got ${intervalMs}`);
  }
  const result: Omit<NativeHeartbeatOptions, 'onEvent'> = {
    peers: peers.map(({ address, port }) => ({ address, port })),
    intervalUs: Math.round(intervalMs * 1000),
  };
  if (staleAfterMs !== undefined) {
    if (typeof staleAfterMs !== 'number' || !(staleAfterMs >= 0 && staleAfterMs <= 3_600_000)) {
      throw new RangeError(`staleAfterMs must be from 0 to 3600000, got ${String(staleAfterMs)}`);
    }
    result.staleAfterUs = Math.round(staleAfterMs * 1000);
  }
  if (netns !== undefined) {
    if (typeof netns !== 'string' && !(Number.isInteger(netns) && netns >= 0)) {
      throw new TypeError(`netns must be a path or an fd, got ${String(netns)}`);
    }
    result.netns = netns;
  }
  if (bindAddress !== undefined) {
    if (typeof bindAddress !== 'string') throw new TypeError(`bindAddress must be a string, got ${typeof bindAddress}`);
    const parsed = parseIp(bindAddress);
    if (!parsed) throw new RangeError(`bindAddress: malformed IP address ${JSON.stringify(bindAddress)}`);
    const other = [...families].find((f) => f !== parsed.family);
    if (other !== undefined) throw new RangeError(`bindAddress ${bindAddress} is IPv${parsed.family} but a peer is IPv${other}`);
    result.bindAddress = bindAddress;
  }
  if (dscp !== undefined) {
    if (typeof dscp !== 'number') throw new TypeError(`dscp must be a number, got ${typeof dscp}`);
    if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) throw new RangeError(`dscp must be an integer 0..63, got ${dscp}`);
    result.dscp = dscp;
  }
  if (realtime !== undefined) {
    if (typeof realtime !== 'boolean') throw new TypeError(`realtime must be a boolean, got ${typeof realtime}`);
    result.realtime = realtime;
  }
  return result;
}

function checkDatagram(datagram: unknown, what: string): Uint8Array {
  if (!(datagram instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array, got ${typeof datagram}`);
  return datagram;
}

/** How many datagrams the native sender's queue holds (native/heartbeat.h kQueueCapacity). */
export const HEARTBEAT_QUEUE_CAPACITY = 1024;

/**
 * Sends pre-signed heartbeat datagrams from a native thread, one per
 * interval to every peer, independent of the event loop.
 *
 * Event-loop liveness: while open, the sender keeps the process alive, like
 * a dgram socket or an interval timer (its event channel, a Node-API
 * threadsafe function, is referenced); `unref()` lets the process exit
 * while it runs, and `close()` releases it, so a closed sender never keeps
 * the process alive. Worker teardown and process exit stop the thread too.
 *
 * @example
 * ```ts
 * using sender = new HeartbeatSender({ peers: [{ address: '198.51.100.2', port: 7400 }], intervalMs: 10 });
 * sender.on('peer-error', (e) => console.log(`peer ${e.peer.address}: ${e.code}`));
 * // Keep it topped up from the event loop with datagrams signed ahead of time.
 * sender.refill(nextSignedHeartbeats(50));
 * ```
 */
export class HeartbeatSender extends EventEmitter<HeartbeatSenderEvents> implements Disposable {
  /** The peers, in the order `peerIndex` refers to. */
  readonly peers: readonly HeartbeatPeer[];
  /** The interval between heartbeats, in milliseconds. */
  readonly intervalMs: number;
  private readonly handle: NativeHeartbeatSender;
  private closedFlag = false;

  /** Opens one socket per peer and starts the thread; throws VipaError when a syscall fails. */
  constructor(options: HeartbeatSenderOptions) {
    super();
    const nativeOptions = toNativeOptions(options);
    this.peers = Object.freeze(nativeOptions.peers.map((p) => Object.freeze({ ...p })));
    this.intervalMs = nativeOptions.intervalUs / 1000;
    this.handle = new (native().HeartbeatSender)({ ...nativeOptions, onEvent: (kind, peerIndex, errno) => this.onNativeEvent(kind, peerIndex, errno) });
  }

  private onNativeEvent(kind: 'peer-error' | 'starved' | 'resumed' | 'stale', peerIndex: number, errno: number): void {
    if (this.closedFlag) return;
    if (kind === 'peer-error') {
      this.emit('peer-error', { peerIndex, peer: this.peers[peerIndex]!, code: errnoName(errno), errno });
    } else {
      this.emit(kind);
    }
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** How many datagrams the queue holds at most ({@link HEARTBEAT_QUEUE_CAPACITY}). */
  get capacity(): number {
    return this.handle.capacity;
  }

  /** Datagrams waiting to be sent. */
  get queued(): number {
    return this.handle.queued;
  }

  /** Counters since the sender was opened; still readable after close. */
  get stats(): HeartbeatSenderStats {
    return { ...this.handle.stats, queued: this.handle.queued };
  }

  /**
   * Appends pre-signed datagrams, sent one per interval in this order. The
   * bytes are copied. All or nothing: RangeError when they would not fit in
   * the queue (see {@link capacity}); VipaError EBADF once closed.
   *
   * @returns the number of datagrams queued afterwards.
   */
  refill(datagrams: readonly Uint8Array[]): number {
    if (!Array.isArray(datagrams)) throw new TypeError(`datagrams must be an array, got ${typeof datagrams}`);
    datagrams.forEach((d, i) => checkDatagram(d, `datagrams[${i}]`));
    // The thread only ever shortens the queue, so this check is conservative;
    // the native push checks again under its lock.
    if (!this.closedFlag && datagrams.length > this.capacity - this.queued) {
      throw new RangeError(`refill of ${datagrams.length} datagrams does not fit: ${this.queued} of ${this.capacity} queued`);
    }
    return this.handle.push(datagrams as Uint8Array[]);
  }

  /**
   * Drops every queued datagram, e.g. before queueing heartbeats with new
   * content; heartbeats stop at the next tick unless refilled.
   *
   * @returns how many were dropped.
   */
  clear(): number {
    return this.handle.clear();
  }

  /**
   * Sends one datagram to every peer now, from the calling thread, bypassing
   * the queue: for leave and release messages that must not wait a tick.
   * One peer's failure does not stop the others; VipaError EBADF once closed.
   *
   * `replacement`: the queue is dropped before the send and refilled with
   * these after it, atomically for the sender thread, which therefore sends
   * nothing signed before this message after it and never finds the queue
   * empty meanwhile (for a status change: the urgent message, then
   * heartbeats with the new status).
   *
   * @returns the peers it could not be sent to (empty when all got it).
   */
  sendNow(datagram: Uint8Array, replacement?: readonly Uint8Array[]): HeartbeatPeerError[] {
    checkDatagram(datagram, 'datagram');
    if (replacement !== undefined) {
      if (!Array.isArray(replacement)) throw new TypeError(`replacement must be an array of datagrams, got ${typeof replacement}`);
      if (replacement.length > this.capacity) throw new RangeError(`replacement of ${replacement.length} datagrams exceeds the queue's ${this.capacity}`);
      replacement.forEach((d, i) => checkDatagram(d, `replacement[${i}]`));
    }
    const failed: HeartbeatPeerError[] = [];
    const errnos = replacement === undefined ? this.handle.sendNow(datagram) : this.handle.sendNow(datagram, replacement as Uint8Array[]);
    errnos.forEach((errno, peerIndex) => {
      if (errno !== 0) failed.push({ peerIndex, peer: this.peers[peerIndex]!, code: errnoName(errno), errno });
    });
    return failed;
  }

  /** Lets the process exit while the sender runs (see the class notes). */
  unref(): this {
    this.handle.unref();
    return this;
  }

  /** Undoes {@link unref}: the open sender keeps the process alive again. */
  ref(): this {
    this.handle.ref();
    return this;
  }

  /**
   * Stops and joins the thread, closes the sockets and releases the event
   * channel; queued datagrams are dropped and no event follows. Idempotent.
   * Heartbeats simply stop: send a leave message with {@link sendNow} first
   * for a graceful exit.
   */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.handle.stop();
  }

  /** For `using`: {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
