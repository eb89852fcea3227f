/**
 * Interface addresses: the public types, argument validation, and the
 * RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR codecs (rtnetlink(7), linux/if_addr.h).
 * Pure: link names are resolved by a function the caller injects.
 */
import { formatIp, ipv4Broadcast, parseIp, type IpFamily } from '../ip.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFADDRMSG_LEN,
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_CACHEINFO,
  IFA_FLAGS,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_PERMANENT,
  IFA_F_SECONDARY,
  IFA_F_TENTATIVE,
  IFA_LABEL,
  IFA_LOCAL,
  IFA_PROTO,
  IFNAMSIZ_MAX,
  INFINITY_LIFE_TIME,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_NEWADDR,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
} from './constants.js';
import { forEachAttribute, readString, readU32, type MessageWriter, type NetlinkMessage } from './message.js';
import { DecodeError } from '../errors.js';

/**
 * The IFA_PROTO value vipa puts on every address it adds, so it can later
 * find and remove exactly those (kernel ≥ 5.18; values 0–3 are the kernel's).
 */
export const VIPA_PROTO = 0x76; // 'v'

/** An interface given by name ('veth0') or by index. */
export type LinkRef = string | number;

/** Address scope: as ip(8) names it, or the raw rt_scope_t number. */
export type AddressScope = 'global' | 'link' | 'host' | number;

/** What to add, replace or delete. Equivalent to the arguments of `ip addr add`. */
export interface AddressSpec {
  /** Interface name or index. Pass the index on hot paths: a name costs one kernel lookup. */
  link: LinkRef;
  /** The address, optionally with `/prefix` (then `prefixLength` must agree or be absent). */
  address: string;
  /** Prefix length; default 32 for IPv4, 128 for IPv6. */
  prefixLength?: number;
  /** Peer address of a point-to-point link (`ip addr add A peer P`). Same family. */
  peer?: string;
  /** IPv4 only: broadcast address, or `true` to derive it from the prefix (`brd +`). */
  broadcast?: string | true;
  /** IPv4 only: label; must start with the interface name, at most 15 characters. */
  label?: string;
  /** IPv6 only: skip duplicate address detection (IFA_F_NODAD), needed for takeover. */
  nodad?: boolean;
  /** Do not create the prefix route (IFA_F_NOPREFIXROUTE). */
  noprefixroute?: boolean;
  /** Seconds until the kernel removes the address itself; default forever. */
  validLifetime?: number;
  /** Seconds until the address is deprecated; default = validLifetime. */
  preferredLifetime?: number;
  /** Ownership tag (IFA_PROTO), 0–255. vipa's own is {@link VIPA_PROTO}. */
  proto?: number;
  /** Scope; default global. */
  scope?: AddressScope;
}

/** Options of address removal and addition beyond the kernel's semantics. */
export interface AddressOptions {
  /** On add: treat EEXIST ("already there") as done instead of an error. */
  allowExisting?: boolean;
  /** On delete: treat EADDRNOTAVAIL ("not there") as done instead of an error. */
  allowMissing?: boolean;
}

/** Address flags as reported by the kernel. */
export interface AddressFlags {
  secondary: boolean;
  nodad: boolean;
  tentative: boolean;
  dadfailed: boolean;
  deprecated: boolean;
  permanent: boolean;
  noprefixroute: boolean;
}

/** An address as listed by the kernel (equivalent to one line of `ip addr show`). */
export interface Address {
  family: IpFamily;
  /** Interface index. */
  linkIndex: number;
  /** The address (IFA_LOCAL, or IFA_ADDRESS when there is no local). */
  address: string;
  prefixLength: number;
  /** Peer address when it differs from the address. */
  peer?: string;
  broadcast?: string;
  label?: string;
  scope: number;
  flags: AddressFlags;
  /** Raw IFA_FLAGS bits. */
  rawFlags: number;
  /** Seconds left, Infinity for forever. */
  validLifetime: number;
  preferredLifetime: number;
  /** IFA_PROTO ownership tag; 0 when none. */
  proto: number;
}

/** A filter for address listings. */
export interface AddressFilter {
  link?: LinkRef;
  family?: IpFamily;
  /** Only addresses carrying this IFA_PROTO tag. */
  proto?: number;
}

/** A link name or index resolved by the kernel. */
export interface ResolvedLink {
  index: number;
  name: string;
}

/** Checks the shape of an interface reference (not whether it exists). */
export function checkLinkRef(link: unknown): asserts link is LinkRef {
  if (typeof link === 'number') {
    if (!Number.isInteger(link) || link <= 0 || link > 0x7fffffff) throw new RangeError(`interface index must be a positive integer, got ${link}`);
    return;
  }
  if (typeof link !== 'string') throw new TypeError(`link must be an interface name or index, got ${show(link)}`);
  if (link.length === 0 || Buffer.byteLength(link) > IFNAMSIZ_MAX || /[\s/:\0]/.test(link)) {
    throw new RangeError(`malformed interface name ${show(link)}`);
  }
}

/** A validated request; encodable once {@link bindLink} has set its interface. */
export interface AddressRequest {
  /** The interface as the caller named it. */
  link: LinkRef;
  /** True when the interface name is needed (label check) even if given by index. */
  needsLinkName: boolean;
  family: IpFamily;
  local: Uint8Array;
  peer: Uint8Array;
  prefixLength: number;
  ifindex: number;
  label?: string;
  broadcast?: Uint8Array;
  flags: number;
  scope: number;
  validLifetime?: number;
  preferredLifetime?: number;
  proto?: number;
}

/** Human text naming a request in error messages, e.g. '198.51.100.7/24 dev eth0'. */
export function describeRequest(r: AddressRequest): string {
  return `${formatIp(r.local)}/${r.prefixLength} dev ${r.link}`;
}

const SCOPES: Record<string, number> = { global: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST };
const SPEC_KEYS = new Set([
  'link', 'address', 'prefixLength', 'peer', 'broadcast', 'label', 'nodad', 'noprefixroute',
  'validLifetime', 'preferredLifetime', 'proto', 'scope',
]);

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function checkLifetime(name: string, value: unknown): number | undefined {
  if (value === undefined || value === Infinity) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be a number of seconds, got ${show(value)}`);
  if (!Number.isInteger(value) || value <= 0 || value >= INFINITY_LIFE_TIME) {
    throw new RangeError(`${name} must be a whole number of seconds from 1 to ${INFINITY_LIFE_TIME - 1} (or Infinity), got ${value}`);
  }
  return value;
}

/**
 * Validates an address spec without the kernel. Throws TypeError for a wrong
 * shape and RangeError for a bad value, naming the value. The interface is
 * checked by {@link bindLink} once resolved.
 */
export function validateAddressSpec(spec: AddressSpec): AddressRequest {
  if (spec === null || typeof spec !== 'object') throw new TypeError(`address spec must be an object, got ${show(spec)}`);
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) throw new TypeError(`unknown address option ${show(key)}`);
  }
  if (typeof spec.address !== 'string') throw new TypeError(`address must be a string, got ${show(spec.address)}`);
  const [text, prefixText, ...rest] = spec.address.split('/');
  const parsed = parseIp(text!);
  if (!parsed || rest.length > 0) throw new RangeError(`malformed IP address ${show(spec.address)}`);
  const family = parsed.family;
  const maxPrefix = family === 4 ? 32 : 128;
  let prefixLength = spec.prefixLength;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) throw new RangeError(`malformed prefix length in ${show(spec.address)}`);
    const fromText = Number(prefixText);
    if (prefixLength !== undefined && prefixLength !== fromText) {
      throw new RangeError(`prefix length ${prefixLength} disagrees with ${show(spec.address)}`);
    }
    prefixLength = fromText;
  }
  prefixLength ??= maxPrefix;
  if (typeof prefixLength !== 'number' || !Number.isInteger(prefixLength)) {
    throw new TypeError(`prefixLength must be an integer, got ${show(prefixLength)}`);
  }
  if (prefixLength < 0 || prefixLength > maxPrefix) {
    throw new RangeError(`prefix length ${prefixLength} out of range 0..${maxPrefix} for IPv${family} address ${text}`);
  }

  let peer = parsed.bytes;
  if (spec.peer !== undefined) {
    const p = typeof spec.peer === 'string' ? parseIp(spec.peer) : undefined;
    if (!p) throw new RangeError(`malformed peer address ${show(spec.peer)}`);
    if (p.family !== family) throw new RangeError(`peer ${spec.peer} is IPv${p.family} but address ${text} is IPv${family}`);
    peer = p.bytes;
  }

  let broadcast: Uint8Array | undefined;
  if (spec.broadcast !== undefined) {
    if (family !== 4) throw new RangeError(`broadcast is IPv4 only, but address ${text} is IPv6`);
    if (spec.broadcast === true) broadcast = ipv4Broadcast(parsed.bytes, prefixLength);
    else {
      const b = typeof spec.broadcast === 'string' ? parseIp(spec.broadcast) : undefined;
      if (!b) throw new RangeError(`malformed broadcast address ${show(spec.broadcast)}`);
      if (b.family !== 4) throw new RangeError(`broadcast ${spec.broadcast} is IPv6 but must be IPv4`);
      broadcast = b.bytes;
    }
  }

  let flags = 0;
  for (const [key, bit] of [['nodad', IFA_F_NODAD], ['noprefixroute', IFA_F_NOPREFIXROUTE]] as const) {
    const v = spec[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw new TypeError(`${key} must be a boolean, got ${show(v)}`);
    if (v) flags |= bit;
  }
  if (spec.nodad && family === 4) throw new RangeError(`nodad is IPv6 only, but address ${text} is IPv4`);

  if (spec.label !== undefined && family !== 4) throw new RangeError(`label is IPv4 only, but address ${text} is IPv6`);
  if (spec.label !== undefined && typeof spec.label !== 'string') throw new TypeError(`label must be a string, got ${show(spec.label)}`);
  if (spec.label !== undefined && (spec.label.length === 0 || Buffer.byteLength(spec.label) > IFNAMSIZ_MAX)) {
    throw new RangeError(`label ${show(spec.label)} must be 1..${IFNAMSIZ_MAX} bytes`);
  }

  const validLifetime = checkLifetime('validLifetime', spec.validLifetime);
  const preferredLifetime = checkLifetime('preferredLifetime', spec.preferredLifetime);
  if (preferredLifetime !== undefined && (validLifetime === undefined ? false : preferredLifetime > validLifetime)) {
    throw new RangeError(`preferredLifetime ${preferredLifetime} exceeds validLifetime ${validLifetime}`);
  }
  if (preferredLifetime !== undefined && validLifetime === undefined) {
    throw new RangeError(`preferredLifetime ${preferredLifetime} needs a finite validLifetime`);
  }

  let proto: number | undefined;
  if (spec.proto !== undefined) {
    if (typeof spec.proto !== 'number' || !Number.isInteger(spec.proto) || spec.proto < 0 || spec.proto > 255) {
      throw new RangeError(`proto must be an integer 0..255, got ${show(spec.proto)}`);
    }
    proto = spec.proto;
  }

  let scope = RT_SCOPE_UNIVERSE;
  if (spec.scope !== undefined) {
    const s = typeof spec.scope === 'string' ? SCOPES[spec.scope] : spec.scope;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 255) throw new RangeError(`unknown scope ${show(spec.scope)}`);
    scope = s;
  }

  checkLinkRef(spec.link);

  const request: AddressRequest = {
    link: spec.link,
    needsLinkName: spec.label !== undefined,
    family,
    local: parsed.bytes,
    peer,
    prefixLength,
    ifindex: typeof spec.link === 'number' ? spec.link : 0,
    flags,
    scope,
  };
  if (spec.label !== undefined) request.label = spec.label;
  if (broadcast) request.broadcast = broadcast;
  if (validLifetime !== undefined) request.validLifetime = validLifetime;
  if (preferredLifetime !== undefined) request.preferredLifetime = preferredLifetime;
  if (proto !== undefined) request.proto = proto;
  return request;
}

/** Sets the resolved interface of a request; RangeError when the label does not start with its name. */
export function bindLink(request: AddressRequest, link: ResolvedLink): AddressRequest {
  if (request.label !== undefined && !request.label.startsWith(link.name)) {
    throw new RangeError(`label ${show(request.label)} must start with the interface name ${show(link.name)}`);
  }
  request.ifindex = link.index;
  return request;
}

/** Which address request to encode. */
export type AddressVerb = 'add' | 'replace' | 'delete';

const VERB_HEADER: Record<AddressVerb, [type: number, flags: number]> = {
  add: [RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL],
  replace: [RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE],
  delete: [RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK],
};

/** Appends one RTM_NEWADDR / RTM_DELADDR request for `r` to `w`. */
export function encodeAddressRequest(w: MessageWriter, verb: AddressVerb, r: AddressRequest, seq: number): void {
  const [type, flags] = VERB_HEADER[verb];
  w.beginMessage(type, flags, seq);
  const o = w.reserve(IFADDRMSG_LEN);
  const b = w.buffer;
  b[o] = r.family === 4 ? AF_INET : AF_INET6;
  b[o + 1] = r.prefixLength;
  b[o + 2] = r.flags & 0xff; // legacy 8-bit ifa_flags; the full set goes in IFA_FLAGS
  b[o + 3] = r.scope;
  b.writeUInt32LE(r.ifindex, o + 4);
  w.attrBytes(IFA_LOCAL, r.local);
  w.attrBytes(IFA_ADDRESS, r.peer);
  if (verb !== 'delete') {
    w.attrU32(IFA_FLAGS, r.flags);
    if (r.broadcast) w.attrBytes(IFA_BROADCAST, r.broadcast);
    if (r.label !== undefined) w.attrString(IFA_LABEL, r.label);
    if (r.validLifetime !== undefined) {
      const info = Buffer.alloc(16);
      info.writeUInt32LE(r.preferredLifetime ?? r.validLifetime, 0); // ifa_prefered
      info.writeUInt32LE(r.validLifetime, 4); // ifa_valid
      w.attrBytes(IFA_CACHEINFO, info);
    }
    if (r.proto !== undefined) w.attrU8(IFA_PROTO, r.proto);
  }
  w.endMessage();
}

/** Appends an RTM_GETADDR dump request for one family (or all) to `w`. */
export function encodeAddressDump(w: MessageWriter, family: IpFamily | undefined, seq: number): void {
  w.beginMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const o = w.reserve(IFADDRMSG_LEN);
  w.buffer[o] = family === undefined ? AF_UNSPEC : family === 4 ? AF_INET : AF_INET6;
  w.endMessage();
}

function lifetime(v: number): number {
  return v === INFINITY_LIFE_TIME ? Infinity : v;
}

/** Decodes an RTM_NEWADDR / RTM_DELADDR message; `undefined` for families other than IPv4/IPv6. */
export function decodeAddress(m: NetlinkMessage): Address | undefined {
  const b = m.buffer;
  const o = m.payloadOffset;
  if (m.end - o < IFADDRMSG_LEN) throw new DecodeError('netlink', 'short', o, 'address message shorter than struct ifaddrmsg');
  const familyByte = b[o]!;
  if (familyByte !== AF_INET && familyByte !== AF_INET6) return undefined;
  const family: IpFamily = familyByte === AF_INET ? 4 : 6;
  const size = family === 4 ? 4 : 16;
  let rawFlags = b[o + 2]!;
  let local: string | undefined;
  let address: string | undefined;
  let broadcast: string | undefined;
  let label: string | undefined;
  let validLifetime = Infinity;
  let preferredLifetime = Infinity;
  let proto = 0;
  forEachAttribute(b, o + IFADDRMSG_LEN, m.end, (a) => {
    const len = a.end - a.start;
    switch (a.type) {
      case IFA_LOCAL:
      case IFA_ADDRESS:
      case IFA_BROADCAST: {
        if (len !== size) throw new DecodeError('netlink', 'invalid', a.start, `address attribute ${a.type} has ${len} bytes`);
        const text = formatIp(new Uint8Array(b.buffer, b.byteOffset + a.start, size));
        if (a.type === IFA_LOCAL) local = text;
        else if (a.type === IFA_ADDRESS) address = text;
        else broadcast = text;
        break;
      }
      case IFA_LABEL:
        label = readString(b, a);
        break;
      case IFA_FLAGS:
        rawFlags = readU32(b, a);
        break;
      case IFA_CACHEINFO:
        if (len >= 8) {
          preferredLifetime = lifetime(b.readUInt32LE(a.start));
          validLifetime = lifetime(b.readUInt32LE(a.start + 4));
        }
        break;
      case IFA_PROTO:
        if (len >= 1) proto = b[a.start]!;
        break;
      default:
        break; // unknown attributes are skipped (newer kernels add more)
    }
  });
  const primary = local ?? address;
  if (primary === undefined) throw new DecodeError('netlink', 'invalid', o, 'address message without IFA_LOCAL or IFA_ADDRESS');
  const result: Address = {
    family,
    linkIndex: b.readUInt32LE(o + 4),
    address: primary,
    prefixLength: b[o + 1]!,
    scope: b[o + 3]!,
    flags: {
      secondary: (rawFlags & IFA_F_SECONDARY) !== 0,
      nodad: (rawFlags & IFA_F_NODAD) !== 0,
      tentative: (rawFlags & IFA_F_TENTATIVE) !== 0,
      dadfailed: (rawFlags & IFA_F_DADFAILED) !== 0,
      deprecated: (rawFlags & IFA_F_DEPRECATED) !== 0,
      permanent: (rawFlags & IFA_F_PERMANENT) !== 0,
      noprefixroute: (rawFlags & IFA_F_NOPREFIXROUTE) !== 0,
    },
    rawFlags,
    validLifetime,
    preferredLifetime,
    proto,
  };
  if (address !== undefined && local !== undefined && address !== local) result.peer = address;
  if (broadcast !== undefined) result.broadcast = broadcast;
  if (label !== undefined) result.label = label;
  return result;
}
