/**
 * Link and address change events from the kernel (RTNLGRP_LINK,
 * RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR), driven by the socket becoming
 * readable on the Node event loop: no timers, no polling.
 *
 * When the kernel drops notifications because the receive buffer was full
 * (recvmsg fails with ENOBUFS, netlink(7)), the monitor re-reads the full
 * state with dumps and emits one 'resync' event carrying it, so consumers
 * never silently lose state.
 */
import { EventEmitter } from 'node:events';
import { VipaError } from '../errors.js';
import type { Address } from './address.js';
import { NetlinkConnection } from './connection.js';
import { RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK } from './constants.js';
import { decodeLink, type Link } from './link.js';
import { decodeAddress } from './address.js';
import { forEachMessage } from './message.js';
import { Netlink } from './netlink.js';

/** A link appeared or changed ('new') or disappeared ('del'). */
export interface LinkEvent {
  type: 'link';
  action: 'new' | 'del';
  link: Link;
}

/** An address was added or changed ('new') or removed ('del'). */
export interface AddressEvent {
  type: 'address';
  action: 'new' | 'del';
  address: Address;
}

/** Notifications were lost; this is the complete current state. */
export interface ResyncEvent {
  type: 'resync';
  links: Link[];
  addresses: Address[];
}

/** Any monitor event. */
export type NetlinkEvent = LinkEvent | AddressEvent | ResyncEvent;

/** What to watch and where. */
export interface NetlinkMonitorOptions {
  /** Network namespace (path or fd); default the caller's. */
  netns?: string | number;
  /** Watch links (default true). */
  links?: boolean;
  /** Watch IPv4 and IPv6 addresses (default true). */
  addresses?: boolean;
  /** Receive buffer in bytes (default 4 MiB, forced when permitted). Small values make overflows likely. */
  receiveBufferSize?: number;
}

/** Typed events of {@link NetlinkMonitor}. */
export interface NetlinkMonitorEvents {
  link: [LinkEvent];
  address: [AddressEvent];
  resync: [ResyncEvent];
  error: [Error];
}

const DEFAULT_RECEIVE_BUFFER = 4 << 20;
const MONITOR_BUFFER_BYTES = 64 * 1024;

/**
 * Watches link and address changes. Use as an EventEmitter ('link',
 * 'address', 'resync', 'error') or as an async iterator of
 * {@link NetlinkEvent}; an open monitor keeps the process alive until
 * `close()`. Equivalent to: ip monitor link address.
 *
 * @example
 * ```ts
 * using monitor = new NetlinkMonitor();
 * for await (const event of monitor) console.log(event);
 * ```
 */
export class NetlinkMonitor extends EventEmitter<NetlinkMonitorEvents> implements AsyncIterable<NetlinkEvent>, Disposable {
  private readonly conn: NetlinkConnection;
  private readonly options: NetlinkMonitorOptions;
  private readonly buffer = Buffer.alloc(MONITOR_BUFFER_BYTES);
  private readonly iterators = new Set<EventQueue>();
  private closed = false;
  /** Number of overflows (ENOBUFS) recovered by a resync. */
  overflows = 0;

  constructor(options: NetlinkMonitorOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    this.options = options;
    const groups: number[] = [];
    if (options.links !== false) groups.push(RTNLGRP_LINK);
    if (options.addresses !== false) groups.push(RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR);
    if (groups.length === 0) throw new RangeError('monitor needs links or addresses (both are false)');
    const size = options.receiveBufferSize ?? DEFAULT_RECEIVE_BUFFER;
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`receiveBufferSize must be a positive integer, got ${String(size)}`);
    const connOptions: ConstructorParameters<typeof NetlinkConnection>[0] = { groups, receiveBufferSize: size };
    if (options.netns !== undefined) connOptions.netns = options.netns;
    this.conn = new NetlinkConnection(connOptions, 'monitor open');
    this.conn.socket.startReading(this.buffer, (n) => this.onDatagram(n));
  }

  private onDatagram(n: number): void {
    if (n === -105 /* ENOBUFS */) {
      this.resync();
      return;
    }
    if (n < 0) {
      this.emitEvent('error', new VipaError({ errno: -n, syscall: 'recvfrom', op: 'monitor receive' }));
      return;
    }
    try {
      forEachMessage(this.buffer, n, (m) => {
        if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
          this.publish({ type: 'link', action: m.type === RTM_NEWLINK ? 'new' : 'del', link: decodeLink(m) });
        } else if (m.type === RTM_NEWADDR || m.type === RTM_DELADDR) {
          const address = decodeAddress(m);
          if (address) this.publish({ type: 'address', action: m.type === RTM_NEWADDR ? 'new' : 'del', address });
        }
      });
    } catch (e) {
      this.emitEvent('error', e as Error);
    }
  }

  /** Re-reads links and addresses after lost notifications and publishes them as one event. */
  private resync(): void {
    this.overflows++;
    try {
      using nl = new Netlink(this.options.netns === undefined ? {} : { netns: this.options.netns });
      const event: ResyncEvent = {
        type: 'resync',
        links: this.options.links === false ? [] : nl.linkListSync(),
        addresses: this.options.addresses === false ? [] : nl.addrListSync(),
      };
      this.publish(event);
    } catch (e) {
      this.emitEvent('error', e as Error);
    }
  }

  private publish(event: NetlinkEvent): void {
    for (const q of this.iterators) q.push(event);
    if (event.type === 'link') this.emit('link', event);
    else if (event.type === 'address') this.emit('address', event);
    else this.emit('resync', event);
  }

  private emitEvent(name: 'error', error: Error): void {
    for (const q of this.iterators) q.fail(error);
    if (this.listenerCount('error') > 0 || this.iterators.size === 0) this.emit(name, error);
  }

  /** Iterates events from now on; ends when the monitor closes, throws on a monitor error. */
  [Symbol.asyncIterator](): AsyncIterator<NetlinkEvent> {
    const queue = new EventQueue(() => this.iterators.delete(queue));
    if (this.closed) queue.end();
    else this.iterators.add(queue);
    return queue;
  }

  /** Stops watching and closes the socket. Iterators end. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
    for (const q of this.iterators) q.end();
    this.iterators.clear();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Buffers events for one async iterator between `next()` calls. */
class EventQueue implements AsyncIterator<NetlinkEvent> {
  private readonly items: NetlinkEvent[] = [];
  private waiting: { resolve: (r: IteratorResult<NetlinkEvent>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;

  constructor(private readonly onReturn: () => void) {}

  push(event: NetlinkEvent): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: event, done: false });
    } else this.items.push(event);
  }

  fail(error: unknown): void {
    this.error = error;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(error);
    }
  }

  end(): void {
    this.done = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<NetlinkEvent>> {
    const item = this.items.shift();
    if (item) return Promise.resolve({ value: item, done: false });
    if (this.error !== undefined) {
      const e = this.error;
      this.error = undefined;
      return Promise.reject(e);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<NetlinkEvent>> {
    this.done = true;
    this.items.length = 0;
    this.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }
}
