/**
 * Loads the addon with node-gyp-build: a binary built from source in
 * build/Release when there is one, otherwise the prebuilt binary shipped in
 * prebuilds/ for this platform (node-gyp-build's order). Registers the error
 * factory so native code throws VipaError.
 */
import { endianness } from 'node:os';
import { join } from 'node:path';
import { VipaError } from './errors.js';

/** Options of a native netlink socket. */
export interface NativeNetlinkOptions {
  protocol: number;
  groups?: number[];
  /** Network namespace: a path (/run/netns/NAME, /proc/PID/ns/net) or an open fd. */
  netns?: string | number;
  /** Operation named in errors. */
  op?: string;
}

/** Options of a native AF_PACKET socket bound to one interface. */
export interface NativePacketOptions {
  ifindex: number;
  /** Ethertype to receive (host order), e.g. 0x0806 for ARP. */
  protocol: number;
  /** Classic BPF program (struct sock_filter[]), attached before bind. */
  filter?: Buffer;
  /** Do not receive frames this host sends (PACKET_IGNORE_OUTGOING). */
  ignoreOutgoing?: boolean;
  netns?: string | number;
  op?: string;
}

/** The addon's socket: syscalls only. See native/socket.h for the contract. */
export interface NativeSocket {
  readonly fd: number;
  /** Netlink port id (0 for packet sockets). */
  readonly portId: number;
  send(buffer: Buffer, offset?: number, length?: number): number;
  /** One datagram into `buffer`; its length, or -1 when nothing came within `timeoutMs`. */
  recv(buffer: Buffer, timeoutMs: number): number;
  /**
   * Like {@link recv}, then every datagram already queued, back to back and
   * each zero-padded to 4 bytes, while at least `reserve` bytes stay free;
   * the total length, or -1 when nothing came within `timeoutMs`.
   */
  recvMany(buffer: Buffer, timeoutMs: number, reserve: number): number;
  /** Reads on the event loop: `onData(length)` per datagram, `onData(-errno)` per receive error. */
  startReading(buffer: Buffer, onData: (lengthOrError: number) => void): void;
  stopReading(): void;
  close(): void;
  /** Sets SO_RCVBUF / SO_SNDBUF (forced when allowed); returns the resulting SO_RCVBUF. */
  setBufferSizes(rcvbuf: number, sndbuf: number): number;
  /** Packet sockets: replaces the classic BPF filter (`struct sock_filter[]` bytes). */
  setFilter(filter: Buffer): void;
}

/**
 * The addon's reaper: a child process that sends the armed netlink requests
 * when this process dies without calling quit(). See native/reaper.h.
 */
export interface NativeReaper {
  /** The child's pid, -1 once reaped. */
  readonly pid: number;
  /** Whether the child still runs. */
  readonly alive: boolean;
  /** Replaces the requests to send if this process dies (empty = nothing). */
  arm(requests: Buffer): void;
  /** Replaces the datagram the child sends to peers after the deletes (see AddressReaper.notifyOnDeath). */
  notify(payload: Buffer): void;
  /** Ends the child without sending anything. */
  quit(): void;
}

/** Options of the native heartbeat sender thread. See native/heartbeat.h for the contract. */
export interface NativeHeartbeatOptions {
  /** Address literals (IPv4 or IPv6, no scope id) and UDP ports. */
  peers: Array<{ address: string; port: number }>;
  /** Period of the sender thread, 1000..60000000 µs. */
  intervalUs: number;
  netns?: string | number;
  /** Source address to bind every peer socket to (same family as each peer). */
  bindAddress?: string;
  /** DSCP (0..63) for IP_TOS / IPV6_TCLASS. */
  dscp?: number;
  /** Try SCHED_FIFO priority 1 for the thread (default true; silently SCHED_OTHER when refused). */
  realtime?: boolean;
  /** A tick later than this (µs) drops the queue and reports 'stale' (0 = never). */
  staleAfterUs?: number;
  /** Called on the JS thread; errno is positive for 'peer-error', 0 otherwise; peerIndex -1 when no peer. */
  onEvent: (kind: 'peer-error' | 'starved' | 'resumed' | 'stale', peerIndex: number, errno: number) => void;
}

/** Counters of the native heartbeat sender. */
export interface NativeHeartbeatStats {
  /** Datagrams sent (one per peer per tick). */
  sent: number;
  /** Failed send(2) calls. */
  sendErrors: number;
  /** Asynchronous errors (ICMP) reported for peers. */
  peerErrors: number;
  /** Timer wakeups of the sender thread. */
  ticks: number;
  /** Wakeups later than one interval past their deadline (the thread was descheduled). */
  lateTicks: number;
  /** Largest wakeup delay seen, in microseconds. */
  maxLateUs: number;
  /** Events lost because JavaScript did not take them in time (the ring holds 64). */
  eventDrops: number;
  /** Whether the thread runs SCHED_FIFO. */
  realtime: boolean;
}

/** The addon's heartbeat sender: a native thread sending pre-signed datagrams. */
export interface NativeHeartbeatSender {
  readonly queued: number;
  readonly capacity: number;
  readonly stats: NativeHeartbeatStats;
  /** Copies the datagrams to the queue; returns the queue length. RangeError past capacity. */
  push(buffers: Uint8Array[]): number;
  /** Empties the queue; returns how many were dropped. */
  clear(): number;
  /**
   * Sends one datagram to every peer from the calling thread; errno per peer,
   * 0 = sent. With `replacement`, the queue is dropped before and refilled
   * after, atomically for the sender thread.
   */
  sendNow(buffer: Uint8Array, replacement?: Uint8Array[]): number[];
  stop(): void;
  ref(): void;
  unref(): void;
}

/**
 * The addon's one-shot timer: a CLOCK_MONOTONIC timerfd watched by the event
 * loop, firing to the microsecond where setTimeout counts whole milliseconds
 * from the loop's cached time (native/timer.h).
 */
export interface NativeTimer {
  /** (Re)arms the timer `delayMs` from now (fractional; ≤ 0 fires at the next loop iteration). An armed timer keeps the loop alive. */
  start(delayMs: number): void;
  /** Disarms it. */
  stop(): void;
  /** Closes its file descriptor; the timer cannot be started again. */
  close(): void;
}

/** The addon's exports. */
export interface NativeBinding {
  Timer: new (callback: () => void) => NativeTimer;
  Reaper: new (options?: { netns?: string | number; maxBytes?: number }) => NativeReaper;
  HeartbeatSender: new (options: NativeHeartbeatOptions) => NativeHeartbeatSender;
  Socket: {
    new (kind: 'netlink', options: NativeNetlinkOptions): NativeSocket;
    new (kind: 'packet', options: NativePacketOptions): NativeSocket;
  };
  setErrorFactory(factory: (errno: number, syscall: string, op: string) => Error): void;
  /** The calling thread's scheduling policy (SCHED_* of sched(7), SCHED_RESET_ON_FORK included) and static priority. */
  getScheduler(): [policy: number, priority: number];
  /** sched_setscheduler(2) on the calling thread; false, changing nothing, when not allowed (EPERM). */
  setScheduler(policy: number, priority: number): boolean;
}

let binding: NativeBinding | undefined;

/** The loaded addon (loaded once, on first use). */
export function native(): NativeBinding {
  if (binding) return binding;
  if (process.platform !== 'linux') throw new Error(`vipa runs on Linux only, not ${process.platform}`);
  // Netlink is host byte order; the codecs are written for little-endian hosts.
  if (endianness() !== 'LE') throw new Error('vipa supports little-endian hosts only');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('node-gyp-build') as (dir: string) => NativeBinding;
  const loaded = load(join(__dirname, '..'));
  loaded.setErrorFactory((errno, syscall, op) => new VipaError({ errno, syscall, op }));
  binding = loaded;
  return loaded;
}
