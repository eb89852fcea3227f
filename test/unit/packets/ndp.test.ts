import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DecodeError } from '../../../lib/errors.js';
import { formatIp, formatMac, parseIp, parseMac } from '../../../lib/ip.js';
import {
  decodeNdp,
  encodeDadNeighborSolicitation,
  encodeNdp,
  encodeUnsolicitedNeighborAdvertisement,
  icmpv6Checksum,
  ipv6MulticastMac,
  isSolicitedNodeMulticast,
  solicitedNodeMulticast,
  type NdpPacket,
} from '../../../lib/packets/index.js';
import { bytes, frame, loadVector } from '../../fixtures/frames/frames.js';

const ip = (text: string): Uint8Array => parseIp(text)!.bytes;
const mac = (text: string): Uint8Array => parseMac(text)!;
const MAC_A = mac('02:00:00:00:00:0a');

/** A decoded packet with its addresses as text, for readable expectations. */
function show(p: NdpPacket): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: p.type,
    ethDestination: formatMac(p.ethDestination),
    ethSource: formatMac(p.ethSource),
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
    ipSource: formatIp(p.ipSource),
    ipDestination: formatIp(p.ipDestination),
    hopLimit: p.hopLimit,
    target: formatIp(p.target),
    flags: p.flags,
  };
  if (p.sourceLinkLayer) out.sourceLinkLayer = formatMac(p.sourceLinkLayer);
  if (p.targetLinkLayer) out.targetLinkLayer = formatMac(p.targetLinkLayer);
  if (p.nonce) out.nonce = Buffer.from(p.nonce).toString('hex');
  return out;
}

/** Recomputes the ICMPv6 checksum after a test edits a frame (so the edit, not the checksum, is what fails). */
function fixChecksum(f: Buffer): Buffer {
  const length = Math.min(f.readUInt16BE(18), f.length - 54);
  f.writeUInt16BE(0, 56);
  f.writeUInt16BE(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), f, 54, length), 56);
  return f;
}

/**
 * Encoder vectors: exact bytes field by field (RFC 8200 / RFC 4861 names)
 * and the captured frame each must equal (test/fixtures/frames/README.md).
 */
const encoderCases = [
  {
    name: 'unsolicited NA, Router=0',
    encode: () => encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address: ip('2001:db8::10'), router: false }),
    bytes: bytes(
      '333300000001', //                     Ethernet destination: all-nodes multicast (RFC 2464 §7)
      '02000000000a', //                     Ethernet source
      '86dd', //                             EtherType: IPv6
      '60000000', //                         Version 6, Traffic Class 0, Flow Label 0
      '0020', //                             Payload Length: 32 = 24 + one 8-byte option
      '3a', //                               Next Header: ICMPv6
      'ff', //                               Hop Limit: 255 (RFC 4861 §7.1.2)
      '20010db8000000000000000000000010', // Source Address: the address announced
      'ff020000000000000000000000000001', // Destination Address: ff02::1
      '88', //                               Type: 136, Neighbor Advertisement
      '00', //                               Code
      'f903', //                             Checksum
      '20', //                               R=0 S=0 O=1
      '000000', //                           Reserved
      '20010db8000000000000000000000010', // Target Address
      '02', //                               Option: Target Link-Layer Address
      '01', //                               Length: 1 × 8 bytes
      '02000000000a', //                     the MAC the address now lives at
    ),
    capture: { vector: 'kernel-ndisc-notify', index: 0 },
  },
  {
    name: 'unsolicited NA, Router=1',
    encode: () => encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address: ip('2001:db8::10'), router: true }),
    bytes: bytes(
      '333300000001 02000000000a 86dd', //   all-nodes, from a, IPv6
      '60000000 0020 3a ff', //              IPv6: length 32, ICMPv6, hop limit 255
      '20010db8000000000000000000000010', // Source Address
      'ff020000000000000000000000000001', // Destination Address: ff02::1
      '88 00', //                            Type 136, Code 0
      '7903', //                             Checksum
      'a0', //                               R=1 S=0 O=1
      '000000', //                           Reserved
      '20010db8000000000000000000000010', // Target Address
      '0201 02000000000a', //                Target Link-Layer Address option
    ),
    capture: { vector: 'kernel-ndisc-notify-router', index: 0 },
  },
  {
    name: 'unsolicited NA for keepalived’s VIP, Router=0',
    encode: () => encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address: ip('2001:db8::100'), router: false }),
    bytes: bytes(
      '333300000001 02000000000a 86dd 60000000 0020 3a ff',
      '20010db8000000000000000000000100 ff020000000000000000000000000001', // 2001:db8::100 -> ff02::1
      '88 00 f723 20 000000', //                                              NA, checksum, O=1
      '20010db8000000000000000000000100 0201 02000000000a', //                target, TLLA
    ),
    capture: { vector: 'keepalived-master', index: 1 },
  },
  {
    name: 'unsolicited NA for keepalived’s VIP, Router=1',
    encode: () => encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address: ip('2001:db8::100'), router: true }),
    bytes: bytes(
      '333300000001 02000000000a 86dd 60000000 0020 3a ff',
      '20010db8000000000000000000000100 ff020000000000000000000000000001',
      '88 00 7723 a0 000000', //                                              NA, checksum, R=1 O=1
      '20010db8000000000000000000000100 0201 02000000000a',
    ),
    capture: { vector: 'keepalived-master-router', index: 1 },
  },
  {
    name: 'DAD NS',
    encode: () => encodeDadNeighborSolicitation({ mac: MAC_A, address: ip('2001:db8::30') }),
    bytes: bytes(
      '3333ff000030', //                     Ethernet destination: 33:33 + low 32 bits of ff02::1:ff00:30
      '02000000000a', //                     Ethernet source
      '86dd', //                             EtherType: IPv6
      '60000000', //                         Version 6, Traffic Class 0, Flow Label 0
      '0018', //                             Payload Length: 24, no options
      '3a', //                               Next Header: ICMPv6
      'ff', //                               Hop Limit: 255
      '00000000000000000000000000000000', // Source Address: :: (RFC 4862 §5.4.2)
      'ff0200000000000000000001ff000030', // Destination: solicited-node multicast of the target
      '87', //                               Type: 135, Neighbor Solicitation
      '00', //                               Code
      '4c8f', //                             Checksum
      '00000000', //                         Reserved
      '20010db8000000000000000000000030', // Target Address: the tentative address
    ), //                                    no Source Link-Layer Address option (RFC 4861 §7.1.1)
    capture: { vector: 'kernel-dad-solicitation', index: 0 },
  },
  {
    name: 'DAD NS with an RFC 7527 nonce',
    // The kernel draws a random nonce; capture.sh writes a new one each run (update this row after recapturing).
    encode: () => encodeDadNeighborSolicitation({ mac: MAC_A, address: ip('2001:db8::31'), nonce: bytes('06f098780ad0') }),
    bytes: bytes(
      '3333ff000031 02000000000a 86dd', //   solicited-node MAC, from a, IPv6
      '60000000 0020 3a ff', //              Payload Length 32: 24 + the Nonce option
      '00000000000000000000000000000000', // Source Address: ::
      'ff0200000000000000000001ff000031', // Destination: ff02::1:ff00:31
      '87 00 944b 00000000', //              NS, Code 0, Checksum, Reserved
      '20010db8000000000000000000000031', // Target Address
      '0e', //                               Option: Nonce (RFC 3971 §5.3.2)
      '01', //                               Length: 1 × 8 bytes
      '06f098780ad0', //                     the nonce
    ),
    capture: { vector: 'kernel-dad-solicitation-nonce', index: 0 },
  },
];

describe('NDP encoders', () => {
  it.each(encoderCases)('$name: exact bytes', ({ encode, bytes: expected }) => {
    const encoded = encode();
    expect(Buffer.isBuffer(encoded)).toBe(true);
    expect(encoded.toString('hex')).toBe(expected.toString('hex'));
  });

  it.each(encoderCases)('$name: byte-identical to $capture.vector', ({ encode, capture }) => {
    expect(encode().toString('hex')).toBe(frame(capture.vector, capture.index).toString('hex'));
  });

  it('computes the solicited-node multicast address and its MAC (RFC 4291 §2.7.1, RFC 2464 §7)', () => {
    const group = solicitedNodeMulticast(ip('2001:db8::1234:5678'));
    expect(formatIp(group)).toBe('ff02::1:ff34:5678');
    expect(isSolicitedNodeMulticast(group)).toBe(true);
    expect(formatMac(ipv6MulticastMac(group))).toBe('33:33:ff:34:56:78');
    expect(formatMac(ipv6MulticastMac(ip('ff02::1')))).toBe('33:33:00:00:00:01');
    expect(isSolicitedNodeMulticast(ip('ff02::1'))).toBe(false);
    expect(isSolicitedNodeMulticast(ip('ff02::2:ff34:5678'))).toBe(false);
    expect(isSolicitedNodeMulticast(ip('ff05::1:ff34:5678'))).toBe(false);
    expect(isSolicitedNodeMulticast(new Uint8Array(4))).toBe(false);
    expect(() => solicitedNodeMulticast(ip('198.51.100.1'))).toThrow(RangeError);
  });

  it('refuses malformed arguments with RangeError', () => {
    const address = ip('2001:db8::10');
    expect(() => encodeUnsolicitedNeighborAdvertisement({ mac: new Uint8Array(8), address, router: false })).toThrow(RangeError);
    expect(() => encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address: ip('198.51.100.10'), router: false })).toThrow(RangeError);
    expect(() => encodeDadNeighborSolicitation({ mac: MAC_A, address, nonce: new Uint8Array(5) })).toThrow(RangeError);
    expect(() => encodeDadNeighborSolicitation({ mac: MAC_A, address, nonce: new Uint8Array(8) })).toThrow(RangeError);
    expect(encodeDadNeighborSolicitation({ mac: MAC_A, address, nonce: new Uint8Array(14) }).length).toBe(78 + 16);
    const p = decodeNdp(frame('kernel-ndisc-notify'));
    expect(() => encodeNdp({ ...p, flowLabel: 0x100000 })).toThrow(RangeError);
    expect(() => encodeNdp({ ...p, trafficClass: -1 })).toThrow(RangeError);
    expect(() => encodeNdp({ ...p, hopLimit: 256 })).toThrow(RangeError);
    expect(() => encodeNdp({ ...p, type: 'rs' as 'ns' })).toThrow(RangeError);
    expect(() => encodeNdp({ ...p, target: new Uint8Array(4) })).toThrow(RangeError);
    expect(() => encodeNdp({ ...p, targetLinkLayer: new Uint8Array(7) })).toThrow(RangeError);
  });

  it('round-trips any MAC and address through decodeNdp', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 6, maxLength: 6 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((a) => a[0] !== 0xff),
        fc.boolean(),
        fc.option(fc.uint8Array({ minLength: 6, maxLength: 6 }), { nil: undefined }),
        (m, address, router, nonce) => {
          const na = encodeUnsolicitedNeighborAdvertisement({ mac: m, address, router });
          const pa = decodeNdp(na);
          expect(pa).toMatchObject({ type: 'na', ipSource: address, target: address, targetLinkLayer: m, ethSource: m });
          expect(pa.flags).toEqual({ router, solicited: false, override: true });
          expect(encodeNdp(pa)).toEqual(na);

          const ns = encodeDadNeighborSolicitation({ mac: m, address, nonce });
          const ps = decodeNdp(ns);
          const group = solicitedNodeMulticast(address);
          expect(ps).toMatchObject({ type: 'ns', ipSource: new Uint8Array(16), ipDestination: group, target: address });
          expect(ps.ethDestination).toEqual(ipv6MulticastMac(group));
          expect(ps.sourceLinkLayer).toBeUndefined();
          expect(ps.nonce).toEqual(nonce);
          expect(encodeNdp(ps)).toEqual(ns);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('encodes in well under the 1 µs budget per frame', () => {
    const address = ip('2001:db8::10');
    const n = 100_000;
    let length = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) length += encodeUnsolicitedNeighborAdvertisement({ mac: MAC_A, address, router: (i & 1) === 1 }).length;
    const perFrameNs = Number(process.hrtime.bigint() - start) / n;
    expect(length).toBe(n * 86);
    // Generous bound (JIT warm-up, loaded CI); typically ~0.3 µs here.
    expect(perFrameNs).toBeLessThan(2_000);
  });
});

describe('decodeNdp', () => {
  const NO_FLAGS = { router: false, solicited: false, override: false };
  const decoderCases: { vector: string; index: number; expected: Record<string, unknown> }[] = [
    {
      // ndisc6 sends from a raw socket; the kernel fills in a flow label (RFC 6437).
      vector: 'ndisc6-solicitation',
      index: 0,
      expected: {
        type: 'ns', ethDestination: '33:33:ff:00:00:20', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0x7a137,
        ipSource: '2001:db8::10', ipDestination: 'ff02::1:ff00:20', hopLimit: 255, target: '2001:db8::20', flags: NO_FLAGS,
        sourceLinkLayer: '02:00:00:00:00:0a',
      },
    },
    {
      // b's kernel answers: unicast, Solicited=1, Override=1.
      vector: 'ndisc6-solicitation',
      index: 1,
      expected: {
        type: 'na', ethDestination: '02:00:00:00:00:0a', ethSource: '02:00:00:00:00:0b', trafficClass: 0, flowLabel: 0,
        ipSource: '2001:db8::20', ipDestination: '2001:db8::10', hopLimit: 255, target: '2001:db8::20',
        flags: { router: false, solicited: true, override: true }, targetLinkLayer: '02:00:00:00:00:0b',
      },
    },
    {
      vector: 'kernel-dad-solicitation',
      index: 0,
      expected: {
        type: 'ns', ethDestination: '33:33:ff:00:00:30', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '::', ipDestination: 'ff02::1:ff00:30', hopLimit: 255, target: '2001:db8::30', flags: NO_FLAGS,
      },
    },
    {
      vector: 'kernel-dad-solicitation-nonce',
      index: 0,
      expected: {
        type: 'ns', ethDestination: '33:33:ff:00:00:31', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '::', ipDestination: 'ff02::1:ff00:31', hopLimit: 255, target: '2001:db8::31', flags: NO_FLAGS,
        nonce: frame('kernel-dad-solicitation-nonce').subarray(80, 86).toString('hex'),
      },
    },
    {
      vector: 'kernel-ndisc-notify',
      index: 0,
      expected: {
        type: 'na', ethDestination: '33:33:00:00:00:01', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '2001:db8::10', ipDestination: 'ff02::1', hopLimit: 255, target: '2001:db8::10',
        flags: { router: false, solicited: false, override: true }, targetLinkLayer: '02:00:00:00:00:0a',
      },
    },
    {
      vector: 'kernel-ndisc-notify-router',
      index: 0,
      expected: {
        type: 'na', ethDestination: '33:33:00:00:00:01', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '2001:db8::10', ipDestination: 'ff02::1', hopLimit: 255, target: '2001:db8::10',
        flags: { router: true, solicited: false, override: true }, targetLinkLayer: '02:00:00:00:00:0a',
      },
    },
    {
      vector: 'keepalived-master',
      index: 1,
      expected: {
        type: 'na', ethDestination: '33:33:00:00:00:01', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '2001:db8::100', ipDestination: 'ff02::1', hopLimit: 255, target: '2001:db8::100',
        flags: { router: false, solicited: false, override: true }, targetLinkLayer: '02:00:00:00:00:0a',
      },
    },
    {
      vector: 'keepalived-master-router',
      index: 1,
      expected: {
        type: 'na', ethDestination: '33:33:00:00:00:01', ethSource: '02:00:00:00:00:0a', trafficClass: 0, flowLabel: 0,
        ipSource: '2001:db8::100', ipDestination: 'ff02::1', hopLimit: 255, target: '2001:db8::100',
        flags: { router: true, solicited: false, override: true }, targetLinkLayer: '02:00:00:00:00:0a',
      },
    },
  ];

  it.each(decoderCases)('decodes $vector #$index', ({ vector, index, expected }) => {
    const f = frame(vector, index);
    const p = decodeNdp(f);
    expect(show(p)).toEqual(expected);
    // Lossless for these frames (no reserved bits set, options in canonical order).
    expect(encodeNdp(p).toString('hex')).toBe(f.toString('hex'));
  });

  it('skips unknown options, keeps the first of repeated ones, ignores bytes after the payload', () => {
    const [ns, na, padded] = loadVector('seeds/ndp-options').frames;
    expect(show(decodeNdp(ns!))).toMatchObject({
      type: 'ns', flowLabel: 0x12345, sourceLinkLayer: '02:00:00:00:00:0a', nonce: '010203040506',
    });
    expect(show(decodeNdp(na!))).toMatchObject({
      type: 'na', flags: { router: true, solicited: true, override: false }, targetLinkLayer: '02:00:00:00:00:0b',
    });
    expect(show(decodeNdp(padded!))).toEqual(decoderCases[2]!.expected);
  });

  it('returns copies that survive reuse of the receive buffer', () => {
    const f = Buffer.from(frame('kernel-ndisc-notify'));
    const p = decodeNdp(f);
    f.fill(0);
    expect(show(p)).toEqual(decoderCases[4]!.expected);
    expect(Object.getPrototypeOf(p.target)).toBe(Uint8Array.prototype);
  });

  const na = (): Buffer => Buffer.from(frame('kernel-ndisc-notify'));
  const dad = (): Buffer => Buffer.from(frame('kernel-dad-solicitation'));
  const edit = (f: Buffer, change: (f: Buffer) => void, fix = true): Buffer => {
    change(f);
    return fix ? fixChecksum(f) : f;
  };
  /** Appends `option` (hex) to a frame's ICMPv6 message, updating Payload Length. */
  const withOption = (f: Buffer, option: string): Buffer => {
    const g = Buffer.concat([f, bytes(option)]);
    g.writeUInt16BE(g.length - 54, 18);
    return g;
  };
  const rejectCases: { name: string; input: () => Uint8Array; reason: string; offset: number }[] = [
    { name: 'empty frame', input: () => new Uint8Array(0), reason: 'short', offset: 0 },
    { name: '13 bytes', input: () => na().subarray(0, 13), reason: 'short', offset: 13 },
    { name: 'IPv6 header cut', input: () => na().subarray(0, 53), reason: 'short', offset: 53 },
    { name: 'EtherType IPv4', input: () => edit(na(), (f) => f.writeUInt16BE(0x0800, 12), false), reason: 'invalid', offset: 12 },
    { name: 'EtherType ARP', input: () => frame('keepalived-master', 0), reason: 'invalid', offset: 12 },
    { name: 'IP version 4', input: () => edit(na(), (f) => (f[14] = 0x40), false), reason: 'invalid', offset: 14 },
    { name: 'Payload Length beyond the frame', input: () => edit(na(), (f) => f.writeUInt16BE(33, 18)), reason: 'truncated', offset: 18 },
    { name: 'frame cut inside the option', input: () => na().subarray(0, 80), reason: 'truncated', offset: 18 },
    { name: 'Next Header hop-by-hop', input: () => edit(na(), (f) => (f[20] = 0), false), reason: 'invalid', offset: 20 },
    { name: 'Next Header UDP', input: () => edit(na(), (f) => (f[20] = 17), false), reason: 'invalid', offset: 20 },
    { name: 'Hop Limit 254 (forwarded)', input: () => edit(na(), (f) => (f[21] = 254)), reason: 'invalid', offset: 21 },
    { name: 'Hop Limit 64', input: () => edit(dad(), (f) => (f[21] = 64)), reason: 'invalid', offset: 21 },
    { name: 'empty ICMPv6 message', input: () => edit(na().subarray(0, 54), (f) => f.writeUInt16BE(0, 18), false), reason: 'short', offset: 54 },
    { name: 'ICMPv6 echo request', input: () => edit(na(), (f) => (f[54] = 128)), reason: 'invalid', offset: 54 },
    { name: 'Router Solicitation', input: () => edit(na(), (f) => (f[54] = 133)), reason: 'invalid', offset: 54 },
    { name: 'NA of 8 bytes', input: () => edit(na().subarray(0, 62), (f) => f.writeUInt16BE(8, 18)), reason: 'short', offset: 62 },
    { name: 'Code 1', input: () => edit(na(), (f) => (f[55] = 1)), reason: 'invalid', offset: 55 },
    { name: 'checksum off by one', input: () => edit(na(), (f) => (f[57]! ^= 1), false), reason: 'bad-checksum', offset: 56 },
    { name: 'target changed, checksum not', input: () => edit(na(), (f) => (f[77]! ^= 0x10), false), reason: 'bad-checksum', offset: 56 },
    { name: 'flags changed, checksum not', input: () => edit(na(), (f) => (f[58] = 0xa0), false), reason: 'bad-checksum', offset: 56 },
    { name: 'multicast Target Address', input: () => edit(na(), (f) => (f[62] = 0xff)), reason: 'invalid', offset: 62 },
    { name: 'option Length 0', input: () => edit(na(), (f) => (f[79] = 0)), reason: 'invalid', offset: 79 },
    { name: 'option overrunning the payload', input: () => edit(na(), (f) => (f[79] = 2)), reason: 'truncated', offset: 78 },
    { name: 'one byte left for an option', input: () => fixChecksum(withOption(dad(), '0e')), reason: 'truncated', offset: 78 },
    { name: 'unknown option overrunning', input: () => fixChecksum(withOption(dad(), 'fd03 0000 0000 0000')), reason: 'truncated', offset: 78 },
    { name: 'second option of Length 0', input: () => fixChecksum(withOption(na(), 'fd00 0000 0000 0000')), reason: 'invalid', offset: 87 },
    { name: '16-byte link-layer option', input: () => fixChecksum(withOption(dad(), '0102 0200 0000 000a 0000 0000 0000 0000')), reason: 'invalid', offset: 79 },
    { name: 'DAD NS to all-nodes', input: () => edit(dad(), (f) => f.set(ip('ff02::1'), 38)), reason: 'invalid', offset: 38 },
    { name: 'DAD NS with a Source Link-Layer Address', input: () => fixChecksum(withOption(dad(), '0101 02000000000a')), reason: 'invalid', offset: 78 },
    { name: 'multicast NA with Solicited=1', input: () => edit(na(), (f) => (f[58] = 0x60)), reason: 'invalid', offset: 58 },
  ];

  it.each(rejectCases)('rejects $name ($reason at $offset)', ({ input, reason, offset }) => {
    let error: unknown;
    try {
      decodeNdp(input());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DecodeError);
    expect(error).toMatchObject({ codec: 'ndp', reason, offset });
  });

  it('accepts what the rejection cases edit when the edit is legal', () => {
    // Sanity for the table above: the same helpers produce decodable frames.
    expect(decodeNdp(edit(na(), () => undefined)).type).toBe('na');
    expect(decodeNdp(fixChecksum(withOption(dad(), 'fd01 0000 0000 0000'))).type).toBe('ns');
    // A solicited NA to a unicast address is fine.
    expect(decodeNdp(edit(frame('ndisc6-solicitation', 1), () => undefined)).flags.solicited).toBe(true);
  });
});
