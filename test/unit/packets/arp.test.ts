import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DecodeError } from '../../../lib/errors.js';
import { formatIp, formatMac, parseIp, parseMac } from '../../../lib/ip.js';
import {
  ARP_FRAME_LENGTH,
  decodeArp,
  encodeArp,
  encodeArpProbe,
  encodeGratuitousArp,
  isArpProbe,
  isGratuitousArp,
  type ArpPacket,
} from '../../../lib/packets/index.js';
import { bytes, frame, loadVector } from '../../fixtures/frames/frames.js';

const ip = (text: string): Uint8Array => parseIp(text)!.bytes;
const mac = (text: string): Uint8Array => parseMac(text)!;
const MAC_A = mac('02:00:00:00:00:0a');

/** A decoded packet with its addresses as text, for readable expectations. */
function show(p: ArpPacket): Record<string, string> {
  return {
    operation: p.operation,
    ethDestination: formatMac(p.ethDestination),
    ethSource: formatMac(p.ethSource),
    senderMac: formatMac(p.senderMac),
    senderIp: formatIp(p.senderIp),
    targetMac: formatMac(p.targetMac),
    targetIp: formatIp(p.targetIp),
  };
}

/**
 * Encoder vectors: the exact bytes, field by field (RFC 826 names), and the
 * captured frame they are checked against (test/fixtures/frames/README.md).
 */
const encoderCases = [
  {
    name: 'gratuitous request (RFC 5227 §2.3 announcement)',
    encode: () => encodeGratuitousArp({ mac: MAC_A, address: ip('198.51.100.10'), operation: 'request' }),
    bytes: bytes(
      'ffffffffffff', // Ethernet destination: broadcast
      '02000000000a', // Ethernet source: the announcing interface
      '0806', //         EtherType: ARP
      '0001', //         ar$hrd: Ethernet
      '0800', //         ar$pro: IPv4
      '06', //           ar$hln
      '04', //           ar$pln
      '0001', //         ar$op: request
      '02000000000a', // ar$sha: our MAC
      'c633640a', //     ar$spa: 198.51.100.10, the address
      '000000000000', // ar$tha: zero (RFC 5227 §2.3); arping -U and keepalived send ff:ff:ff:ff:ff:ff
      'c633640a', //     ar$tpa: 198.51.100.10, the address again
    ),
    // Byte-identical to the Linux kernel's own gratuitous ARP (arp_notify).
    identicalTo: { vector: 'kernel-arp-notify', index: 0 },
    // iputils arping -U differs only in ar$tha (bytes 32..37).
    differsOnlyInTha: { vector: 'arping-unsolicited-request', index: 0 },
  },
  {
    name: 'gratuitous reply (RFC 5944 §4.6)',
    encode: () => encodeGratuitousArp({ mac: MAC_A, address: ip('198.51.100.10'), operation: 'reply' }),
    bytes: bytes(
      'ffffffffffff', // Ethernet destination: broadcast, so every neighbour sees it
      '02000000000a', // Ethernet source
      '0806', //         EtherType: ARP
      '0001', //         ar$hrd: Ethernet
      '0800', //         ar$pro: IPv4
      '06', //           ar$hln
      '04', //           ar$pln
      '0002', //         ar$op: reply
      '02000000000a', // ar$sha: our MAC
      'c633640a', //     ar$spa: 198.51.100.10
      '02000000000a', // ar$tha: our MAC again (RFC 5944 §4.6), as arping -A sends
      'c633640a', //     ar$tpa: 198.51.100.10
    ),
    identicalTo: { vector: 'arping-unsolicited-reply', index: 0 },
    differsOnlyInTha: undefined,
  },
  {
    name: 'probe (RFC 5227 §2.1.1)',
    encode: () => encodeArpProbe({ mac: MAC_A, address: ip('198.51.100.20') }),
    bytes: bytes(
      'ffffffffffff', // Ethernet destination: broadcast
      '02000000000a', // Ethernet source
      '0806', //         EtherType: ARP
      '0001', //         ar$hrd: Ethernet
      '0800', //         ar$pro: IPv4
      '06', //           ar$hln
      '04', //           ar$pln
      '0001', //         ar$op: request
      '02000000000a', // ar$sha: our MAC
      '00000000', //     ar$spa: 0.0.0.0, so no cache learns from the probe
      '000000000000', // ar$tha: zero (RFC 5227 §2.1.1 SHOULD); arping -D sends ff:ff:ff:ff:ff:ff
      'c6336414', //     ar$tpa: 198.51.100.20, the address probed
    ),
    identicalTo: undefined,
    differsOnlyInTha: { vector: 'arping-dad-probe-defended', index: 0 },
  },
  {
    name: 'gratuitous request for keepalived’s VIP',
    encode: () => encodeGratuitousArp({ mac: MAC_A, address: ip('198.51.100.100'), operation: 'request' }),
    bytes: bytes(
      'ffffffffffff 02000000000a 0806', // broadcast, from a, ARP
      '0001 0800 06 04 0001', //           Ethernet/IPv4 request
      '02000000000a c6336464', //          ar$sha, ar$spa 198.51.100.100
      '000000000000 c6336464', //          ar$tha zero, ar$tpa 198.51.100.100
    ),
    identicalTo: undefined,
    differsOnlyInTha: { vector: 'keepalived-master', index: 0 },
  },
];

describe('ARP encoders', () => {
  it.each(encoderCases)('$name: exact bytes', ({ encode, bytes: expected }) => {
    const encoded = encode();
    expect(Buffer.isBuffer(encoded)).toBe(true);
    expect(encoded.length).toBe(ARP_FRAME_LENGTH);
    expect(encoded.toString('hex')).toBe(expected.toString('hex'));
  });

  it.each(encoderCases)('$name: against the captured tool frame', ({ encode, identicalTo, differsOnlyInTha }) => {
    const encoded = encode();
    if (identicalTo) expect(encoded.toString('hex')).toBe(frame(identicalTo.vector, identicalTo.index).toString('hex'));
    if (differsOnlyInTha) {
      const captured = frame(differsOnlyInTha.vector, differsOnlyInTha.index);
      expect(captured.subarray(32, 38).toString('hex')).toBe('ffffffffffff');
      const withZeroTha = Buffer.from(captured);
      withZeroTha.fill(0, 32, 38);
      expect(encoded.toString('hex')).toBe(withZeroTha.toString('hex'));
    }
  });

  it('encodes an arbitrary packet (the defender’s reply to a probe, as the kernel sent it)', () => {
    const reply = encodeArp({
      operation: 'reply',
      ethDestination: MAC_A,
      ethSource: mac('02:00:00:00:00:0b'),
      senderMac: mac('02:00:00:00:00:0b'),
      senderIp: ip('198.51.100.20'),
      targetMac: MAC_A,
      targetIp: ip('0.0.0.0'),
    });
    expect(reply.toString('hex')).toBe(frame('arping-dad-probe-defended', 1).toString('hex'));
  });

  it('refuses malformed arguments with RangeError', () => {
    const address = ip('198.51.100.10');
    expect(() => encodeGratuitousArp({ mac: new Uint8Array(5), address, operation: 'request' })).toThrow(RangeError);
    expect(() => encodeGratuitousArp({ mac: MAC_A, address: ip('2001:db8::1'), operation: 'request' })).toThrow(RangeError);
    expect(() => encodeGratuitousArp({ mac: MAC_A, address, operation: 'announce' as 'request' })).toThrow(RangeError);
    expect(() => encodeArpProbe({ mac: MAC_A, address: 'x' as unknown as Uint8Array })).toThrow(RangeError);
    const packet = decodeArp(frame('kernel-arp-resolution', 0));
    expect(() => encodeArp({ ...packet, targetIp: new Uint8Array(16) })).toThrow(RangeError);
    expect(() => encodeArp({ ...packet, operation: 'nak' as 'reply' })).toThrow(RangeError);
  });

  it('round-trips any MAC and address through decodeArp', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 6, maxLength: 6 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.constantFrom('request' as const, 'reply' as const, 'probe' as const),
        (m, a, kind) => {
          const f =
            kind === 'probe' ? encodeArpProbe({ mac: m, address: a }) : encodeGratuitousArp({ mac: m, address: a, operation: kind });
          const p = decodeArp(f);
          expect(p.ethSource).toEqual(m);
          expect(p.senderMac).toEqual(m);
          expect(p.targetIp).toEqual(a);
          expect(p.senderIp).toEqual(kind === 'probe' ? new Uint8Array(4) : a);
          expect(p.operation).toBe(kind === 'reply' ? 'reply' : 'request');
          expect(encodeArp(p)).toEqual(f);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('encodes in well under the 1 µs budget per frame', () => {
    const address = ip('198.51.100.10');
    const n = 100_000;
    let length = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) length += encodeGratuitousArp({ mac: MAC_A, address, operation: i & 1 ? 'reply' : 'request' }).length;
    const perFrameNs = Number(process.hrtime.bigint() - start) / n;
    expect(length).toBe(n * 42);
    // Generous bound (JIT warm-up, loaded CI); typically ~0.1 µs here.
    expect(perFrameNs).toBeLessThan(2_000);
  });
});

describe('decodeArp', () => {
  const decoderCases: { vector: string; index: number; expected: Record<string, string>; probe: boolean; gratuitous: boolean }[] = [
    {
      vector: 'arping-unsolicited-request',
      index: 0,
      expected: {
        operation: 'request', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '198.51.100.10', targetMac: 'ff:ff:ff:ff:ff:ff', targetIp: '198.51.100.10',
      },
      probe: false,
      gratuitous: true,
    },
    {
      vector: 'arping-unsolicited-reply',
      index: 0,
      expected: {
        operation: 'reply', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '198.51.100.10', targetMac: '02:00:00:00:00:0a', targetIp: '198.51.100.10',
      },
      probe: false,
      gratuitous: true,
    },
    {
      vector: 'arping-dad-probe-defended',
      index: 0,
      expected: {
        operation: 'request', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '0.0.0.0', targetMac: 'ff:ff:ff:ff:ff:ff', targetIp: '198.51.100.20',
      },
      probe: true,
      gratuitous: false,
    },
    {
      // The kernel defends its address against the probe: a unicast reply to the prober.
      vector: 'arping-dad-probe-defended',
      index: 1,
      expected: {
        operation: 'reply', ethDestination: '02:00:00:00:00:0a', ethSource: '02:00:00:00:00:0b',
        senderMac: '02:00:00:00:00:0b', senderIp: '198.51.100.20', targetMac: '02:00:00:00:00:0a', targetIp: '0.0.0.0',
      },
      probe: false,
      gratuitous: false,
    },
    {
      vector: 'kernel-arp-resolution',
      index: 0,
      expected: {
        operation: 'request', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '198.51.100.10', targetMac: '00:00:00:00:00:00', targetIp: '198.51.100.20',
      },
      probe: false,
      gratuitous: false,
    },
    {
      vector: 'kernel-arp-resolution',
      index: 1,
      expected: {
        operation: 'reply', ethDestination: '02:00:00:00:00:0a', ethSource: '02:00:00:00:00:0b',
        senderMac: '02:00:00:00:00:0b', senderIp: '198.51.100.20', targetMac: '02:00:00:00:00:0a', targetIp: '198.51.100.10',
      },
      probe: false,
      gratuitous: false,
    },
    {
      vector: 'kernel-arp-notify',
      index: 0,
      expected: {
        operation: 'request', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '198.51.100.10', targetMac: '00:00:00:00:00:00', targetIp: '198.51.100.10',
      },
      probe: false,
      gratuitous: true,
    },
    {
      vector: 'keepalived-master',
      index: 0,
      expected: {
        operation: 'request', ethDestination: 'ff:ff:ff:ff:ff:ff', ethSource: '02:00:00:00:00:0a',
        senderMac: '02:00:00:00:00:0a', senderIp: '198.51.100.100', targetMac: 'ff:ff:ff:ff:ff:ff', targetIp: '198.51.100.100',
      },
      probe: false,
      gratuitous: true,
    },
  ];

  it.each(decoderCases)('decodes $vector #$index', ({ vector, index, expected, probe, gratuitous }) => {
    const f = frame(vector, index);
    const p = decodeArp(f);
    expect(show(p)).toEqual(expected);
    expect(isArpProbe(p)).toBe(probe);
    expect(isGratuitousArp(p)).toBe(gratuitous);
    // Lossless for unpadded frames.
    expect(encodeArp(p).toString('hex')).toBe(f.toString('hex'));
  });

  it('decodes frames padded to the 60-byte Ethernet minimum, whatever the padding', () => {
    const [zeros, junk] = loadVector('seeds/arp-padded').frames;
    expect(zeros!.length).toBe(60);
    expect(show(decodeArp(zeros!))).toEqual(decoderCases[5]!.expected);
    expect(show(decodeArp(junk!))).toEqual(decoderCases[4]!.expected);
  });

  it('returns copies that survive reuse of the receive buffer', () => {
    const f = Buffer.from(frame('keepalived-master', 0));
    const p = decodeArp(f);
    f.fill(0);
    expect(show(p)).toEqual(decoderCases[7]!.expected);
    expect(Object.getPrototypeOf(p.senderIp)).toBe(Uint8Array.prototype);
  });

  const base = (): Buffer => Buffer.from(frame('kernel-arp-resolution', 0));
  const rejectCases: { name: string; input: () => Uint8Array; reason: string; offset: number }[] = [
    { name: 'empty frame', input: () => new Uint8Array(0), reason: 'short', offset: 0 },
    { name: 'Ethernet header only', input: () => base().subarray(0, 14), reason: 'short', offset: 14 },
    { name: '21 bytes (ARP fixed part cut)', input: () => base().subarray(0, 21), reason: 'short', offset: 21 },
    { name: 'addresses cut at 41 bytes', input: () => base().subarray(0, 41), reason: 'truncated', offset: 18 },
    { name: 'addresses cut at 22 bytes', input: () => base().subarray(0, 22), reason: 'truncated', offset: 18 },
    { name: 'EtherType IPv4', input: () => (b => (b.writeUInt16BE(0x0800, 12), b))(base()), reason: 'invalid', offset: 12 },
    { name: 'EtherType RARP', input: () => (b => (b.writeUInt16BE(0x8035, 12), b))(base()), reason: 'invalid', offset: 12 },
    { name: 'VLAN-tagged', input: () => bytes('ffffffffffff02000000000a 8100 0064', base().toString('hex', 12)), reason: 'invalid', offset: 12 },
    { name: 'ar$hrd 6 (IEEE 802)', input: () => (b => (b.writeUInt16BE(6, 14), b))(base()), reason: 'invalid', offset: 14 },
    { name: 'ar$pro IPv6', input: () => (b => (b.writeUInt16BE(0x86dd, 16), b))(base()), reason: 'invalid', offset: 16 },
    { name: 'ar$hln 8', input: () => (b => ((b[18] = 8), b))(base()), reason: 'invalid', offset: 18 },
    { name: 'ar$pln 16', input: () => (b => ((b[19] = 16), b))(base()), reason: 'invalid', offset: 19 },
    { name: 'ar$op 0', input: () => (b => (b.writeUInt16BE(0, 20), b))(base()), reason: 'invalid', offset: 20 },
    { name: 'ar$op 3 (RARP request)', input: () => (b => (b.writeUInt16BE(3, 20), b))(base()), reason: 'invalid', offset: 20 },
    { name: 'ar$op 8 (InARP request)', input: () => (b => (b.writeUInt16BE(8, 20), b))(base()), reason: 'invalid', offset: 20 },
    { name: 'ar$op 0x0101', input: () => (b => (b.writeUInt16BE(0x0101, 20), b))(base()), reason: 'invalid', offset: 20 },
  ];

  it.each(rejectCases)('rejects $name ($reason at $offset)', ({ input, reason, offset }) => {
    let error: unknown;
    try {
      decodeArp(input());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DecodeError);
    expect(error).toMatchObject({ codec: 'arp', reason, offset });
  });
});
