import { describe, expect, it } from 'vitest';
import { netlinkFixture as fixture } from '../../helpers/fixtures.js';
import { DecodeError } from '../../../lib/errors.js';
import { NLMSG_DONE, NLMSG_ERROR } from '../../../lib/netlink/constants.js';
import { decodeAck, forEachAttribute, forEachMessage, MessageWriter, type NetlinkMessage } from '../../../lib/netlink/message.js';


function messages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  forEachMessage(buf, buf.length, (m) => out.push(m));
  return out;
}

describe('MessageWriter', () => {
  it('writes header, family header and attributes with 4-byte alignment', () => {
    const w = new MessageWriter(8); // small on purpose: growth must preserve content
    w.beginMessage(20, 0x0605, 0x01020304);
    const o = w.reserve(8);
    w.buffer[o] = 2;
    w.attrU8(11, 0x76);
    w.attrString(3, 'ab');
    w.attrU32(8, 0x200);
    w.endMessage();
    expect(w.buffer.subarray(0, w.length).toString('hex')).toBe(
      [
        '30000000', // nlmsg_len = 48
        '1400', // nlmsg_type = 20 (RTM_NEWADDR)
        '0506', // nlmsg_flags = 0x0605
        '04030201', // nlmsg_seq
        '00000000', // nlmsg_pid = 0 (kernel)
        '0200000000000000', // reserved family header, first byte 2
        '05000b0076000000', // nla_len 5, IFA_PROTO, value 0x76 + 3 pad
        '0700030061620000', // nla_len 7, IFA_LABEL "ab\0" + 1 pad
        '0800080000020000', // nla_len 8, IFA_FLAGS 0x200
      ].join(''),
    );
  });

  it('nests attributes', () => {
    const w = new MessageWriter();
    w.beginMessage(16, 1, 1);
    w.beginNest(18);
    w.attrString(1, 'veth');
    w.endNest();
    w.endMessage();
    expect(w.buffer.subarray(16, w.length).toString('hex')).toBe('10001200' + '09000100' + '76657468' + '00000000'); // nest len 16 type 18; kind len 9 "veth\0" + 3 pad
    expect(() => w.endNest()).toThrow(/without beginNest/);
  });
});

describe('forEachMessage', () => {
  it('splits a datagram into messages', () => {
    const [m] = messages(fixture('ack-ok'));
    expect(m!.type).toBe(NLMSG_ERROR);
    expect(m!.seq).toBe(1001);
  });

  it('rejects a length past the datagram', () => {
    const buf = Buffer.from(fixture('ack-ok'));
    buf.writeUInt32LE(buf.length + 4, 0);
    expect(() => messages(buf)).toThrow(DecodeError);
  });

  it('rejects a length shorter than the header', () => {
    const buf = Buffer.from(fixture('ack-ok'));
    buf.writeUInt32LE(8, 0);
    expect(() => messages(buf)).toThrow(/truncated/);
  });

  it('rejects trailing bytes that are not a header', () => {
    const buf = Buffer.concat([fixture('ack-ok'), Buffer.alloc(8)]);
    expect(() => messages(buf)).toThrow(/short/);
  });

  it('rejects an attribute overrunning its message', () => {
    const buf = Buffer.from([8, 0, 1, 0, 1, 2, 3, 4, 200, 0, 2, 0]);
    expect(() => forEachAttribute(buf, 0, buf.length, () => {})).toThrow(DecodeError);
  });
});

describe('decodeAck', () => {
  it('decodes a success ack', () => {
    const [m] = messages(fixture('ack-ok'));
    expect(decodeAck(m!)).toEqual({ errno: 0 });
  });

  it('decodes EEXIST with the kernel extended-ack text', () => {
    const [m] = messages(fixture('ack-eexist'));
    expect(decodeAck(m!)).toEqual({ errno: 17, message: 'ipv4: Address already assigned' });
  });

  it('decodes an error with an attribute offset', () => {
    // nlmsgerr: error -22, capped echo header, TLVs: MSG "bad", OFFS 24
    const buf = Buffer.from(
      [
        '34000000', '0200', '0003', '01000000', '00000000', // header: len 52, NLMSG_ERROR, CAPPED|ACK_TLVS
        'eaffffff', // error = -22 (EINVAL)
        '28000000', '1400', '0506', '01000000', '00000000', // echoed request header (len 40)
        '0800010062616400', // NLMSGERR_ATTR_MSG "bad\0"
        '0800020018000000', // NLMSGERR_ATTR_OFFS 24
      ].join(''),
      'hex',
    );
    const [m] = messages(buf);
    expect(decodeAck(m!)).toEqual({ errno: 22, message: 'bad', offset: 24 });
  });

  it('rejects a non-error message and a short one', () => {
    const done = Buffer.from('14000000' + '0300' + '0200' + '01000000' + '00000000' + '00000000', 'hex');
    const [m] = messages(done);
    expect(m!.type).toBe(NLMSG_DONE);
    expect(() => decodeAck(m!)).toThrow(/not NLMSG_ERROR/);
    const short = Buffer.from('14000000' + '0200' + '0000' + '01000000' + '00000000' + '00000000', 'hex');
    expect(() => decodeAck(messages(short)[0]!)).toThrow(/shorter than struct nlmsgerr/);
  });
});
