/**
 * Netlink message framing (netlink(7), linux/netlink.h): the 16-byte header,
 * 4-byte alignment, attribute TLVs, and NLMSG_ERROR with extended-ack TLVs.
 * Netlink uses host byte order; vipa runs on little-endian Linux only
 * (checked at load in lib/native.ts).
 */
import { DecodeError } from '../errors.js';
import {
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
} from './constants.js';

/** Rounds up to the 4-byte netlink alignment (NLMSG_ALIGN / NLA_ALIGN). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Builds netlink requests into one reusable buffer: several messages may be
 * appended (a batch) and sent with one sendto(2).
 */
export class MessageWriter {
  buffer: Buffer;
  /** Bytes written so far. */
  length = 0;
  private messageStart = -1;
  private readonly nestStarts: number[] = [];

  constructor(initialSize = 4096) {
    this.buffer = Buffer.alloc(initialSize);
  }

  /** Forgets everything written. */
  reset(): void {
    this.length = 0;
    this.messageStart = -1;
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const next = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + extra));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  /** Starts a message; its length is patched in by {@link endMessage}. */
  beginMessage(type: number, flags: number, seq: number): void {
    this.ensure(NLMSG_HDRLEN);
    const b = this.buffer;
    const o = this.length;
    this.messageStart = o;
    b.writeUInt32LE(0, o);
    b.writeUInt16LE(type, o + 4);
    b.writeUInt16LE(flags, o + 6);
    b.writeUInt32LE(seq >>> 0, o + 8);
    b.writeUInt32LE(0, o + 12); // nlmsg_pid: 0 = to the kernel
    this.length = o + NLMSG_HDRLEN;
  }

  /** Appends zeroed fixed-size family header bytes and returns their offset. */
  reserve(size: number): number {
    this.ensure(align4(size));
    const o = this.length;
    this.buffer.fill(0, o, o + align4(size));
    this.length = o + align4(size);
    return o;
  }

  /** Appends an attribute with raw bytes. */
  attrBytes(type: number, value: Uint8Array): void {
    const len = 4 + value.length;
    this.ensure(align4(len));
    const b = this.buffer;
    const o = this.length;
    b.writeUInt16LE(len, o);
    b.writeUInt16LE(type, o + 2);
    b.set(value, o + 4);
    b.fill(0, o + len, o + align4(len));
    this.length = o + align4(len);
  }

  /** Appends a u8 attribute. */
  attrU8(type: number, value: number): void {
    this.ensure(8);
    const b = this.buffer;
    const o = this.length;
    b.writeUInt16LE(5, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(value & 0xff, o + 4); // value byte then 3 padding zeros (little-endian)
    this.length = o + 8;
  }

  /** Appends a u32 attribute. */
  attrU32(type: number, value: number): void {
    this.ensure(8);
    const b = this.buffer;
    const o = this.length;
    b.writeUInt16LE(8, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(value >>> 0, o + 4);
    this.length = o + 8;
  }

  /** Appends a NUL-terminated string attribute. */
  attrString(type: number, value: string): void {
    const bytes = Buffer.from(`${value}\0`, 'utf8');
    this.attrBytes(type, bytes);
  }

  /** Opens a nested attribute; close it with {@link endNest}. */
  beginNest(type: number): void {
    this.ensure(4);
    this.nestStarts.push(this.length);
    this.buffer.writeUInt16LE(type, this.length + 2);
    this.length += 4;
  }

  /** Closes the innermost nested attribute. */
  endNest(): void {
    const start = this.nestStarts.pop();
    if (start === undefined) throw new Error('endNest without beginNest');
    this.buffer.writeUInt16LE(this.length - start, start);
  }

  /** Patches the current message's length. */
  endMessage(): void {
    this.buffer.writeUInt32LE(this.length - this.messageStart, this.messageStart);
    this.messageStart = -1;
  }
}

/** One netlink message inside a received datagram (a view, not a copy). */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** The datagram buffer. */
  buffer: Buffer;
  /** Offset of the payload (after the 16-byte header). */
  payloadOffset: number;
  /** Offset one past the message end. */
  end: number;
}

/**
 * The length (nlmsg_len) of the message at `offset` of a datagram of `length`
 * bytes, checked: DecodeError when it is shorter than a header or runs past
 * the datagram. The caller has checked that a whole header fits.
 */
export function messageLengthAt(buffer: Buffer, offset: number, length: number): number {
  const len = buffer.readUInt32LE(offset);
  if (len < NLMSG_HDRLEN || offset + len > length) {
    throw new DecodeError('netlink', 'truncated', offset, `message length ${len} with ${length - offset} bytes left`);
  }
  return len;
}

/** A view of the message at `offset` whose length {@link messageLengthAt} returned. */
export function messageAt(buffer: Buffer, offset: number, len: number): NetlinkMessage {
  return {
    type: buffer.readUInt16LE(offset + 4),
    flags: buffer.readUInt16LE(offset + 6),
    seq: buffer.readUInt32LE(offset + 8),
    pid: buffer.readUInt32LE(offset + 12),
    buffer,
    payloadOffset: offset + NLMSG_HDRLEN,
    end: offset + len,
  };
}

/**
 * Checks what follows the last whole message of a datagram (`end` is where
 * the next header would start): DecodeError when 4 or more bytes are left
 * that do not make a header.
 */
export function checkDatagramEnd(end: number, length: number): void {
  if (end < length && length - end >= 4) {
    throw new DecodeError('netlink', 'short', end, `${length - end} trailing bytes are not a message header`);
  }
}

/**
 * Calls `visit` for every message in `length` bytes of `buffer`. Throws
 * DecodeError when a header is short or a length runs past the datagram.
 */
export function forEachMessage(buffer: Buffer, length: number, visit: (m: NetlinkMessage) => void): void {
  let o = 0;
  while (o + NLMSG_HDRLEN <= length) {
    const len = messageLengthAt(buffer, o, length);
    visit(messageAt(buffer, o, len));
    o += align4(len);
  }
  checkDatagramEnd(o, length);
}

/** An attribute inside a message: type (nested/byte-order bits cleared) and value range. */
export interface Attribute {
  type: number;
  start: number;
  end: number;
}

/** Calls `visit` for every attribute between `start` and `end`; stops at a malformed one. */
export function forEachAttribute(buffer: Buffer, start: number, end: number, visit: (a: Attribute) => void): void {
  let o = start;
  while (o + 4 <= end) {
    const len = buffer.readUInt16LE(o);
    if (len < 4 || o + len > end) {
      throw new DecodeError('netlink', 'truncated', o, `attribute length ${len} with ${end - o} bytes left`);
    }
    visit({ type: buffer.readUInt16LE(o + 2) & 0x3fff, start: o + 4, end: o + len });
    o += align4(len);
  }
}

/** Reads a NUL-terminated string attribute value. */
export function readString(buffer: Buffer, a: Attribute): string {
  let e = a.end;
  while (e > a.start && buffer[e - 1] === 0) e--;
  return buffer.toString('utf8', a.start, e);
}

/** Reads a u32 attribute value; DecodeError when it is shorter than 4 bytes. */
export function readU32(buffer: Buffer, a: Attribute): number {
  if (a.end - a.start < 4) throw new DecodeError('netlink', 'short', a.start, `u32 attribute ${a.type} has ${a.end - a.start} bytes`);
  return buffer.readUInt32LE(a.start);
}

/** The content of an NLMSG_ERROR message: 0 for an ack, or a negative errno with extended-ack details. */
export interface NetlinkAck {
  /** 0 = success, otherwise a positive errno. */
  errno: number;
  /** Extended-ack text (NLMSGERR_ATTR_MSG). */
  message?: string;
  /** Offset of the bad attribute in the request (NLMSGERR_ATTR_OFFS). */
  offset?: number;
}

/** The ack of a request that succeeded (shared and frozen: never mutate it). */
export const ACK_OK: NetlinkAck = Object.freeze({ errno: 0 });

/** Bytes of an NLMSG_ERROR carrying a success ack: header, error code, the echoed request's header (NETLINK_CAP_ACK). */
export const ACK_LEN = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;

/** Decodes an NLMSG_ERROR payload (struct nlmsgerr + optional TLVs). */
export function decodeAck(m: NetlinkMessage): NetlinkAck {
  if (m.type !== NLMSG_ERROR) throw new DecodeError('netlink', 'invalid', m.payloadOffset, `message type ${m.type} is not NLMSG_ERROR`);
  const b = m.buffer;
  if (m.end - m.payloadOffset < 4 + NLMSG_HDRLEN) {
    throw new DecodeError('netlink', 'short', m.payloadOffset, 'NLMSG_ERROR shorter than struct nlmsgerr');
  }
  const error = b.readInt32LE(m.payloadOffset);
  const ack: NetlinkAck = { errno: error === 0 ? 0 : -error };
  if (error === 0 || (m.flags & NLM_F_ACK_TLVS) === 0) return ack;
  // TLVs follow the echoed request: only its header when capped (netlink(7)).
  const echoedLen = b.readUInt32LE(m.payloadOffset + 4);
  const tlvStart = m.payloadOffset + 4 + ((m.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : align4(echoedLen));
  if (tlvStart > m.end) return ack;
  forEachAttribute(b, tlvStart, m.end, (a) => {
    if (a.type === NLMSGERR_ATTR_MSG) ack.message = readString(b, a);
    else if (a.type === NLMSGERR_ATTR_OFFS) ack.offset = readU32(b, a);
  });
  return ack;
}
