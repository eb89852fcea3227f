/**
 * Frame codecs for telling the network where an address lives (gratuitous
 * ARP, unsolicited Neighbor Advertisement) and for noticing who else claims
 * it (ARP probes and announcements, DAD Neighbor Solicitations). Pure
 * functions over bytes: no sockets, no clocks.
 */
export {
  onesComplementSum,
  finishChecksum,
  internetChecksum,
  icmpv6Checksum,
  IPPROTO_ICMPV6,
} from './checksum.js';
export {
  ETHERTYPE_IPV4,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV6,
  ETHERNET_HEADER_LENGTH,
  ETHERNET_MIN_FRAME_LENGTH,
  MAC_LENGTH,
  writeEthernetHeader,
  decodeEthernetHeader,
  type EthernetHeader,
} from './ethernet.js';
export {
  ARP_HRD_ETHERNET,
  ARP_OP_REQUEST,
  ARP_OP_REPLY,
  ARP_PACKET_LENGTH,
  ARP_FRAME_LENGTH,
  encodeGratuitousArp,
  encodeArpProbe,
  encodeArp,
  decodeArp,
  isArpProbe,
  isGratuitousArp,
  type ArpOperation,
  type ArpPacket,
  type GratuitousArpOptions,
  type ArpProbeOptions,
} from './arp.js';
export {
  ICMPV6_NEIGHBOR_SOLICITATION,
  ICMPV6_NEIGHBOR_ADVERTISEMENT,
  NDP_OPTION_SOURCE_LINK_LAYER_ADDRESS,
  NDP_OPTION_TARGET_LINK_LAYER_ADDRESS,
  NDP_OPTION_NONCE,
  NDP_HOP_LIMIT,
  IPV6_HEADER_LENGTH,
  NDP_MESSAGE_LENGTH,
  solicitedNodeMulticast,
  ipv6MulticastMac,
  isSolicitedNodeMulticast,
  encodeUnsolicitedNeighborAdvertisement,
  encodeDadNeighborSolicitation,
  encodeNdp,
  decodeNdp,
  type NdpFlags,
  type NdpPacket,
  type UnsolicitedNeighborAdvertisementOptions,
  type DadNeighborSolicitationOptions,
} from './ndp.js';
