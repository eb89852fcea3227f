import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { finishChecksum, icmpv6Checksum, internetChecksum, onesComplementSum } from '../../../lib/packets/index.js';
import { bytes, capturedVectors } from '../../fixtures/frames/frames.js';

/** Straightforward RFC 1071 reference: fold after every addition. */
function referenceChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (i + 1 < data.length ? data[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('internetChecksum (RFC 1071)', () => {
  it('matches the RFC 1071 §3 numerical example', () => {
    // 0001 + f203 + f4f5 + f6f7 = 2ddf0 -> folded ddf2 -> complement 220d.
    const data = bytes('0001 f203 f4f5 f6f7');
    expect(onesComplementSum(data, 0, 8)).toBe(0x2ddf0);
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it('computes and verifies an IPv4 header checksum', () => {
    // 198.51.100.10 -> 198.51.100.20, UDP, total length 0x0073, checksum field zero.
    const header = bytes('4500 0073 0000 4000 4011 0000 c633 640a c633 6414');
    const checksum = internetChecksum(header);
    expect(checksum).toBe(referenceChecksum(header));
    header.writeUInt16BE(checksum, 10);
    expect(internetChecksum(header)).toBe(0);
  });

  it('pads an odd last byte with zero', () => {
    expect(internetChecksum(bytes('01'))).toBe(0xfeff);
    expect(internetChecksum(bytes('0001 f203 f4'))).toBe(internetChecksum(bytes('0001 f203 f400')));
  });

  it('is 0xffff over nothing or zeros', () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
    expect(internetChecksum(new Uint8Array(7))).toBe(0xffff);
  });

  it('folds sums beyond 32 bits (deferred carries)', () => {
    const data = new Uint8Array(200_000).fill(0xff); // 100,000 words of 0xffff: sum > 2^32
    expect(onesComplementSum(data, 0, data.length)).toBeGreaterThan(2 ** 32);
    expect(internetChecksum(data)).toBe(0);
    data[0] = 0x12;
    expect(internetChecksum(data)).toBe(referenceChecksum(data));
  });

  it('checksums a sub-range and chains sums over even-length ranges', () => {
    const data = bytes('dead 0001 f203 f4f5 f6f7 beef');
    expect(internetChecksum(data, 2, 8)).toBe(0x220d);
    expect(finishChecksum(onesComplementSum(data, 6, 4, onesComplementSum(data, 2, 4)))).toBe(0x220d);
  });

  it('refuses ranges outside the buffer', () => {
    expect(() => internetChecksum(new Uint8Array(4), 2, 4)).toThrow(RangeError);
    expect(() => internetChecksum(new Uint8Array(4), -1)).toThrow(RangeError);
    expect(() => internetChecksum(new Uint8Array(4), 0.5)).toThrow(RangeError);
  });

  it('agrees with the reference on random data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (data) => {
        const checksum = internetChecksum(data);
        expect(checksum).toBe(referenceChecksum(data));
        // Appending the checksum as a word (at an even offset) makes the whole verify.
        if (data.length % 2 === 0) {
          const withChecksum = Buffer.concat([data, Buffer.from([checksum >> 8, checksum & 0xff])]);
          expect(internetChecksum(withChecksum)).toBe(0);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('icmpv6Checksum (RFC 4443 §2.3, RFC 8200 §8.1 pseudo-header)', () => {
  // Every captured IPv6 frame: kernel, keepalived and ndisc6 computed these checksums.
  const ipv6Frames = capturedVectors().flatMap((v) =>
    v.frames.filter((f) => f.readUInt16BE(12) === 0x86dd).map((f, i) => ({ name: `${v.name} #${i + 1}`, f })),
  );

  it('has captured IPv6 frames to check against', () => {
    expect(ipv6Frames.length).toBeGreaterThanOrEqual(8);
  });

  it.each(ipv6Frames)('verifies and recomputes the checksum of $name', ({ f }) => {
    const payloadLength = f.readUInt16BE(18);
    const source = f.subarray(22, 38);
    const destination = f.subarray(38, 54);
    expect(icmpv6Checksum(source, destination, f, 54, payloadLength)).toBe(0);
    const zeroed = Buffer.from(f);
    zeroed.writeUInt16BE(0, 56);
    expect(icmpv6Checksum(source, destination, zeroed, 54, payloadLength)).toBe(f.readUInt16BE(56));
    // The default range is "to the end of the message buffer".
    expect(icmpv6Checksum(source, destination, zeroed.subarray(54, 54 + payloadLength))).toBe(f.readUInt16BE(56));
  });

  it('detects a changed pseudo-header field', () => {
    const { f } = ipv6Frames[0]!;
    const payloadLength = f.readUInt16BE(18);
    const otherSource = Buffer.from(f.subarray(22, 38));
    otherSource[15]! ^= 1;
    expect(icmpv6Checksum(otherSource, f.subarray(38, 54), f, 54, payloadLength)).not.toBe(0);
    // Length is part of the pseudo-header: the same bytes with two zero bytes more no longer verify.
    const longer = Buffer.concat([f.subarray(54, 54 + payloadLength), Buffer.alloc(2)]);
    expect(icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), longer)).not.toBe(0);
  });

  it('refuses addresses that are not 16 bytes', () => {
    expect(() => icmpv6Checksum(new Uint8Array(4), new Uint8Array(16), new Uint8Array(8))).toThrow(RangeError);
  });
});
