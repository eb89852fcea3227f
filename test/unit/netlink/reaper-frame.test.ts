import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../lib/ip.js';
import { encodeArmFrame } from '../../../lib/netlink/reaper.js';

describe('the reaper arm frame', () => {
  it('carries the delete requests, then the watched addresses (family, 16 bytes; IPv4 in the first 4)', () => {
    const requests = Uint8Array.from([1, 2, 3, 4, 5]);
    const v4 = parseIp('198.51.100.7')!;
    const v6 = parseIp('2001:db8::7')!;
    const frame = encodeArmFrame(requests, [v4, v6]);
    expect(frame.length).toBe(4 + 5 + 2 + 2 * 17);
    expect(frame.readUInt32BE(0)).toBe(5);
    expect([...frame.subarray(4, 9)]).toEqual([1, 2, 3, 4, 5]);
    expect(frame.readUInt16BE(9)).toBe(2);
    expect(frame[11]).toBe(4);
    expect([...frame.subarray(12, 16)]).toEqual([198, 51, 100, 7]);
    expect([...frame.subarray(16, 28)]).toEqual(new Array(12).fill(0));
    expect(frame[28]).toBe(6);
    expect(Buffer.from(frame.subarray(29, 45)).equals(Buffer.from(v6.bytes))).toBe(true);
  });

  it('disarms with an empty frame: no requests, no addresses', () => {
    expect([...encodeArmFrame(new Uint8Array(0), [])]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
