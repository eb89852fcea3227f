/**
 * Addresses that disappear with their owner process.
 *
 * A kernel address outlives the process that added it. {@link AddressReaper}
 * starts a child process (native/reaper.cc) that deletes the addresses this
 * process holds the moment it dies, by any means: SIGKILL, a crash, the OOM
 * killer. Keep it armed with the current set after each change; on a clean
 * shutdown delete the addresses yourself and call `quit()`.
 *
 * A frozen process (SIGSTOP) is not dead: for that case held addresses also
 * carry a kernel lifetime (lease).
 */
import { parseIp } from '../ip.js';
import { native, type NativeReaper } from '../native.js';
import { bindLink, encodeAddressRequest, validateAddressSpec, type AddressSpec } from './address.js';
import { MessageWriter } from './message.js';

/** Where the reaper deletes. */
export interface AddressReaperOptions {
  /** Network namespace (path or fd) of the addresses; default the caller's. */
  netns?: string | number;
}

/**
 * A watchdog child process that deletes the armed addresses when this
 * process dies without calling {@link quit}.
 */
export class AddressReaper implements Disposable {
  private readonly reaper: NativeReaper;
  private readonly writer = new MessageWriter();
  private seq = 1;

  constructor(options: AddressReaperOptions = {}) {
    this.reaper = new (native().Reaper)(options.netns === undefined ? {} : { netns: options.netns });
  }

  /** The child's pid (for diagnostics); -1 after quit. */
  get pid(): number {
    return this.reaper.pid;
  }

  /** Whether the child is still running. */
  get alive(): boolean {
    return this.reaper.alive;
  }

  /**
   * Sets what to delete if this process dies: every address in `held`,
   * which must give interfaces by index (names would need a kernel lookup).
   * Replaces the previous set; an empty list disarms.
   */
  arm(held: readonly AddressSpec[]): void {
    if (held.length > 0xffff) throw new RangeError(`${held.length} addresses exceed 65535`);
    this.writer.reset();
    const locals: { family: 4 | 6; bytes: Uint8Array }[] = [];
    for (const spec of held) {
      const request = validateAddressSpec(spec);
      if (typeof spec.link !== 'number') throw new TypeError(`reaper needs interface indexes, got ${JSON.stringify(spec.link)}`);
      encodeAddressRequest(this.writer, 'delete', bindLink(request, { index: spec.link, name: '' }), this.seq++);
      locals.push({ family: request.family, bytes: request.local });
    }
    this.reaper.arm(encodeArmFrame(this.writer.buffer.subarray(0, this.writer.length), locals));
  }

  /**
   * After deleting the addresses, the child also sends `datagram` over UDP to
   * each of `peers`: a pre-signed "leave" lets them take over at once instead
   * of waiting to detect the death. Replaces the previous notification.
   *
   * `leadMs` (0..1000, default 0): send the datagram first and delete once
   * another host has announced every armed address (gratuitous ARP or
   * unsolicited neighbour advertisement: the next holder took over), at most
   * `leadMs` after. The next holder adds and announces while this host still
   * answers (make-before-break); two hosts answer only until the child sees
   * that announcement. Without CAP_NET_RAW the child cannot watch and waits
   * the whole `leadMs`.
   */
  notifyOnDeath(datagram: Uint8Array, peers: readonly { address: string; port: number }[], options: { leadMs?: number } = {}): void {
    if (datagram.length > 0xffff) throw new RangeError(`notification of ${datagram.length} bytes exceeds 65535`);
    if (peers.length > 0xffff) throw new RangeError(`${peers.length} peers exceed 65535`);
    const leadMs = options.leadMs ?? 0;
    if (typeof leadMs !== 'number' || !(leadMs >= 0 && leadMs <= 1000)) throw new RangeError(`leadMs must be a number of ms in 0..1000, got ${String(leadMs)}`);
    const payload = Buffer.alloc(4 + 2 + peers.length * 19 + 2 + datagram.length);
    payload.writeUInt32BE(Math.round(leadMs * 1000), 0);
    payload.writeUInt16BE(peers.length, 4);
    peers.forEach((peer, i) => {
      const ip = parseIp(peer.address);
      if (!ip) throw new RangeError(`peer ${i}: malformed IP address ${JSON.stringify(peer.address)}`);
      if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) throw new RangeError(`peer ${i}: port must be 1..65535, got ${peer.port}`);
      const o = 6 + i * 19;
      payload[o] = ip.family;
      payload.set(ip.bytes, o + 1);
      payload.writeUInt16BE(peer.port, o + 17);
    });
    const o = 6 + peers.length * 19;
    payload.writeUInt16BE(datagram.length, o);
    payload.set(datagram, o + 2);
    this.reaper.notify(payload);
  }

  /** Ends the child without deleting anything (after a clean shutdown deleted the addresses). */
  quit(): void {
    this.reaper.quit();
  }

  /** Same as {@link quit}. */
  [Symbol.dispose](): void {
    this.quit();
  }
}

/** Bytes per watched address in the arm frame: family, then 16 address bytes (native/reaper.cc kWatchEntry). */
const ARMED_ADDRESS_BYTES = 17;

/**
 * The native arm frame: u32 length and the delete requests, then u16 count
 * and per armed address its family (4 or 6) and 16 address bytes (IPv4 in
 * the first 4), the addresses whose announcement by another host ends the
 * lead (see {@link AddressReaper.notifyOnDeath}); network order.
 */
export function encodeArmFrame(requests: Uint8Array, locals: readonly { family: 4 | 6; bytes: Uint8Array }[]): Buffer {
  const frame = Buffer.alloc(4 + requests.length + 2 + locals.length * ARMED_ADDRESS_BYTES);
  frame.writeUInt32BE(requests.length, 0);
  frame.set(requests, 4);
  let o = 4 + requests.length;
  frame.writeUInt16BE(locals.length, o);
  o += 2;
  for (const l of locals) {
    frame[o] = l.family;
    frame.set(l.bytes, o + 1);
    o += ARMED_ADDRESS_BYTES;
  }
  return frame;
}
