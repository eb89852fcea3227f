/**
 * Network interfaces: the public Link type and the RTM_GETLINK / RTM_NEWLINK
 * codecs (rtnetlink(7), linux/if_link.h).
 */
import { DecodeError } from '../errors.js';
import { formatMac } from '../ip.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFF_BROADCAST,
  IFF_LOOPBACK,
  IFF_LOWER_UP,
  IFF_MULTICAST,
  IFF_NOARP,
  IFF_POINTOPOINT,
  IFF_RUNNING,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_AF_SPEC,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INET6_CONF,
  IFLA_INET_CONF,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IPV4_DEVCONF_FORWARDING_INDEX,
  IPV6_DEVCONF_FORWARDING_INDEX,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  RTEXT_FILTER_SKIP_STATS,
  RTM_GETLINK,
} from './constants.js';
import { forEachAttribute, readString, readU32, type MessageWriter, type NetlinkMessage } from './message.js';

/** RFC 2863 operational state, as the kernel reports it (IF_OPER_*). */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';
const OPER_STATES: OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

/** Interface flags (IFF_*). */
export interface LinkFlags {
  up: boolean;
  running: boolean;
  lowerUp: boolean;
  noarp: boolean;
  loopback: boolean;
  broadcast: boolean;
  multicast: boolean;
  pointopoint: boolean;
}

/** A network interface. Equivalent to one entry of `ip -d link show`. */
export interface Link {
  index: number;
  name: string;
  /** Hardware address as colon hex; `null` when the link has none. */
  mac: string | null;
  mtu: number;
  flags: LinkFlags;
  /** Raw IFF_* bits. */
  rawFlags: number;
  operstate: OperState;
  /** ARPHRD_* type (1 = Ethernet, 772 = loopback). */
  type: number;
  /** Link kind from IFLA_INFO_KIND ('veth', 'bridge', 'macvlan', ...), when set. */
  kind?: string;
  /** Index of the master device (bridge), when enslaved. */
  master?: number;
  /** Per-interface forwarding (IPv4 conf.forwarding, IPv6 conf.forwarding); `undefined` when the family is disabled. */
  forwarding: { ipv4: boolean | undefined; ipv6: boolean | undefined };
}

function writeLinkRequestHeader(w: MessageWriter, flags: number, seq: number, index: number): void {
  w.beginMessage(RTM_GETLINK, flags, seq);
  const o = w.reserve(IFINFOMSG_LEN);
  w.buffer[o] = AF_UNSPEC;
  w.buffer.writeInt32LE(index, o + 4);
  w.attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
}

/** Appends an RTM_GETLINK request for one link, by index or by name. */
export function encodeLinkGet(w: MessageWriter, link: string | number, seq: number): void {
  writeLinkRequestHeader(w, NLM_F_REQUEST | NLM_F_ACK, seq, typeof link === 'number' ? link : 0);
  if (typeof link === 'string') w.attrString(IFLA_IFNAME, link);
  w.endMessage();
}

/** Appends an RTM_GETLINK dump request. */
export function encodeLinkDump(w: MessageWriter, seq: number): void {
  writeLinkRequestHeader(w, NLM_F_REQUEST | NLM_F_DUMP, seq, 0);
  w.endMessage();
}

function forwardingFrom(b: Buffer, start: number, end: number, confType: number, index: number): boolean | undefined {
  let result: boolean | undefined;
  forEachAttribute(b, start, end, (a) => {
    if (a.type === confType && a.start + (index + 1) * 4 <= a.end) result = b.readInt32LE(a.start + index * 4) !== 0;
  });
  return result;
}

/** Decodes an RTM_NEWLINK / RTM_DELLINK message. */
export function decodeLink(m: NetlinkMessage): Link {
  const b = m.buffer;
  const o = m.payloadOffset;
  if (m.end - o < IFINFOMSG_LEN) throw new DecodeError('netlink', 'short', o, 'link message shorter than struct ifinfomsg');
  const rawFlags = b.readUInt32LE(o + 8);
  const link: Link = {
    index: b.readInt32LE(o + 4),
    name: '',
    mac: null,
    mtu: 0,
    rawFlags,
    flags: {
      up: (rawFlags & IFF_UP) !== 0,
      running: (rawFlags & IFF_RUNNING) !== 0,
      lowerUp: (rawFlags & IFF_LOWER_UP) !== 0,
      noarp: (rawFlags & IFF_NOARP) !== 0,
      loopback: (rawFlags & IFF_LOOPBACK) !== 0,
      broadcast: (rawFlags & IFF_BROADCAST) !== 0,
      multicast: (rawFlags & IFF_MULTICAST) !== 0,
      pointopoint: (rawFlags & IFF_POINTOPOINT) !== 0,
    },
    operstate: 'unknown',
    type: b.readUInt16LE(o + 2),
    forwarding: { ipv4: undefined, ipv6: undefined },
  };
  forEachAttribute(b, o + IFINFOMSG_LEN, m.end, (a) => {
    switch (a.type) {
      case IFLA_IFNAME:
        link.name = readString(b, a);
        break;
      case IFLA_ADDRESS:
        if (a.end - a.start === 6) link.mac = formatMac(new Uint8Array(b.buffer, b.byteOffset + a.start, 6));
        break;
      case IFLA_MTU:
        link.mtu = readU32(b, a);
        break;
      case IFLA_MASTER:
        link.master = readU32(b, a);
        break;
      case IFLA_OPERSTATE:
        link.operstate = OPER_STATES[b[a.start] ?? 0] ?? 'unknown';
        break;
      case IFLA_LINKINFO:
        forEachAttribute(b, a.start, a.end, (info) => {
          if (info.type === IFLA_INFO_KIND) link.kind = readString(b, info);
        });
        break;
      case IFLA_AF_SPEC:
        forEachAttribute(b, a.start, a.end, (af) => {
          if (af.type === AF_INET) link.forwarding.ipv4 = forwardingFrom(b, af.start, af.end, IFLA_INET_CONF, IPV4_DEVCONF_FORWARDING_INDEX);
          if (af.type === AF_INET6) link.forwarding.ipv6 = forwardingFrom(b, af.start, af.end, IFLA_INET6_CONF, IPV6_DEVCONF_FORWARDING_INDEX);
        });
        break;
      default:
        break;
    }
  });
  return link;
}
