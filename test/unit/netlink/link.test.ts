import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import { decodeLink, encodeLinkDump, encodeLinkGet } from '../../../lib/netlink/link.js';
import { decodeAck, forEachMessage, MessageWriter, type NetlinkMessage } from '../../../lib/netlink/message.js';
import { netlinkFixture as fixture } from '../../helpers/fixtures.js';

function all(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  forEachMessage(buf, buf.length, (m) => out.push(m));
  return out;
}

describe('link codecs', () => {
  it('encodes a get by name', () => {
    const w = new MessageWriter();
    encodeLinkGet(w, 'eth0', 7);
    expect(w.buffer.subarray(0, w.length).toString('hex')).toBe(
      [
        '34000000', '1200', '0500', '07000000', '00000000', // len 52, RTM_GETLINK, REQUEST|ACK, seq 7
        '00000000', '00000000', '00000000', '00000000', // ifinfomsg: AF_UNSPEC, index 0 (by name)
        '08001d0008000000', // IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS
        '0900030065746830' + '00000000', // IFLA_IFNAME "eth0\0"
      ].join(''),
    );
  });

  it('encodes a get by index and a dump', () => {
    const w = new MessageWriter();
    encodeLinkGet(w, 9, 1);
    expect(w.buffer.readInt32LE(20)).toBe(9);
    w.reset();
    encodeLinkDump(w, 2);
    expect(w.buffer.readUInt16LE(6)).toBe(0x301); // REQUEST|DUMP
  });

  it('decodes a veth from the kernel', () => {
    const [m] = all(fixture('link-get-vipa0'));
    const link = decodeLink(m!);
    expect(link).toMatchObject({ name: 'vipa0', mac: '02:00:00:00:00:01', mtu: 1400, kind: 'veth', type: 1 });
    expect(link.flags.up).toBe(true);
    expect(link.flags.noarp).toBe(false);
    expect(link.forwarding).toEqual({ ipv4: false, ipv6: false });
    expect(link.operstate).toMatch(/up|lowerlayerdown|down/);
  });

  it('an unknown name is ENODEV from the kernel', () => {
    const [m] = all(fixture('link-get-missing'));
    expect(decodeAck(m!).errno).toBe(19);
  });

  it('rejects a short ifinfomsg', () => {
    const buf = Buffer.from('18000000' + '1000' + '0000' + '01000000' + '00000000' + '0000000000000000', 'hex');
    expect(() => decodeLink(all(buf)[0]!)).toThrow(DecodeError);
  });
});
