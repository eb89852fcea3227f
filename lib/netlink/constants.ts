/**
 * rtnetlink numbers used by vipa, from the kernel UAPI headers
 * (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h,
 * linux/if.h). Names follow the headers.
 */

// linux/netlink.h
export const NETLINK_ROUTE = 0;
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** Flags of an NLMSG_ERROR: the echoed request was capped to its header. */
export const NLM_F_CAPPED = 0x100;
/** Flags of an NLMSG_ERROR: extended-ack TLVs follow. */
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

// linux/rtnetlink.h
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV6_IFADDR = 9;

// linux/socket.h
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

// linux/if_addr.h
export const IFADDRMSG_LEN = 8;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8;
export const IFA_PROTO = 11;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;
/** ifa_cacheinfo lifetime meaning "forever". */
export const INFINITY_LIFE_TIME = 0xffffffff;

// linux/rtnetlink.h enum rt_scope_t
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;

// linux/if_link.h
export const IFINFOMSG_LEN = 16;
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_EXT_MASK = 29;
export const IFLA_AF_SPEC = 26;
export const IFLA_INFO_KIND = 1;
export const IFLA_INET_CONF = 1;
export const IFLA_INET6_CONF = 2;
/** Index of forwarding in IFLA_INET_CONF (IPV4_DEVCONF_FORWARDING − 1). */
export const IPV4_DEVCONF_FORWARDING_INDEX = 0;
/** Index of forwarding in IFLA_INET6_CONF (DEVCONF_FORWARDING). */
export const IPV6_DEVCONF_FORWARDING_INDEX = 0;
/** RTEXT_FILTER_SKIP_STATS: leave the large statistics out of link dumps. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

// linux/if.h
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_MULTICAST = 0x1000;
export const IFF_LOWER_UP = 0x10000;
/** IFNAMSIZ − 1: longest interface name or IPv4 label. */
export const IFNAMSIZ_MAX = 15;
