import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, ipv4Broadcast, parseIp, parseMac } from '../../lib/ip.js';

describe('parseIp / formatIp', () => {
  const valid: [string, number[] | string, string][] = [
    ['198.51.100.7', [198, 51, 100, 7], '198.51.100.7'],
    ['0.0.0.0', [0, 0, 0, 0], '0.0.0.0'],
    ['2001:db8::7', '20010db8000000000000000000000007', '2001:db8::7'],
    ['2001:DB8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // RFC 5952 §4.2.3: leftmost longest run
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // §4.2.2: one zero group stays
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['fe80::', 'fe800000000000000000000000000000', 'fe80::'],
    ['::ffff:198.51.100.1', '00000000000000000000ffffc6336401', '::ffff:c633:6401'],
    ['2001:db8:1:2:3:4:5:6', '20010db8000100020003000400050006', '2001:db8:1:2:3:4:5:6'],
  ];
  it.each(valid)('%s', (text, bytes, canonical) => {
    const p = parseIp(text)!;
    const expected = typeof bytes === 'string' ? Buffer.from(bytes, 'hex') : Uint8Array.from(bytes);
    expect(Buffer.from(p.bytes)).toEqual(Buffer.from(expected));
    expect(p.family).toBe(expected.length === 4 ? 4 : 6);
    expect(formatIp(p.bytes)).toBe(canonical);
  });

  it.each([
    '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', '1.2.3.4/24', ' 1.2.3.4', 'a.b.c.d',
    '2001:db8::1::1', '2001:db8:1:2:3:4:5:6:7', '2001:db8:1:2:3:4:5', 'g::1', '12345::1', '1:2:3:4:5:6:7::8:9', ':1', '::ffff:1.2.3',
  ])('rejects %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  it('formats only 4 or 16 bytes', () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(RangeError);
  });

  it('derives IPv4 broadcast', () => {
    expect(formatIp(ipv4Broadcast(parseIp('198.51.100.7')!.bytes, 24))).toBe('198.51.100.255');
    expect(formatIp(ipv4Broadcast(parseIp('203.0.113.9')!.bytes, 30))).toBe('203.0.113.11');
    expect(formatIp(ipv4Broadcast(parseIp('203.0.113.9')!.bytes, 32))).toBe('203.0.113.9');
  });

  it('parses and formats MAC addresses', () => {
    expect(formatMac(parseMac('02:00:5E:00:00:01')!)).toBe('02:00:5e:00:00:01');
    expect(formatMac(parseMac('02-00-5e-00-00-01')!)).toBe('02:00:5e:00:00:01');
    for (const bad of ['02:00:5e:00:00', '02:00:5e:00:00:1', 'zz:00:5e:00:00:01', '']) expect(parseMac(bad)).toBeUndefined();
  });
});
