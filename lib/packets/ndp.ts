/**
 * IPv6 Neighbor Discovery over Ethernet (RFC 4861, IPv6 header RFC 8200,
 * Ethernet mapping RFC 2464): the unsolicited Neighbor Advertisement that
 * moves an address after a takeover (RFC 4861 §7.2.6), the Neighbor
 * Solicitation of Duplicate Address Detection (RFC 4862 §5.4.2), and a
 * decoder for NS/NA frames for conflict detection.
 *
 * Frame layout (offsets from the start of the Ethernet frame):
 *
 * | offset | bytes | field (RFC)                                           |
 * |--------|-------|-------------------------------------------------------|
 * | 0      | 14    | Ethernet II: destination, source, EtherType 0x86dd    |
 * | 14     | 4     | Version 6, Traffic Class, Flow Label (RFC 8200 §3)    |
 * | 18     | 2     | Payload Length                                        |
 * | 20     | 1     | Next Header, 58 = ICMPv6                              |
 * | 21     | 1     | Hop Limit, 255 for ND (RFC 4861 §7.1)                 |
 * | 22     | 16    | Source Address                                        |
 * | 38     | 16    | Destination Address                                   |
 * | 54     | 1     | ICMPv6 Type: 135 NS, 136 NA (RFC 4861 §4.3, §4.4)     |
 * | 55     | 1     | Code 0                                                |
 * | 56     | 2     | Checksum (RFC 4443 §2.3)                              |
 * | 58     | 4     | NA: R, S, O flags and Reserved; NS: Reserved          |
 * | 62     | 16    | Target Address                                        |
 * | 78     | 8·n   | Options: Type, Length (8-octet units), data (§4.6)    |
 *
 * What the announcements look like, measured (test/fixtures/frames):
 * - The unsolicited NA encoded here is byte-identical to the one the Linux
 *   kernel sends with ndisc_notify=1, and to keepalived 2.2.7's: both set
 *   Router from the interface's forwarding setting, Override=1, Solicited=0,
 *   and carry a target link-layer address option. ndisc6 cannot send an NA.
 * - The DAD NS encoded here is byte-identical to the kernel's with
 *   enhanced_dad=0 (no options), and with a nonce to the kernel's default
 *   RFC 7527 form (one Nonce option, 6 bytes).
 */
import { DecodeError } from '../errors.js';
import { IPPROTO_ICMPV6, finishChecksum, onesComplementSum } from './checksum.js';
import { ETHERTYPE_IPV6, ETHERNET_HEADER_LENGTH, assertMac, copyBytes, describeArgument, readEthertype } from './ethernet.js';

/** ICMPv6 type of a Neighbor Solicitation (RFC 4861 §4.3). */
export const ICMPV6_NEIGHBOR_SOLICITATION = 135;
/** ICMPv6 type of a Neighbor Advertisement (RFC 4861 §4.4). */
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
/** ND option type: Source Link-Layer Address (RFC 4861 §4.6.1). */
export const NDP_OPTION_SOURCE_LINK_LAYER_ADDRESS = 1;
/** ND option type: Target Link-Layer Address (RFC 4861 §4.6.1). */
export const NDP_OPTION_TARGET_LINK_LAYER_ADDRESS = 2;
/** ND option type: Nonce (RFC 3971 §5.3.2), used by enhanced DAD (RFC 7527). */
export const NDP_OPTION_NONCE = 14;
/** The only Hop Limit ND accepts: proof the packet was not forwarded (RFC 4861 §7.1.1, §7.1.2). */
export const NDP_HOP_LIMIT = 255;
/** Bytes in the fixed IPv6 header (RFC 8200 §3). */
export const IPV6_HEADER_LENGTH = 40;
/** Bytes of an NS or NA before its options: type, code, checksum, flags/reserved, target. */
export const NDP_MESSAGE_LENGTH = 24;

/** Neighbor Advertisement flag bits in the byte at ICMPv6 offset 4 (RFC 4861 §4.4). */
const FLAG_ROUTER = 0x80;
const FLAG_SOLICITED = 0x40;
const FLAG_OVERRIDE = 0x20;

/** Offsets in an Ethernet frame. */
const IP6 = ETHERNET_HEADER_LENGTH; // 14
const IP6_SOURCE = IP6 + 8; // 22
const IP6_DESTINATION = IP6 + 24; // 38
const ICMP = IP6 + IPV6_HEADER_LENGTH; // 54
const TARGET = ICMP + 8; // 62
const OPTIONS = ICMP + NDP_MESSAGE_LENGTH; // 78

const ALL_NODES = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
const ALL_NODES_MAC = Uint8Array.from([0x33, 0x33, 0, 0, 0, 0x01]);
const UNSPECIFIED = new Uint8Array(16);

/** The NA flags (RFC 4861 §4.4). All false in a decoded NS, whose field is reserved. */
export interface NdpFlags {
  /** R: the sender is a router. */
  router: boolean;
  /** S: sent in response to a Neighbor Solicitation. */
  solicited: boolean;
  /** O: the advertisement should override an existing cache entry. */
  override: boolean;
}

/** A decoded NS or NA frame. Every array is a copy of the frame's bytes. */
export interface NdpPacket {
  /** 'ns' (ICMPv6 type 135) or 'na' (136). */
  type: 'ns' | 'na';
  /** Ethernet source address, 6 bytes. */
  ethSource: Uint8Array;
  /** Ethernet destination address, 6 bytes. */
  ethDestination: Uint8Array;
  /** IPv6 Traffic Class (RFC 8200 §7); 0 from the kernel and keepalived. */
  trafficClass: number;
  /** IPv6 Flow Label (RFC 8200 §6, RFC 6437); raw-socket senders such as ndisc6 get one from the kernel. */
  flowLabel: number;
  /** IPv6 Source Address, 16 bytes; `::` in a DAD solicitation. */
  ipSource: Uint8Array;
  /** IPv6 Destination Address, 16 bytes. */
  ipDestination: Uint8Array;
  /** IPv6 Hop Limit: always 255 in a decoded packet. */
  hopLimit: number;
  /** Target Address, 16 bytes: the address being resolved, tested or advertised. */
  target: Uint8Array;
  /** R, S, O (NA only). */
  flags: NdpFlags;
  /** Source Link-Layer Address option (type 1), 6 bytes, when present. */
  sourceLinkLayer?: Uint8Array;
  /** Target Link-Layer Address option (type 2), 6 bytes, when present. */
  targetLinkLayer?: Uint8Array;
  /**
   * Nonce option (type 14) data, when present: enhanced DAD (RFC 7527)
   * tells a looped-back copy of one's own DAD NS from another node's by it.
   */
  nonce?: Uint8Array;
}

/** Arguments of {@link encodeUnsolicitedNeighborAdvertisement}. */
export interface UnsolicitedNeighborAdvertisementOptions {
  /** The announcing interface's MAC (6 bytes): Ethernet source and target link-layer address. */
  mac: Uint8Array;
  /** The IPv6 address being announced (16 bytes): IPv6 source and Target Address. */
  address: Uint8Array;
  /** The Router flag: true when the interface forwards (as the kernel and keepalived set it). */
  router: boolean;
}

/** Arguments of {@link encodeDadNeighborSolicitation}. */
export interface DadNeighborSolicitationOptions {
  /** The probing interface's MAC (6 bytes): Ethernet source. */
  mac: Uint8Array;
  /** The tentative IPv6 address (16 bytes): Target Address. */
  address: Uint8Array;
  /**
   * Optional RFC 7527 nonce (6 bytes, or 6 + 8k): adds a Nonce option, as
   * the kernel does by default, so the sender can recognise its own NS
   * looped back by the network. Without it the NS carries no option at all.
   */
  nonce?: Uint8Array;
}

function assertIpv6(address: Uint8Array, what = 'address'): void {
  if (!(address instanceof Uint8Array) || address.length !== 16) {
    throw new RangeError(`${what} must be a 16-byte Uint8Array (IPv6), got ${describeArgument(address)}`);
  }
}

function assertNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length < 6 || (nonce.length + 2) % 8 !== 0) {
    throw new RangeError(`nonce must be a Uint8Array of 6 + 8k bytes (RFC 3971 §5.3.2), got ${describeArgument(nonce)}`);
  }
}

/**
 * The solicited-node multicast address of `address` (RFC 4291 §2.7.1):
 * ff02::1:ff00:0/104 followed by the address's low 24 bits. DAD and address
 * resolution solicit there, so only the few nodes sharing those bits listen.
 */
export function solicitedNodeMulticast(address: Uint8Array): Uint8Array {
  assertIpv6(address);
  const out = new Uint8Array(16);
  writeSolicitedNode(out, 0, address);
  return out;
}

/** The Ethernet multicast MAC of an IPv6 multicast address: 33:33 and its low 32 bits (RFC 2464 §7). */
export function ipv6MulticastMac(address: Uint8Array): Uint8Array {
  assertIpv6(address);
  return Uint8Array.from([0x33, 0x33, address[12]!, address[13]!, address[14]!, address[15]!]);
}

/** True when `address` (16 bytes) is a solicited-node multicast address (RFC 4291 §2.7.1). */
export function isSolicitedNodeMulticast(address: Uint8Array): boolean {
  if (address.length !== 16 || address[0] !== 0xff || address[1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (address[i] !== 0) return false;
  return address[11] === 0x01 && address[12] === 0xff;
}

function writeSolicitedNode(frame: Uint8Array, offset: number, address: Uint8Array): void {
  frame.fill(0, offset, offset + 16);
  frame[offset] = 0xff;
  frame[offset + 1] = 0x02;
  frame[offset + 11] = 0x01;
  frame[offset + 12] = 0xff;
  frame[offset + 13] = address[13]!;
  frame[offset + 14] = address[14]!;
  frame[offset + 15] = address[15]!;
}

function put(frame: Uint8Array, offset: number, source: Uint8Array): void {
  for (let i = 0; i < source.length; i++) frame[offset + i] = source[i]!;
}

/**
 * Writes a whole NS/NA frame. Options go in the order SLLA, TLLA, Nonce;
 * `ipDestination` undefined means "the solicited-node address of target"
 * and `ethDestination` undefined "the multicast MAC of ipDestination".
 */
function writeNdpFrame(
  ethDestination: Uint8Array | undefined,
  ethSource: Uint8Array,
  trafficClass: number,
  flowLabel: number,
  ipSource: Uint8Array,
  ipDestination: Uint8Array | undefined,
  hopLimit: number,
  type: number,
  flags: number,
  target: Uint8Array,
  sourceLinkLayer: Uint8Array | undefined,
  targetLinkLayer: Uint8Array | undefined,
  nonce: Uint8Array | undefined,
): Buffer {
  const payloadLength =
    NDP_MESSAGE_LENGTH + (sourceLinkLayer ? 8 : 0) + (targetLinkLayer ? 8 : 0) + (nonce ? nonce.length + 2 : 0);
  const frame = Buffer.allocUnsafe(ICMP + payloadLength);
  // IPv6 header first: the Ethernet destination may derive from it.
  frame[IP6] = 0x60 | (trafficClass >>> 4);
  frame[IP6 + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f);
  frame[IP6 + 2] = (flowLabel >>> 8) & 0xff;
  frame[IP6 + 3] = flowLabel & 0xff;
  frame[IP6 + 4] = payloadLength >>> 8;
  frame[IP6 + 5] = payloadLength & 0xff;
  frame[IP6 + 6] = IPPROTO_ICMPV6;
  frame[IP6 + 7] = hopLimit;
  put(frame, IP6_SOURCE, ipSource);
  if (ipDestination) put(frame, IP6_DESTINATION, ipDestination);
  else writeSolicitedNode(frame, IP6_DESTINATION, target);
  // Ethernet: multicast destinations map per RFC 2464 §7.
  if (ethDestination) put(frame, 0, ethDestination);
  else {
    frame[0] = 0x33;
    frame[1] = 0x33;
    frame[2] = frame[IP6_DESTINATION + 12]!;
    frame[3] = frame[IP6_DESTINATION + 13]!;
    frame[4] = frame[IP6_DESTINATION + 14]!;
    frame[5] = frame[IP6_DESTINATION + 15]!;
  }
  put(frame, 6, ethSource);
  frame[12] = ETHERTYPE_IPV6 >>> 8;
  frame[13] = ETHERTYPE_IPV6 & 0xff;
  // ICMPv6 message.
  frame[ICMP] = type;
  frame[ICMP + 1] = 0; // Code
  frame[ICMP + 2] = 0; // Checksum, filled in below
  frame[ICMP + 3] = 0;
  frame[ICMP + 4] = flags;
  frame[ICMP + 5] = 0; // Reserved
  frame[ICMP + 6] = 0;
  frame[ICMP + 7] = 0;
  put(frame, TARGET, target);
  let offset = OPTIONS;
  if (sourceLinkLayer) {
    frame[offset] = NDP_OPTION_SOURCE_LINK_LAYER_ADDRESS;
    frame[offset + 1] = 1; // 8 octets: type, length, 6-byte MAC (RFC 2464 §6)
    put(frame, offset + 2, sourceLinkLayer);
    offset += 8;
  }
  if (targetLinkLayer) {
    frame[offset] = NDP_OPTION_TARGET_LINK_LAYER_ADDRESS;
    frame[offset + 1] = 1;
    put(frame, offset + 2, targetLinkLayer);
    offset += 8;
  }
  if (nonce) {
    frame[offset] = NDP_OPTION_NONCE;
    frame[offset + 1] = (nonce.length + 2) / 8;
    put(frame, offset + 2, nonce);
  }
  // RFC 4443 §2.3 over the RFC 8200 §8.1 pseudo-header: both addresses are
  // contiguous in the IPv6 header, then the 32-bit length and next header.
  let sum = onesComplementSum(frame, IP6_SOURCE, 32, payloadLength + IPPROTO_ICMPV6);
  sum = onesComplementSum(frame, ICMP, payloadLength, sum);
  const checksum = finishChecksum(sum);
  frame[ICMP + 2] = checksum >>> 8;
  frame[ICMP + 3] = checksum & 0xff;
  return frame;
}

/**
 * Encodes an unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) telling
 * every node on the link that `address` is now at `mac`: Ethernet
 * destination 33:33:00:00:00:01, IPv6 source `address`, destination ff02::1
 * (all-nodes), Hop Limit 255, Solicited=0 (it answers nobody, §4.4),
 * Override=1 (replace cached link-layer addresses, §7.2.6), Router as given,
 * and a Target Link-Layer Address option carrying `mac`. Receivers update
 * only entries they already have (§7.2.5); the frame is 86 bytes.
 *
 * The same message defends an address against another node's DAD NS
 * (RFC 4861 §7.2.4: a solicitation from `::` is answered to all-nodes with
 * Solicited=0).
 */
export function encodeUnsolicitedNeighborAdvertisement(options: UnsolicitedNeighborAdvertisementOptions): Buffer {
  const { mac, address, router } = options;
  assertMac(mac);
  assertIpv6(address);
  const flags = (router ? FLAG_ROUTER : 0) | FLAG_OVERRIDE;
  return writeNdpFrame(
    ALL_NODES_MAC, // Ethernet destination
    mac, // Ethernet source
    0, // Traffic Class
    0, // Flow Label
    address, // IPv6 source: the address itself (§7.2.6)
    ALL_NODES, // IPv6 destination
    NDP_HOP_LIMIT,
    ICMPV6_NEIGHBOR_ADVERTISEMENT,
    flags,
    address, // Target Address
    undefined, // no Source Link-Layer Address option
    mac, // Target Link-Layer Address option
    undefined, // no Nonce
  );
}

/**
 * Encodes the Neighbor Solicitation of Duplicate Address Detection
 * (RFC 4862 §5.4.2): IPv6 source `::` (the address is not ours yet),
 * destination the solicited-node multicast address of `address`, Ethernet
 * destination 33:33:ff and its low 24 bits, Hop Limit 255, Target Address
 * `address`, and no Source Link-Layer Address option (RFC 4861 §4.3: not
 * with an unspecified source; receivers drop such an NS, §7.1.1). With
 * `nonce`, one RFC 7527 Nonce option follows. 78 bytes without a nonce, 86
 * with a 6-byte one.
 *
 * RFC 4862 §5.4.2 also asks the sender to join the solicited-node group
 * first, so that MLD-snooping switches deliver the defender's answer.
 */
export function encodeDadNeighborSolicitation(options: DadNeighborSolicitationOptions): Buffer {
  const { mac, address, nonce } = options;
  assertMac(mac);
  assertIpv6(address);
  if (nonce !== undefined) assertNonce(nonce);
  return writeNdpFrame(
    undefined, // Ethernet destination: 33:33:ff:XX:XX:XX, from the IPv6 destination
    mac, // Ethernet source
    0, // Traffic Class
    0, // Flow Label
    UNSPECIFIED, // IPv6 source ::
    undefined, // IPv6 destination: solicited-node multicast of the target
    NDP_HOP_LIMIT,
    ICMPV6_NEIGHBOR_SOLICITATION,
    0, // Reserved
    address, // Target Address
    undefined, // no Source Link-Layer Address option
    undefined, // no Target Link-Layer Address option
    nonce,
  );
}

/**
 * Encodes any NS or NA frame from its fields: the inverse of
 * {@link decodeNdp} (reserved bits are written as zero, options in the order
 * SLLA, TLLA, Nonce). For tests and for traffic the two specific encoders do
 * not cover; it does not check the RFC 4861 validity rules the decoder
 * enforces, so it can also build invalid frames.
 */
export function encodeNdp(packet: NdpPacket): Buffer {
  assertMac(packet.ethDestination, 'ethDestination');
  assertMac(packet.ethSource, 'ethSource');
  assertIpv6(packet.ipSource, 'ipSource');
  assertIpv6(packet.ipDestination, 'ipDestination');
  assertIpv6(packet.target, 'target');
  if (packet.sourceLinkLayer !== undefined) assertMac(packet.sourceLinkLayer, 'sourceLinkLayer');
  if (packet.targetLinkLayer !== undefined) assertMac(packet.targetLinkLayer, 'targetLinkLayer');
  if (packet.nonce !== undefined) assertNonce(packet.nonce);
  if (packet.type !== 'ns' && packet.type !== 'na') throw new RangeError(`type must be 'ns' or 'na', got ${String(packet.type)}`);
  checkField('trafficClass', packet.trafficClass, 0xff);
  checkField('flowLabel', packet.flowLabel, 0xfffff);
  checkField('hopLimit', packet.hopLimit, 0xff);
  const { router, solicited, override } = packet.flags;
  const flags = packet.type === 'na' ? (router ? FLAG_ROUTER : 0) | (solicited ? FLAG_SOLICITED : 0) | (override ? FLAG_OVERRIDE : 0) : 0;
  return writeNdpFrame(
    packet.ethDestination,
    packet.ethSource,
    packet.trafficClass,
    packet.flowLabel,
    packet.ipSource,
    packet.ipDestination,
    packet.hopLimit,
    packet.type === 'ns' ? ICMPV6_NEIGHBOR_SOLICITATION : ICMPV6_NEIGHBOR_ADVERTISEMENT,
    flags,
    packet.target,
    packet.sourceLinkLayer,
    packet.targetLinkLayer,
    packet.nonce,
  );
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${name} must be an integer in [0, ${max}], got ${value}`);
}

function fail(reason: string, offset: number, detail: string): never {
  throw new DecodeError('ndp', reason, offset, detail);
}

function isUnspecified(frame: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (frame[offset + i] !== 0) return false;
  return true;
}

/**
 * Decodes an Ethernet frame holding an IPv6 Neighbor Solicitation or
 * Neighbor Advertisement, applying the validity checks of RFC 4861 §7.1.1
 * (NS) and §7.1.2 (NA) that do not need interface state.
 *
 * Throws {@link DecodeError} with codec 'ndp' and reason
 * - 'short': fewer bytes than the Ethernet and IPv6 headers, or an ICMPv6
 *   message shorter than the 24 bytes of an NS/NA;
 * - 'truncated': the IPv6 Payload Length, or an option's Length, reaches
 *   beyond the bytes present (offset: that length field's header);
 * - 'bad-checksum': the ICMPv6 checksum does not verify (offset 56);
 * - 'invalid': EtherType not 0x86dd, IP version not 6, Next Header not 58
 *   (ND allows no extension headers here), Hop Limit not 255, ICMPv6 type
 *   not 135/136, Code not 0, a multicast Target Address, an option of
 *   Length 0 (§4.6), a link-layer address option not 8 bytes (RFC 2464 §6),
 *   an NS from `::` to other than a solicited-node address or with a Source
 *   Link-Layer Address option, an NA to a multicast address with S=1.
 * Unknown options are skipped (§4.6); of a repeated option the first counts,
 * as in the kernel's ndisc_parse_options(). Bytes after the IPv6 payload
 * (Ethernet padding) are ignored.
 */
export function decodeNdp(frame: Uint8Array): NdpPacket {
  const length = frame.length;
  if (length < ETHERNET_HEADER_LENGTH) fail('short', length, `an Ethernet header has 14 bytes, the frame has ${length}`);
  const ethertype = readEthertype(frame);
  if (ethertype !== ETHERTYPE_IPV6) fail('invalid', 12, `EtherType 0x${ethertype.toString(16).padStart(4, '0')} is not IPv6 (0x86dd)`);
  if (length < ICMP) fail('short', length, `Ethernet and IPv6 headers need 54 bytes, the frame has ${length}`);
  const version = frame[IP6]! >>> 4;
  if (version !== 6) fail('invalid', IP6, `IP version ${version} is not 6`);
  const payloadLength = (frame[IP6 + 4]! << 8) | frame[IP6 + 5]!;
  if (ICMP + payloadLength > length) {
    fail('truncated', IP6 + 4, `Payload Length ${payloadLength} needs ${ICMP + payloadLength} bytes, the frame has ${length}`);
  }
  const nextHeader = frame[IP6 + 6]!;
  if (nextHeader !== IPPROTO_ICMPV6) fail('invalid', IP6 + 6, `Next Header ${nextHeader} is not ICMPv6 (58)`);
  const hopLimit = frame[IP6 + 7]!;
  if (hopLimit !== NDP_HOP_LIMIT) {
    fail('invalid', IP6 + 7, `Hop Limit ${hopLimit} is not 255: the packet was forwarded or forged (RFC 4861 §7.1)`);
  }
  if (payloadLength < 1) fail('short', ICMP, 'the ICMPv6 message is empty');
  const icmpType = frame[ICMP]!;
  if (icmpType !== ICMPV6_NEIGHBOR_SOLICITATION && icmpType !== ICMPV6_NEIGHBOR_ADVERTISEMENT) {
    fail('invalid', ICMP, `ICMPv6 type ${icmpType} is neither NS (135) nor NA (136)`);
  }
  if (payloadLength < NDP_MESSAGE_LENGTH) fail('short', ICMP + payloadLength, `an NS/NA has at least 24 bytes, this one ${payloadLength}`);
  if (frame[ICMP + 1] !== 0) fail('invalid', ICMP + 1, `ICMPv6 Code ${frame[ICMP + 1]} is not 0`);
  let sum = onesComplementSum(frame, IP6_SOURCE, 32, payloadLength + IPPROTO_ICMPV6);
  sum = onesComplementSum(frame, ICMP, payloadLength, sum);
  if (finishChecksum(sum) !== 0) {
    const stored = ((frame[ICMP + 2]! << 8) | frame[ICMP + 3]!).toString(16).padStart(4, '0');
    fail('bad-checksum', ICMP + 2, `ICMPv6 checksum 0x${stored} does not verify`);
  }
  if (frame[TARGET] === 0xff) fail('invalid', TARGET, 'the Target Address is multicast');

  const type = icmpType === ICMPV6_NEIGHBOR_SOLICITATION ? 'ns' : 'na';
  let sourceLinkLayer: Uint8Array | undefined;
  let sourceLinkLayerOffset = 0;
  let targetLinkLayer: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  const end = ICMP + payloadLength;
  for (let offset = OPTIONS; offset < end; ) {
    if (end - offset < 2) fail('truncated', offset, `${end - offset} byte(s) left, too few for an option header`);
    const optionType = frame[offset]!;
    const optionLength = frame[offset + 1]! * 8;
    if (optionLength === 0) fail('invalid', offset + 1, `option type ${optionType} has Length 0 (RFC 4861 §4.6)`);
    if (offset + optionLength > end) {
      const over = offset + optionLength - end;
      fail('truncated', offset, `option type ${optionType} of ${optionLength} bytes overruns the ICMPv6 message by ${over}`);
    }
    if (optionType === NDP_OPTION_SOURCE_LINK_LAYER_ADDRESS || optionType === NDP_OPTION_TARGET_LINK_LAYER_ADDRESS) {
      if (optionLength !== 8) {
        fail('invalid', offset + 1, `link-layer address option of ${optionLength} bytes; Ethernet's has 8 (RFC 2464 §6)`);
      }
      if (optionType === NDP_OPTION_SOURCE_LINK_LAYER_ADDRESS) {
        if (!sourceLinkLayer) {
          sourceLinkLayer = copyBytes(frame, offset + 2, offset + 8);
          sourceLinkLayerOffset = offset;
        }
      } else if (!targetLinkLayer) targetLinkLayer = copyBytes(frame, offset + 2, offset + 8);
    } else if (optionType === NDP_OPTION_NONCE) {
      if (!nonce) nonce = copyBytes(frame, offset + 2, offset + optionLength);
    }
    offset += optionLength;
  }

  const flagsByte = frame[ICMP + 4]!;
  const flags: NdpFlags =
    type === 'na'
      ? {
          router: (flagsByte & FLAG_ROUTER) !== 0,
          solicited: (flagsByte & FLAG_SOLICITED) !== 0,
          override: (flagsByte & FLAG_OVERRIDE) !== 0,
        }
      : { router: false, solicited: false, override: false };
  if (type === 'ns' && isUnspecified(frame, IP6_SOURCE)) {
    // RFC 4861 §7.1.1: a DAD probe goes to a solicited-node address and carries no SLLA.
    if (!isSolicitedNodeMulticast(frame.subarray(IP6_DESTINATION, IP6_DESTINATION + 16))) {
      fail('invalid', IP6_DESTINATION, 'an NS from :: must go to a solicited-node multicast address');
    }
    if (sourceLinkLayer) fail('invalid', sourceLinkLayerOffset, 'an NS from :: must not carry a Source Link-Layer Address option');
  }
  if (type === 'na' && flags.solicited && frame[IP6_DESTINATION] === 0xff) {
    fail('invalid', ICMP + 4, 'an NA to a multicast address must have Solicited=0 (RFC 4861 §7.1.2)');
  }

  const packet: NdpPacket = {
    type,
    ethSource: copyBytes(frame, 6, 12),
    ethDestination: copyBytes(frame, 0, 6),
    trafficClass: ((frame[IP6]! & 0x0f) << 4) | (frame[IP6 + 1]! >>> 4),
    flowLabel: ((frame[IP6 + 1]! & 0x0f) << 16) | (frame[IP6 + 2]! << 8) | frame[IP6 + 3]!,
    ipSource: copyBytes(frame, IP6_SOURCE, IP6_SOURCE + 16),
    ipDestination: copyBytes(frame, IP6_DESTINATION, IP6_DESTINATION + 16),
    hopLimit,
    target: copyBytes(frame, TARGET, TARGET + 16),
    flags,
  };
  if (sourceLinkLayer) packet.sourceLinkLayer = sourceLinkLayer;
  if (targetLinkLayer) packet.targetLinkLayer = targetLinkLayer;
  if (nonce) packet.nonce = nonce;
  return packet;
}
