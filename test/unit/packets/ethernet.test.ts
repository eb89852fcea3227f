import { describe, it, expect } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import { formatMac, parseMac } from '../../../lib/ip.js';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  decodeEthernetHeader,
  writeEthernetHeader,
} from '../../../lib/packets/index.js';
import { bytes, frame } from '../../fixtures/frames/frames.js';

describe('Ethernet II header', () => {
  it('has the RFC 894 / RFC 826 / RFC 2464 EtherTypes', () => {
    expect([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6]).toEqual([0x0800, 0x0806, 0x86dd]);
  });

  const A = '02:00:00:00:00:0a';
  it.each([
    { vector: 'keepalived-master', index: 0, destination: 'ff:ff:ff:ff:ff:ff', source: A, ethertype: ETHERTYPE_ARP },
    { vector: 'keepalived-master', index: 1, destination: '33:33:00:00:00:01', source: A, ethertype: ETHERTYPE_IPV6 },
    { vector: 'kernel-arp-resolution', index: 1, destination: A, source: '02:00:00:00:00:0b', ethertype: ETHERTYPE_ARP },
    { vector: 'kernel-dad-solicitation', index: 0, destination: '33:33:ff:00:00:30', source: A, ethertype: ETHERTYPE_IPV6 },
  ])('decodes $vector #$index', ({ vector, index, destination, source, ethertype }) => {
    const header = decodeEthernetHeader(frame(vector, index));
    expect({ ...header, destination: formatMac(header.destination), source: formatMac(header.source) }).toEqual({
      destination,
      source,
      ethertype,
    });
  });

  it('returns copies, not views of the frame', () => {
    const f = Buffer.from(frame('keepalived-master'));
    const header = decodeEthernetHeader(f);
    f.fill(0);
    expect(formatMac(header.source)).toBe('02:00:00:00:00:0a');
  });

  it('writes a header at an offset', () => {
    const out = Buffer.alloc(20, 0xee);
    const end = writeEthernetHeader(out, 3, parseMac('33:33:00:00:00:01')!, parseMac('02:00:00:00:00:0a')!, ETHERTYPE_IPV6);
    expect(end).toBe(17);
    expect(out).toEqual(bytes('eeeeee', '333300000001', '02000000000a', '86dd', 'eeeeee'));
  });

  it('rejects short frames and 802.3 length fields', () => {
    const short = (): unknown => decodeEthernetHeader(new Uint8Array(13));
    expect(short).toThrow(DecodeError);
    expect(short).toThrow(expect.objectContaining({ codec: 'ethernet', reason: 'short', offset: 13 }));
    const llc = bytes('ffffffffffff 02000000000a 0026', '4242030000');
    expect(() => decodeEthernetHeader(llc)).toThrow(expect.objectContaining({ codec: 'ethernet', reason: 'invalid', offset: 12 }));
  });
});
