import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import {
  bindLink,
  decodeAddress,
  encodeAddressDump,
  encodeAddressRequest,
  validateAddressSpec,
  VIPA_PROTO,
  type AddressSpec,
} from '../../../lib/netlink/address.js';
import { forEachMessage, MessageWriter, type NetlinkMessage } from '../../../lib/netlink/message.js';
import { netlinkFixture as fixture } from '../../helpers/fixtures.js';

function first(buf: Buffer): NetlinkMessage {
  let m: NetlinkMessage | undefined;
  forEachMessage(buf, buf.length, (x) => (m ??= x));
  return m!;
}

function encode(verb: 'add' | 'replace' | 'delete', spec: AddressSpec, seq = 1): string {
  const w = new MessageWriter();
  encodeAddressRequest(w, verb, validateAddressSpec(spec), seq);
  return w.buffer.subarray(0, w.length).toString('hex');
}

describe('encodeAddressRequest', () => {
  it('IPv4 add with label, broadcast, lifetimes and owner tag', () => {
    const hex = encode('add', { link: 3, address: '198.51.100.7/24', label: 'vipa0:v', broadcast: true, validLifetime: 300, preferredLifetime: 200, proto: VIPA_PROTO }, 1001);
    expect(hex).toBe(
      [
        '60000000', // nlmsg_len 96
        '1400', // RTM_NEWADDR
        '0506', // NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE
        'e9030000', // seq 1001
        '00000000', // pid 0
        '02', '18', '00', '00', // ifaddrmsg: AF_INET, /24, flags 0, scope universe
        '03000000', // ifa_index 3
        '08000200c6336407', // IFA_LOCAL 198.51.100.7
        '08000100c6336407', // IFA_ADDRESS 198.51.100.7
        '0800080000000000', // IFA_FLAGS 0 (always sent as u32)
        '08000400c63364ff', // IFA_BROADCAST 198.51.100.255 (derived)
        '0c00030076697061303a7600', // IFA_LABEL "vipa0:v\0"
        '14000600c80000002c0100000000000000000000', // IFA_CACHEINFO preferred 200, valid 300
        '05000b0076000000', // IFA_PROTO 0x76 ('v')
      ].join(''),
    );
  });

  it('IPv6 replace with nodad and noprefixroute', () => {
    expect(encode('replace', { link: 3, address: '2001:db8::7', prefixLength: 64, nodad: true, noprefixroute: true }, 2)).toBe(
      [
        '48000000', // nlmsg_len 72
        '1400', // RTM_NEWADDR
        '0505', // NLM_F_REQUEST|NLM_F_ACK|NLM_F_REPLACE|NLM_F_CREATE
        '02000000', '00000000',
        '0a', '40', '02', '00', '03000000', // AF_INET6, /64, legacy flags NODAD (low byte), scope 0, index 3
        '1400020020010db8000000000000000000000007', // IFA_LOCAL
        '1400010020010db8000000000000000000000007', // IFA_ADDRESS
        '0800080002020000', // IFA_FLAGS NODAD|NOPREFIXROUTE = 0x202
      ].join(''),
    );
  });

  it('delete carries only the address, prefix and interface', () => {
    expect(encode('delete', { link: 5, address: '203.0.113.9/32', proto: 7 }, 3)).toBe(
      ['28000000', '1500', '0500', '03000000', '00000000', '02200000', '05000000', '08000200cb007109', '08000100cb007109'].join(''),
    );
  });

  it('point-to-point peer goes in IFA_ADDRESS', () => {
    const hex = encode('add', { link: 1, address: '198.51.100.1/32', peer: '198.51.100.2' });
    expect(hex).toContain('08000200c6336401'); // IFA_LOCAL
    expect(hex).toContain('08000100c6336402'); // IFA_ADDRESS = peer
  });

  it('dump request', () => {
    const w = new MessageWriter();
    encodeAddressDump(w, 6, 9);
    expect(w.buffer.subarray(0, w.length).toString('hex')).toBe('18000000' + '1600' + '0103' + '09000000' + '00000000' + '0a000000' + '00000000');
  });
});

describe('decodeAddress (kernel bytes)', () => {
  it('IPv4 with label, broadcast, lifetimes and proto', () => {
    const a = decodeAddress(first(fixture('dump-addr-v4')))!;
    expect(a).toMatchObject({
      family: 4, linkIndex: 3, address: '198.51.100.7', prefixLength: 24, broadcast: '198.51.100.255', label: 'vipa0:v',
      validLifetime: 300, preferredLifetime: 200, proto: VIPA_PROTO, scope: 0,
    });
    expect(a.peer).toBeUndefined();
  });

  it('IPv6 nodad, forever', () => {
    const dump = fixture('dump-addr-v6');
    const all: ReturnType<typeof decodeAddress>[] = [];
    forEachMessage(dump, dump.length, (m) => {
      if (m.type === 20) all.push(decodeAddress(m));
    });
    expect(all.map((x) => x!.address)).toContain('fe80::ff:fe00:1'); // the kernel's own link-local, EUI-64 of 02:00:00:00:00:01
    const a = all.find((x) => x!.address === '2001:db8::7')!;
    expect(a).toMatchObject({ family: 6, address: '2001:db8::7', prefixLength: 64, proto: VIPA_PROTO, validLifetime: Infinity });
    expect(a.flags.nodad).toBe(true);
    expect(a.flags.permanent).toBe(true);
  });

  it('rejects malformed messages', () => {
    const good = fixture('dump-addr-v4');
    const short = Buffer.from(good.subarray(0, 20));
    short.writeUInt32LE(20, 0);
    expect(() => decodeAddress(first(short))).toThrow(DecodeError);
    const badLen = Buffer.from(good);
    badLen.writeUInt16LE(7, 24); // IFA_LOCAL length 7: 3 address bytes
    expect(() => decodeAddress(first(badLen))).toThrow(DecodeError);
  });

  it('ignores families other than IPv4/IPv6', () => {
    const other = Buffer.from(fixture('dump-addr-v4'));
    other[16] = 17; // AF_PACKET
    expect(decodeAddress(first(other))).toBeUndefined();
  });
});

describe('validateAddressSpec: bad input names the bad value', () => {
  const base = { link: 'eth0', address: '198.51.100.7/24' };
  const cases: [string, unknown, ErrorConstructor, RegExp][] = [
    ['not an object', 'eth0', TypeError, /address spec must be an object, got "eth0"/],
    ['unknown key', { ...base, prefix: 24 }, TypeError, /unknown address option "prefix"/],
    ['address not a string', { ...base, address: 7 }, TypeError, /address must be a string, got 7/],
    ['malformed address', { ...base, address: '198.51.100.300' }, RangeError, /malformed IP address "198.51.100.300"/],
    ['two slashes', { ...base, address: '198.51.100.7/24/1' }, RangeError, /malformed IP address/],
    ['prefix text', { ...base, address: '198.51.100.7/x' }, RangeError, /malformed prefix length in "198.51.100.7\/x"/],
    ['prefix out of range v4', { ...base, address: '198.51.100.7/33' }, RangeError, /prefix length 33 out of range 0..32/],
    ['prefix out of range v6', { link: 1, address: '2001:db8::1', prefixLength: 129 }, RangeError, /prefix length 129 out of range 0..128/],
    ['prefix disagrees', { ...base, prefixLength: 25 }, RangeError, /prefix length 25 disagrees with "198.51.100.7\/24"/],
    ['prefix not integer', { link: 1, address: '198.51.100.7', prefixLength: 24.5 }, TypeError, /prefixLength must be an integer, got 24.5/],
    ['peer family mismatch', { ...base, peer: '2001:db8::1' }, RangeError, /peer 2001:db8::1 is IPv6 but address 198.51.100.7 is IPv4/],
    ['malformed peer', { ...base, peer: 'x' }, RangeError, /malformed peer address "x"/],
    ['broadcast on IPv6', { link: 1, address: '2001:db8::1', broadcast: true }, RangeError, /broadcast is IPv4 only/],
    ['broadcast family', { ...base, broadcast: '2001:db8::ff' }, RangeError, /malformed broadcast|is IPv6 but must be IPv4/],
    ['nodad on IPv4', { ...base, nodad: true }, RangeError, /nodad is IPv6 only, but address 198.51.100.7 is IPv4/],
    ['nodad not boolean', { link: 1, address: '2001:db8::1', nodad: 'yes' }, TypeError, /nodad must be a boolean, got "yes"/],
    ['label on IPv6', { link: 1, address: '2001:db8::1', label: 'eth0:1' }, RangeError, /label is IPv4 only/],
    ['label too long', { ...base, label: 'eth0:0123456789ab' }, RangeError, /label "eth0:0123456789ab" must be 1..15 bytes/],
    ['negative lifetime', { ...base, validLifetime: -1 }, RangeError, /validLifetime must be a whole number of seconds .* got -1/],
    ['zero lifetime', { ...base, validLifetime: 0 }, RangeError, /got 0/],
    ['lifetime not a number', { ...base, validLifetime: '30' }, TypeError, /validLifetime must be a number of seconds, got "30"/],
    ['inverted lifetimes', { ...base, validLifetime: 10, preferredLifetime: 20 }, RangeError, /preferredLifetime 20 exceeds validLifetime 10/],
    ['preferred without valid', { ...base, preferredLifetime: 20 }, RangeError, /preferredLifetime 20 needs a finite validLifetime/],
    ['proto out of range', { ...base, proto: 256 }, RangeError, /proto must be an integer 0..255, got 256/],
    ['unknown scope', { ...base, scope: 'planet' }, RangeError, /unknown scope "planet"/],
    ['link missing', { address: '198.51.100.7' }, TypeError, /link must be an interface name or index, got undefined/],
    ['link index zero', { ...base, link: 0 }, RangeError, /interface index must be a positive integer, got 0/],
    ['link name too long', { ...base, link: 'a-very-long-name0' }, RangeError, /malformed interface name "a-very-long-name0"/],
    ['link name with slash', { ...base, link: 'eth/0' }, RangeError, /malformed interface name "eth\/0"/],
  ];
  it.each(cases)('%s', (_name, spec, Ctor, message) => {
    let caught: unknown;
    try {
      validateAddressSpec(spec as AddressSpec);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Ctor);
    expect((caught as Error).constructor).toBe(Ctor);
    expect((caught as Error).message).toMatch(message);
  });

  it('label must start with the interface name once resolved', () => {
    const r = validateAddressSpec({ ...base, label: 'eth1:x' });
    expect(() => bindLink(r, { index: 2, name: 'eth0' })).toThrow(/label "eth1:x" must start with the interface name "eth0"/);
    expect(bindLink(validateAddressSpec({ ...base, label: 'eth0:x' }), { index: 2, name: 'eth0' }).ifindex).toBe(2);
  });

  it('accepts Infinity as forever and defaults prefixes', () => {
    const forever = validateAddressSpec({ link: 1, address: '2001:db8::1', validLifetime: Infinity });
    expect(forever.prefixLength).toBe(128);
    expect(forever.validLifetime).toBeUndefined();
    expect(validateAddressSpec({ link: 1, address: '198.51.100.1' }).prefixLength).toBe(32);
  });
});
