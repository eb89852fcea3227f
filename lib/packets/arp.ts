/**
 * ARP for Ethernet and IPv4 (RFC 826): gratuitous ARP to move an address
 * (RFC 5227 §2.3 "ARP Announcement", RFC 5944 §4.6), the RFC 5227 §2.1.1
 * probe to find out whether an address is in use, and a decoder for
 * conflict detection.
 *
 * Packet layout after the 14-byte Ethernet header (RFC 826 "Packet format"):
 *
 * | offset | bytes | RFC 826 | field                                  |
 * |--------|-------|---------|----------------------------------------|
 * | 14     | 2     | ar$hrd  | hardware type, 1 = Ethernet            |
 * | 16     | 2     | ar$pro  | protocol type, 0x0800 = IPv4           |
 * | 18     | 1     | ar$hln  | hardware address length, 6             |
 * | 19     | 1     | ar$pln  | protocol address length, 4             |
 * | 20     | 2     | ar$op   | 1 = request, 2 = reply                 |
 * | 22     | 6     | ar$sha  | sender hardware address                |
 * | 28     | 4     | ar$spa  | sender protocol address                |
 * | 32     | 6     | ar$tha  | target hardware address                |
 * | 38     | 4     | ar$tpa  | target protocol address                |
 *
 * Frames are 42 bytes, unpadded: that is what iputils arping, keepalived
 * 2.2.7 and the Linux kernel hand to the device (see
 * test/fixtures/frames/README.md); a real NIC pads to 60 bytes on the wire
 * and the decoder ignores such trailing bytes.
 *
 * Target hardware address, where the tools differ:
 * - Gratuitous request and probe: all zeroes, as RFC 5227 §2.1.1 and §2.3
 *   say ("SHOULD be set to all zeroes") and as the kernel's own gratuitous
 *   ARP (arp_notify) sends. iputils arping -U/-D and keepalived put
 *   ff:ff:ff:ff:ff:ff there; receivers ignore ar$tha in requests (RFC 826
 *   reception algorithm), so both work.
 * - Gratuitous reply: the sender's own MAC, as RFC 5944 §4.6 says for an ARP
 *   Reply used gratuitously ("the Target Hardware Address is also set to the
 *   link-layer address to which this cache entry should be updated") and
 *   as iputils arping -A sends, byte for byte. keepalived sends no replies.
 */
import { DecodeError } from '../errors.js';
import { ETHERTYPE_ARP, ETHERNET_HEADER_LENGTH, assertMac, copyBytes, describeArgument, readEthertype } from './ethernet.js';

/** ar$hrd for Ethernet (RFC 826; IANA ARP parameters "Hardware Types"). */
export const ARP_HRD_ETHERNET = 1;
/** ar$op of a request (RFC 826). */
export const ARP_OP_REQUEST = 1;
/** ar$op of a reply (RFC 826). */
export const ARP_OP_REPLY = 2;
/** Bytes of an Ethernet/IPv4 ARP packet, without the Ethernet header. */
export const ARP_PACKET_LENGTH = 28;
/** Bytes of an unpadded Ethernet/IPv4 ARP frame (14 + 28). */
export const ARP_FRAME_LENGTH = ETHERNET_HEADER_LENGTH + ARP_PACKET_LENGTH;

/** The two ARP operations vipa sends and understands. */
export type ArpOperation = 'request' | 'reply';

/** A decoded Ethernet/IPv4 ARP frame. Every array is a copy of the frame's bytes. */
export interface ArpPacket {
  /** ar$op. */
  operation: ArpOperation;
  /** ar$sha, 6 bytes. */
  senderMac: Uint8Array;
  /** ar$spa, 4 bytes; 0.0.0.0 in an RFC 5227 probe. */
  senderIp: Uint8Array;
  /** ar$tha, 6 bytes. */
  targetMac: Uint8Array;
  /** ar$tpa, 4 bytes. */
  targetIp: Uint8Array;
  /** Ethernet source address, 6 bytes. */
  ethSource: Uint8Array;
  /** Ethernet destination address, 6 bytes. */
  ethDestination: Uint8Array;
}

/** Arguments of {@link encodeGratuitousArp}. */
export interface GratuitousArpOptions {
  /** The announcing interface's MAC (6 bytes): Ethernet source and ar$sha. */
  mac: Uint8Array;
  /** The IPv4 address being announced (4 bytes): ar$spa and ar$tpa. */
  address: Uint8Array;
  /** 'request' (RFC 5227 §2.3 announcement) or 'reply' (RFC 5944 §4.6). */
  operation: ArpOperation;
}

/** Arguments of {@link encodeArpProbe}. */
export interface ArpProbeOptions {
  /** The probing interface's MAC (6 bytes): Ethernet source and ar$sha. */
  mac: Uint8Array;
  /** The IPv4 address being probed (4 bytes): ar$tpa. */
  address: Uint8Array;
}

const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ZERO_MAC = new Uint8Array(6);
const ZERO_IPV4 = new Uint8Array(4);

function assertIpv4(address: Uint8Array): void {
  if (!(address instanceof Uint8Array) || address.length !== 4) {
    throw new RangeError(`address must be a 4-byte Uint8Array (IPv4), got ${describeArgument(address)}`);
  }
}

// Byte-wise copies: for 4 and 6 bytes they beat TypedArray#set, which is a
// call into the runtime, and they keep the encoders around 0.1 µs.
function put6(frame: Uint8Array, offset: number, source: Uint8Array): void {
  frame[offset] = source[0]!;
  frame[offset + 1] = source[1]!;
  frame[offset + 2] = source[2]!;
  frame[offset + 3] = source[3]!;
  frame[offset + 4] = source[4]!;
  frame[offset + 5] = source[5]!;
}

function put4(frame: Uint8Array, offset: number, source: Uint8Array): void {
  frame[offset] = source[0]!;
  frame[offset + 1] = source[1]!;
  frame[offset + 2] = source[2]!;
  frame[offset + 3] = source[3]!;
}

function writeArpFrame(
  ethDestination: Uint8Array,
  ethSource: Uint8Array,
  operation: number,
  senderMac: Uint8Array,
  senderIp: Uint8Array,
  targetMac: Uint8Array,
  targetIp: Uint8Array,
): Buffer {
  const frame = Buffer.allocUnsafe(ARP_FRAME_LENGTH);
  put6(frame, 0, ethDestination);
  put6(frame, 6, ethSource);
  frame[12] = ETHERTYPE_ARP >>> 8;
  frame[13] = ETHERTYPE_ARP & 0xff;
  frame[14] = 0; // ar$hrd = 1, Ethernet
  frame[15] = ARP_HRD_ETHERNET;
  frame[16] = 0x08; // ar$pro = 0x0800, IPv4
  frame[17] = 0x00;
  frame[18] = 6; // ar$hln
  frame[19] = 4; // ar$pln
  frame[20] = 0; // ar$op
  frame[21] = operation;
  put6(frame, 22, senderMac);
  put4(frame, 28, senderIp);
  put6(frame, 32, targetMac);
  put4(frame, 38, targetIp);
  return frame;
}

/**
 * Encodes a gratuitous ARP frame announcing that `address` is at `mac`, so
 * neighbours update their caches after a takeover. Sender and target
 * protocol address are both the address; the Ethernet destination is
 * broadcast.
 *
 * - `'request'` (RFC 5227 §2.3): ar$tha = 00:00:00:00:00:00, byte-identical
 *   to the Linux kernel's own gratuitous ARP.
 * - `'reply'` (RFC 5944 §4.6): ar$tha = `mac`, byte-identical to
 *   `arping -A`. Some switches and hosts refresh their tables only on
 *   replies, so vipa sends both by default.
 *
 * Linux receivers with arp_accept=0 update an existing entry but create none.
 */
export function encodeGratuitousArp(options: GratuitousArpOptions): Buffer {
  const { mac, address, operation } = options;
  assertMac(mac);
  assertIpv4(address);
  if (operation === 'request') return writeArpFrame(BROADCAST, mac, ARP_OP_REQUEST, mac, address, ZERO_MAC, address);
  if (operation === 'reply') return writeArpFrame(BROADCAST, mac, ARP_OP_REPLY, mac, address, mac, address);
  throw new RangeError(`operation must be 'request' or 'reply', got ${String(operation)}`);
}

/**
 * Encodes an RFC 5227 §2.1.1 ARP probe: a broadcast request asking who has
 * `address`, with sender protocol address 0.0.0.0 so that no receiver's
 * cache learns anything from it, and ar$tha all zeroes.
 */
export function encodeArpProbe(options: ArpProbeOptions): Buffer {
  const { mac, address } = options;
  assertMac(mac);
  assertIpv4(address);
  return writeArpFrame(BROADCAST, mac, ARP_OP_REQUEST, mac, ZERO_IPV4, ZERO_MAC, address);
}

/**
 * Encodes any Ethernet/IPv4 ARP frame from its fields (the inverse of
 * {@link decodeArp} for unpadded frames), e.g. to defend an address
 * (RFC 5227 §2.4) or to build test traffic.
 */
export function encodeArp(packet: ArpPacket): Buffer {
  assertMac(packet.ethDestination, 'ethDestination');
  assertMac(packet.ethSource, 'ethSource');
  assertMac(packet.senderMac, 'senderMac');
  assertMac(packet.targetMac, 'targetMac');
  assertIpv4(packet.senderIp);
  assertIpv4(packet.targetIp);
  const op = packet.operation === 'request' ? ARP_OP_REQUEST : packet.operation === 'reply' ? ARP_OP_REPLY : 0;
  if (op === 0) throw new RangeError(`operation must be 'request' or 'reply', got ${String(packet.operation)}`);
  return writeArpFrame(packet.ethDestination, packet.ethSource, op, packet.senderMac, packet.senderIp, packet.targetMac, packet.targetIp);
}

/**
 * Decodes an Ethernet/IPv4 ARP frame (padded or not).
 *
 * Throws {@link DecodeError} with codec 'arp' and reason
 * - 'short': fewer bytes than the Ethernet header plus ARP's fixed 8 bytes;
 * - 'invalid': EtherType not 0x0806, ar$hrd not 1 (Ethernet), ar$pro not
 *   0x0800, ar$hln not 6, ar$pln not 4, or ar$op neither request nor reply;
 * - 'truncated': fewer bytes than the addresses ar$hln and ar$pln announce.
 * The error's offset is the offending field's; for 'truncated' that of
 * ar$hln, whose lengths overrun the frame; for 'short' the frame's length,
 * where the missing bytes begin.
 */
export function decodeArp(frame: Uint8Array): ArpPacket {
  const length = frame.length;
  if (length < ETHERNET_HEADER_LENGTH + 8) {
    throw new DecodeError('arp', 'short', length, `an ARP frame has at least 22 bytes before its addresses, got ${length}`);
  }
  const ethertype = readEthertype(frame);
  if (ethertype !== ETHERTYPE_ARP) {
    throw new DecodeError('arp', 'invalid', 12, `EtherType 0x${hex16(ethertype)} is not ARP (0x0806)`);
  }
  const hrd = (frame[14]! << 8) | frame[15]!;
  if (hrd !== ARP_HRD_ETHERNET) throw new DecodeError('arp', 'invalid', 14, `ar$hrd ${hrd} is not Ethernet (1)`);
  const pro = (frame[16]! << 8) | frame[17]!;
  if (pro !== 0x0800) throw new DecodeError('arp', 'invalid', 16, `ar$pro 0x${hex16(pro)} is not IPv4 (0x0800)`);
  if (frame[18] !== 6) throw new DecodeError('arp', 'invalid', 18, `ar$hln ${frame[18]} is not 6 (Ethernet)`);
  if (frame[19] !== 4) throw new DecodeError('arp', 'invalid', 19, `ar$pln ${frame[19]} is not 4 (IPv4)`);
  const op = (frame[20]! << 8) | frame[21]!;
  if (op !== ARP_OP_REQUEST && op !== ARP_OP_REPLY) {
    throw new DecodeError('arp', 'invalid', 20, `ar$op ${op} is neither request (1) nor reply (2)`);
  }
  if (length < ARP_FRAME_LENGTH) {
    throw new DecodeError('arp', 'truncated', 18, `ar$hln and ar$pln put the addresses' end at byte 42, the frame has ${length} bytes`);
  }
  return {
    operation: op === ARP_OP_REQUEST ? 'request' : 'reply',
    senderMac: copyBytes(frame, 22, 28),
    senderIp: copyBytes(frame, 28, 32),
    targetMac: copyBytes(frame, 32, 38),
    targetIp: copyBytes(frame, 38, 42),
    ethSource: copyBytes(frame, 6, 12),
    ethDestination: copyBytes(frame, 0, 6),
  };
}

/**
 * True for an RFC 5227 §2.1.1 probe: a request with sender protocol address
 * 0.0.0.0. A probe for one of our addresses from another MAC means another
 * host is about to configure it (RFC 5227 §2.1.1 conflict rule).
 */
export function isArpProbe(packet: ArpPacket): boolean {
  const s = packet.senderIp;
  return packet.operation === 'request' && s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 0;
}

/**
 * True for a gratuitous ARP (RFC 5227 §2.3 announcement or RFC 5944 §4.6
 * reply form): sender and target protocol address equal and not 0.0.0.0.
 * One for our address from another MAC means another host claims it.
 */
export function isGratuitousArp(packet: ArpPacket): boolean {
  const s = packet.senderIp;
  const t = packet.targetIp;
  return s[0] === t[0] && s[1] === t[1] && s[2] === t[2] && s[3] === t[3] && (s[0]! | s[1]! | s[2]! | s[3]!) !== 0;
}

function hex16(value: number): string {
  return value.toString(16).padStart(4, '0');
}
