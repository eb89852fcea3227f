/**
 * A request/response channel to rtnetlink over one native socket: sequence
 * numbers, acks, dumps and batches, synchronously or as Promises.
 *
 * rtnetlink handles a request inside sendto(2) and queues the reply before the
 * call returns, so both paths first read what is already there without
 * blocking; the synchronous path then waits in poll(2), the asynchronous one
 * on the Node event loop (uv_poll). Neither sleeps nor polls with timers.
 */
import { VipaError } from '../errors.js';
import { native, type NativeNetlinkOptions, type NativeSocket } from '../native.js';
import { NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_DUMP_INTR } from './constants.js';
import {
  ACK_LEN,
  align4,
  checkDatagramEnd,
  decodeAck,
  forEachMessage,
  messageAt,
  messageLengthAt,
  MessageWriter,
  type NetlinkAck,
  type NetlinkMessage,
} from './message.js';

/** Where and how to open a netlink channel. */
export interface ConnectionOptions {
  /** Network namespace to open the socket in: a path (/run/netns/NAME, /proc/PID/ns/net) or an fd. */
  netns?: string | number;
  /** Multicast groups to join (RTNLGRP_*). */
  groups?: number[];
  /** Receive buffer size in bytes. */
  receiveBufferSize?: number;
}

/** How long a synchronous request waits for the kernel before giving up. */
const SYNC_TIMEOUT_MS = 10_000;
/** Datagrams read at once on the async path before yielding to the event loop. */
const ASYNC_READ_BUDGET = 16;
const RECEIVE_BUFFER_BYTES = 256 * 1024;
/**
 * The largest datagram the kernel sends on a request socket: dump replies are
 * built in skbs of at most 32 KiB (netlink_dump). requestSync reads queued
 * acks back to back while this much of the buffer is free.
 */
const MAX_DATAGRAM_BYTES = 32 * 1024 + 4096;

/** An exchange in progress: `count` requests with consecutive sequence numbers. */
interface Exchange {
  firstSeq: number;
  count: number;
  acks: (NetlinkAck | undefined)[];
  remaining: number;
  interrupted: boolean;
  onMessage: ((m: NetlinkMessage) => void) | undefined;
  error: unknown;
  resolve?: (acks: NetlinkAck[]) => void;
  reject?: (e: unknown) => void;
}

/**
 * The failed acks of requests sent together, by request index (0 = the one
 * with the first sequence number). Requests not in it were acked with 0.
 */
export type FailedAcks = Map<number, NetlinkAck>;

/** Thrown internally when a dump was interrupted by a concurrent change (NLM_F_DUMP_INTR); the dump is retried. */
class DumpInterrupted extends Error {}

/** The error after every retry of a dump was interrupted: EAGAIN, with the reason in extack. */
function dumpGaveUp(op: string, attempts: number): VipaError {
  return new VipaError({ errno: 11 /* EAGAIN */, syscall: 'netlink', op, extack: `dump interrupted by concurrent changes (NLM_F_DUMP_INTR) ${attempts} times in a row; try again` });
}

/**
 * One rtnetlink socket used for requests. Not for multicast events (see
 * NetlinkMonitor, which owns its own socket).
 */
export class NetlinkConnection {
  readonly socket: NativeSocket;
  /** Reused request buffer: requests are encoded here, then sent. */
  readonly writer = new MessageWriter();
  private readonly receiveMemory = new ArrayBuffer(RECEIVE_BUFFER_BYTES);
  private readonly receiveBuffer = Buffer.from(this.receiveMemory);
  /** The receive buffer as host-order (little-endian) 32-bit words: the ack reader's view (message starts are 4-aligned). */
  private readonly receiveWords = new Int32Array(this.receiveMemory);
  private seq: number;
  private readonly exchanges = new Map<number, Exchange>();
  private reading = false;
  private closed = false;

  constructor(options: ConnectionOptions = {}, op = 'netlink open') {
    const nativeOptions: NativeNetlinkOptions = { protocol: NETLINK_ROUTE, op };
    if (options.netns !== undefined) nativeOptions.netns = options.netns;
    if (options.groups) nativeOptions.groups = options.groups;
    this.socket = new (native().Socket)('netlink', nativeOptions);
    if (options.receiveBufferSize) this.socket.setBufferSizes(options.receiveBufferSize, 0);
    this.seq = (Date.now() & 0x3fffffff) + 1;
  }

  /** Reserves `count` consecutive sequence numbers and returns the first. */
  nextSeq(count = 1): number {
    const first = this.seq;
    this.seq = (this.seq + count) >>> 0 || 1;
    return first;
  }

  /** True once closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  private newExchange(firstSeq: number, count: number, onMessage?: (m: NetlinkMessage) => void): Exchange {
    const ex: Exchange = {
      firstSeq, count, acks: new Array(count), remaining: count, interrupted: false, onMessage, error: undefined,
    };
    for (let i = 0; i < count; i++) this.exchanges.set((firstSeq + i) >>> 0, ex);
    return ex;
  }

  private finish(ex: Exchange): void {
    for (let i = 0; i < ex.count; i++) this.exchanges.delete((ex.firstSeq + i) >>> 0);
  }

  /** Routes every message of one datagram to its exchange. */
  private dispatch(length: number): void {
    forEachMessage(this.receiveBuffer, length, (m) => this.route(m));
  }

  /** Routes one message to its exchange. */
  private route(m: NetlinkMessage): void {
    const ex = this.exchanges.get(m.seq);
    if (!ex) return; // a reply to an exchange that already gave up
    const index = (m.seq - ex.firstSeq) >>> 0;
    if ((m.flags & NLM_F_DUMP_INTR) !== 0) ex.interrupted = true;
    if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) {
      if (ex.acks[index]) return;
      let ack: NetlinkAck;
      if (m.type === NLMSG_ERROR) ack = decodeAck(m);
      else ack = { errno: m.end - m.payloadOffset >= 4 ? -m.buffer.readInt32LE(m.payloadOffset) : 0 };
      ex.acks[index] = ack;
      ex.remaining--;
      if (ex.remaining === 0) this.complete(ex);
      return;
    }
    if (ex.onMessage) {
      try {
        ex.onMessage(m);
      } catch (e) {
        ex.error ??= e;
      }
    }
  }

  private complete(ex: Exchange): void {
    this.finish(ex);
    if (!ex.resolve) return;
    if (ex.error !== undefined) ex.reject!(ex.error);
    else if (ex.interrupted) ex.reject!(new DumpInterrupted());
    else ex.resolve(ex.acks as NetlinkAck[]);
  }

  private ensureOpen(op: string): void {
    if (this.closed) throw new VipaError({ errno: 9 /* EBADF */, syscall: 'sendto', op, subject: '(handle closed)' });
  }

  /**
   * Sends what the writer holds (requests with sequence numbers firstSeq ..
   * firstSeq+count−1) and waits for all their acks or dump ends. Messages of
   * the reply go to `onMessage`. Returns one ack per request. Requests
   * answered by an ack alone are cheaper through {@link requestSync}.
   */
  exchangeSync(op: string, firstSeq: number, count: number, onMessage?: (m: NetlinkMessage) => void): NetlinkAck[] {
    this.ensureOpen(op);
    const ex = this.newExchange(firstSeq, count, onMessage);
    try {
      this.socket.send(this.writer.buffer, 0, this.writer.length);
      const deadline = Date.now() + SYNC_TIMEOUT_MS;
      while (ex.remaining > 0) {
        const n = this.socket.recv(this.receiveBuffer, Math.max(0, deadline - Date.now()));
        if (n < 0) throw new VipaError({ errno: 110 /* ETIMEDOUT */, syscall: 'recvfrom', op });
        this.dispatch(n);
      }
    } finally {
      this.finish(ex);
    }
    if (ex.error !== undefined) throw ex.error;
    if (ex.interrupted) throw new DumpInterrupted();
    return ex.acks as NetlinkAck[];
  }

  /**
   * Sends `length` bytes of `buffer` (default: what the writer holds):
   * `count` requests with sequence numbers firstSeq .. firstSeq+count−1,
   * each answered by one ack and nothing else (address and link changes),
   * and waits for their acks. Returns undefined when every ack was 0, else
   * the failed ones by request index.
   *
   * The hot path of every change: when every ack is 0 it allocates nothing,
   * and it reads no clock unless the kernel's reply is not queued yet (it
   * usually is: rtnetlink answers inside sendto). Replies to other
   * exchanges in flight on this socket still reach them.
   */
  requestSync(op: string, firstSeq: number, count: number, buffer: Buffer = this.writer.buffer, length: number = this.writer.length): FailedAcks | undefined {
    this.ensureOpen(op);
    if (length === buffer.length) this.socket.send(buffer);
    else this.socket.send(buffer, 0, length);
    const b = this.receiveBuffer;
    const words = this.receiveWords;
    let failed: FailedAcks | undefined;
    let remaining = count;
    let deadline = 0;
    while (remaining > 0) {
      // Every ack already queued in one call (rtnetlink acks inside sendto): one crossing into the addon, not one per ack.
      let n = this.socket.recvMany(b, 0, MAX_DATAGRAM_BYTES);
      if (n < 0) {
        deadline ||= Date.now() + SYNC_TIMEOUT_MS;
        n = this.socket.recvMany(b, Math.max(0, deadline - Date.now()), MAX_DATAGRAM_BYTES);
        if (n < 0) throw new VipaError({ errno: 110 /* ETIMEDOUT */, syscall: 'recvfrom', op });
      }
      // Header fields read as words (one typed-array load each): nlmsg_len, type | flags << 16, seq, pid, then the error code.
      let o = 0;
      while (o + NLMSG_HDRLEN <= n) {
        const w = o >> 2;
        const len = words[w]! >>> 0;
        if (len < NLMSG_HDRLEN || o + len > n) messageLengthAt(b, o, n); // throws the DecodeError
        const index = (words[w + 2]! - firstSeq) >>> 0;
        if (index < count && (words[w + 1]! & 0xffff) === NLMSG_ERROR) {
          // An ack of ours: a 0 costs nothing; an error is decoded with its extended ack.
          if (len < ACK_LEN || words[w + 4] !== 0) {
            const ack = decodeAck(messageAt(b, o, len));
            if (ack.errno !== 0) (failed ??= new Map()).set(index, ack);
          }
          remaining--;
        } else {
          this.route(messageAt(b, o, len));
        }
        o += align4(len);
      }
      if (o !== n) checkDatagramEnd(o, n);
    }
    return failed;
  }

  /** The Promise form of {@link requestSync}; never blocks the event loop. */
  async request(op: string, firstSeq: number, count: number, buffer: Buffer = this.writer.buffer, length: number = this.writer.length): Promise<FailedAcks | undefined> {
    const acks = await this.exchangeFrom(op, firstSeq, count, undefined, buffer, length);
    let failed: FailedAcks | undefined;
    for (let i = 0; i < count; i++) if (acks[i]!.errno !== 0) (failed ??= new Map()).set(i, acks[i]!);
    return failed;
  }

  /** The Promise form of {@link exchangeSync}; never blocks the event loop. */
  exchange(op: string, firstSeq: number, count: number, onMessage?: (m: NetlinkMessage) => void): Promise<NetlinkAck[]> {
    return this.exchangeFrom(op, firstSeq, count, onMessage, this.writer.buffer, this.writer.length);
  }

  private exchangeFrom(op: string, firstSeq: number, count: number, onMessage: ((m: NetlinkMessage) => void) | undefined, buffer: Buffer, length: number): Promise<NetlinkAck[]> {
    this.ensureOpen(op);
    return new Promise<NetlinkAck[]>((resolve, reject) => {
      const ex = this.newExchange(firstSeq, count, onMessage);
      ex.resolve = resolve;
      ex.reject = reject;
      try {
        this.socket.send(buffer, 0, length);
        // The reply is usually queued already: take it without a loop round trip.
        for (let i = 0; i < ASYNC_READ_BUDGET && ex.remaining > 0; i++) {
          const n = this.socket.recv(this.receiveBuffer, 0);
          if (n < 0) break;
          this.dispatch(n);
        }
      } catch (e) {
        this.finish(ex);
        reject(e);
        return;
      }
      if (ex.remaining > 0) this.startReading();
    });
  }

  private startReading(): void {
    if (this.reading) return;
    this.reading = true;
    this.socket.startReading(this.receiveBuffer, (n) => {
      if (n < 0) {
        const error = new VipaError({ errno: -n, syscall: 'recvfrom', op: 'netlink receive' });
        for (const ex of new Set(this.exchanges.values())) {
          this.finish(ex);
          ex.reject?.(error);
        }
      } else {
        try {
          this.dispatch(n);
        } catch (e) {
          // A malformed datagram fails everything waiting on this socket.
          for (const ex of new Set(this.exchanges.values())) {
            this.finish(ex);
            ex.reject?.(e);
          }
        }
      }
      if (this.exchanges.size === 0) this.stopReading();
    });
  }

  private stopReading(): void {
    if (!this.reading) return;
    this.reading = false;
    this.socket.stopReading();
  }

  /** Runs a dump, retrying when the kernel flags it interrupted by a concurrent change. */
  dumpSync(op: string, encode: (seq: number) => void, onMessage: (m: NetlinkMessage) => void, begin?: () => void): void {
    for (let attempt = 0; ; attempt++) {
      this.writer.reset();
      const seq = this.nextSeq();
      encode(seq);
      begin?.();
      try {
        const [ack] = this.exchangeSync(op, seq, 1, onMessage);
        if (ack!.errno !== 0) throw new VipaError({ errno: ack!.errno, syscall: 'netlink', op });
        return;
      } catch (e) {
        if (!(e instanceof DumpInterrupted)) throw e;
        if (attempt >= 5) throw dumpGaveUp(op, attempt + 1);
      }
    }
  }

  /** The Promise form of {@link dumpSync}. */
  async dump(op: string, encode: (seq: number) => void, onMessage: (m: NetlinkMessage) => void, begin?: () => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      this.writer.reset();
      const seq = this.nextSeq();
      encode(seq);
      begin?.();
      try {
        const [ack] = await this.exchange(op, seq, 1, onMessage);
        if (ack!.errno !== 0) throw new VipaError({ errno: ack!.errno, syscall: 'netlink', op });
        return;
      } catch (e) {
        if (!(e instanceof DumpInterrupted)) throw e;
        if (attempt >= 5) throw dumpGaveUp(op, attempt + 1);
      }
    }
  }

  /** Closes the socket. Pending Promises reject with EBADF. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopReading();
    const error = new VipaError({ errno: 9, syscall: 'close', op: 'netlink', subject: '(handle closed)' });
    for (const ex of new Set(this.exchanges.values())) {
      this.finish(ex);
      ex.reject?.(error);
    }
    this.socket.close();
  }
}
