/**
 * IP address text ↔ bytes, without the kernel.
 *
 * Parsing is strict: dotted-quad IPv4 with no leading zeros (as inet_pton(3)
 * accepts), and IPv6 in RFC 4291 §2.2 text forms including `::` and an
 * embedded IPv4 tail. Formatting of IPv6 follows RFC 5952 §4 (lower case,
 * longest run of zero groups as `::`, leftmost on ties, never for one group).
 */

/** Address family as vipa names it: 4 or 6. */
export type IpFamily = 4 | 6;

/** A parsed IP address: its family and its network-order bytes (4 or 16). */
export interface ParsedIp {
  family: IpFamily;
  bytes: Uint8Array;
}

const IPV4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!IPV4_PART.test(part)) return false;
    out[offset + i] = Number(part);
  }
  return true;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  const groups = halves.length === 2 ? [...head, ...tail] : head;
  // An IPv4 tail occupies the last two groups (RFC 4291 §2.2 form 3).
  const last = groups[groups.length - 1];
  let v4Tail: Uint8Array | undefined;
  if (last !== undefined && last.includes('.')) {
    v4Tail = new Uint8Array(4);
    if (!parseIpv4Into(last, v4Tail, 0)) return undefined;
    if (halves.length === 2 && tail.length > 0) tail.pop();
    else head.pop();
  }
  const hexGroups = [...head, ...tail];
  const width = hexGroups.length + (v4Tail ? 2 : 0);
  if (halves.length === 1 ? width !== 8 : width > 7) return undefined;
  for (const g of hexGroups) if (!HEX_GROUP.test(g)) return undefined;
  const write = (groupIndex: number, g: string): void => {
    const v = parseInt(g, 16);
    bytes[groupIndex * 2] = v >> 8;
    bytes[groupIndex * 2 + 1] = v & 0xff;
  };
  head.forEach((g, i) => write(i, g));
  const tailStart = 8 - (v4Tail ? 2 : 0) - tail.length;
  tail.forEach((g, i) => write(tailStart + i, g));
  if (v4Tail) bytes.set(v4Tail, 12);
  return bytes;
}

/** Parses an IP address text; `undefined` when it is not a valid IPv4 or IPv6 address. */
export function parseIp(text: string): ParsedIp | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const bytes = parseIpv6(text);
    return bytes ? { family: 6, bytes } : undefined;
  }
  const bytes = new Uint8Array(4);
  return parseIpv4Into(text, bytes, 0) ? { family: 4, bytes } : undefined;
}

/** Formats 4 or 16 network-order bytes as text (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** The IPv4 broadcast address of `address/prefixLength` (host bits set). */
export function ipv4Broadcast(address: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(address);
  for (let bit = prefixLength; bit < 32; bit++) out[bit >> 3]! |= 0x80 >> (bit & 7);
  return out;
}

/** Formats a 6-byte MAC address as lower-case colon hex. */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses colon- or dash-separated hex MAC text; `undefined` when malformed. */
export function parseMac(text: string): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}
