/**
 * Ethernet II framing (IEEE 802.3 clause 3.2.6 "Length/Type" ≥ 0x0600, the
 * DIX layout every IP stack uses: RFC 894 for IPv4/ARP, RFC 2464 for IPv6).
 *
 * Frames here never carry the FCS: AF_PACKET sockets neither take nor return
 * it. Nor do they carry 802.1Q tags on receive: the kernel moves a VLAN tag
 * into the packet's metadata (skb_vlan_untag) before packet taps see it, so a
 * frame with type 0x8100 is not one these codecs handle.
 */
import { DecodeError } from '../errors.js';

/** EtherType of IPv4 (RFC 894). */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of ARP (RFC 826). */
export const ETHERTYPE_ARP = 0x0806;
/** EtherType of IPv6 (RFC 2464 §3). */
export const ETHERTYPE_IPV6 = 0x86dd;

/** Bytes in an Ethernet II header: destination, source, EtherType. */
export const ETHERNET_HEADER_LENGTH = 14;

/**
 * The smallest frame an Ethernet NIC puts on the wire, without the 4-byte
 * FCS (IEEE 802.3 minimum 64 bytes including FCS). Drivers of real NICs pad
 * shorter frames; veth and the tools measured here (iputils arping,
 * keepalived, the kernel's own ARP) do not, so encoders here do not either
 * and decoders accept both lengths.
 */
export const ETHERNET_MIN_FRAME_LENGTH = 60;

/** Bytes in a MAC-48 address. */
export const MAC_LENGTH = 6;

/** A decoded Ethernet II header. */
export interface EthernetHeader {
  /** Destination MAC (a copy, 6 bytes). */
  destination: Uint8Array;
  /** Source MAC (a copy, 6 bytes). */
  source: Uint8Array;
  /** The Length/Type field; ≥ 0x0600 for an EtherType. */
  ethertype: number;
}

/**
 * Writes an Ethernet II header at `offset` of `frame` and returns the offset
 * just past it (where the payload starts).
 */
export function writeEthernetHeader(
  frame: Uint8Array,
  offset: number,
  destination: Uint8Array,
  source: Uint8Array,
  ethertype: number,
): number {
  frame.set(destination, offset);
  frame.set(source, offset + 6);
  frame[offset + 12] = ethertype >>> 8;
  frame[offset + 13] = ethertype & 0xff;
  return offset + ETHERNET_HEADER_LENGTH;
}

/**
 * Decodes the Ethernet II header at the start of `frame`. Throws
 * {@link DecodeError} (`codec` 'ethernet', reason 'short') when the frame has
 * fewer than 14 bytes, and reason 'invalid' when the Length/Type field is an
 * IEEE 802.3 length (< 0x0600) rather than an EtherType.
 */
export function decodeEthernetHeader(frame: Uint8Array): EthernetHeader {
  if (frame.length < ETHERNET_HEADER_LENGTH) {
    throw new DecodeError('ethernet', 'short', frame.length, `an Ethernet header has 14 bytes, the frame has ${frame.length}`);
  }
  const ethertype = readEthertype(frame);
  if (ethertype < 0x0600) {
    throw new DecodeError('ethernet', 'invalid', 12, `Length/Type ${ethertype} is an IEEE 802.3 length, not an EtherType`);
  }
  return { destination: copyBytes(frame, 0, 6), source: copyBytes(frame, 6, 12), ethertype };
}

/**
 * A plain Uint8Array copy of `frame[start .. end)`. Not `frame.slice()`: on
 * a Buffer (what sockets hand us) that returns a view, and decoded fields
 * must not change when the receive buffer is reused.
 */
export function copyBytes(frame: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  for (let i = start; i < end; i++) out[i - start] = frame[i]!;
  return out;
}

/** The EtherType of a frame of at least 14 bytes (no checks: callers check the length). */
export function readEthertype(frame: Uint8Array): number {
  return (frame[12]! << 8) | frame[13]!;
}

/** Throws a RangeError unless `mac` is a 6-byte MAC address (argument check for encoders). */
export function assertMac(mac: Uint8Array, what = 'mac'): void {
  if (!(mac instanceof Uint8Array) || mac.length !== MAC_LENGTH) {
    throw new RangeError(`${what} must be a 6-byte Uint8Array, got ${describeArgument(mac)}`);
  }
}

/** Text for an argument in RangeError messages. */
export function describeArgument(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return value === null ? 'null' : typeof value;
}
