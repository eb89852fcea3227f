/**
 * The ARP/NDP socket filter, run in a small classic BPF interpreter written
 * here from Documentation/networking/filter.rst (the subset of opcodes the
 * filter uses, plus the out-of-bounds rule: a load past the frame's end
 * returns 0, i.e. drop), against the captured frames of
 * test/fixtures/frames and against frames it must drop. The kernel runs the
 * same program in test/kernel/announce.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BPF_ABS,
  BPF_B,
  BPF_H,
  BPF_JEQ,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
  NEIGHBOR_DISCOVERY_PROGRAM,
  decodeSockFilter,
  DROP_ALL_PROGRAM,
  dropAllFilter,
  encodeSockFilter,
  neighborDiscoveryFilter,
  type SockFilter,
} from '../../../lib/packets/bpf.js';
import { parseIp, parseMac } from '../../../lib/ip.js';
import { encodeArpProbe, encodeDadNeighborSolicitation, encodeUnsolicitedNeighborAdvertisement } from '../../../lib/packets/index.js';
import { capturedVectors, loadVector } from '../../fixtures/frames/frames.js';

/** Runs a classic BPF program over `frame`; returns the program's return value (0 = drop). */
function runBpf(program: SockFilter[], frame: Uint8Array): number {
  let a = 0;
  let pc = 0;
  // Classic BPF jumps only forward, so a program runs at most its length in steps.
  for (let steps = 0; steps <= program.length; steps++) {
    const insn = program[pc];
    if (!insn) throw new Error(`pc ${pc} outside the program`);
    const cls = insn.code & 0x07;
    if (cls === BPF_LD) {
      if ((insn.code & 0xe0) !== BPF_ABS) throw new Error(`unsupported load mode 0x${insn.code.toString(16)}`);
      const size = insn.code & 0x18;
      const width = size === BPF_W ? 4 : size === BPF_H ? 2 : size === BPF_B ? 1 : 0;
      if (width === 0) throw new Error(`unsupported load size 0x${insn.code.toString(16)}`);
      if (insn.k + width > frame.length) return 0; // out of bounds: the kernel ends the program with 0
      a = 0;
      for (let i = 0; i < width; i++) a = a * 256 + frame[insn.k + i]!;
      pc++;
    } else if (cls === BPF_JMP) {
      if ((insn.code & 0xf0) !== BPF_JEQ || (insn.code & 0x08) !== BPF_K) throw new Error(`unsupported jump 0x${insn.code.toString(16)}`);
      pc += 1 + (a === insn.k ? insn.jt : insn.jf);
    } else if (cls === BPF_RET) {
      return insn.k;
    } else throw new Error(`unsupported class ${cls}`);
  }
  throw new Error('program did not return');
}

const program = decodeSockFilter(neighborDiscoveryFilter());
const accepts = (frame: Uint8Array): boolean => runBpf(program, frame) > 0;

/** The specification, written independently of the program. */
function shouldAccept(frame: Uint8Array): boolean {
  if (frame.length < 14) return false;
  const ethertype = (frame[12]! << 8) | frame[13]!;
  if (ethertype === 0x0806) return true;
  if (ethertype !== 0x86dd || frame.length < 55) return false;
  return frame[20] === 58 && (frame[54] === 135 || frame[54] === 136);
}

const MAC = parseMac('02:00:00:00:00:0a')!;

/** An Ethernet frame of `ethertype` with `payload`. */
function ether(ethertype: number, payload: number[] | Uint8Array): Buffer {
  const f = Buffer.alloc(14 + payload.length);
  f.fill(0xff, 0, 6);
  Buffer.from(MAC).copy(f, 6);
  f.writeUInt16BE(ethertype, 12);
  Buffer.from(payload).copy(f, 14);
  return f;
}

/** An IPv6 packet with next header `nh` and, at offset 40 of the IPv6 header, `first` (the ICMPv6 type if nh = 58). */
function ipv6(nh: number, first: number, length = 64): Buffer {
  const p = new Uint8Array(length);
  p[0] = 0x60;
  p[4] = 0;
  p[5] = length - 40;
  p[6] = nh;
  p[7] = 255;
  p[40] = first;
  return ether(0x86dd, p);
}

describe('neighborDiscoveryFilter', () => {
  it('is instruction for instruction what libpcap compiles for the same expression', () => {
    // tcpdump 4.99.3 / libpcap 1.10.3:
    // tcpdump -dd -y EN10MB 'arp or (ip6 and ip6[6] == 58 and (ip6[40] == 135 or ip6[40] == 136))'
    const libpcap = [
      [0x28, 0, 0, 0x0000000c],
      [0x15, 6, 0, 0x00000806],
      [0x15, 0, 6, 0x000086dd],
      [0x30, 0, 0, 0x00000014],
      [0x15, 0, 4, 0x0000003a],
      [0x30, 0, 0, 0x00000036],
      [0x15, 1, 0, 0x00000087],
      [0x15, 0, 1, 0x00000088],
      [0x6, 0, 0, 0x00040000],
      [0x6, 0, 0, 0x00000000],
    ].map(([code, jt, jf, k]) => ({ code, jt, jf, k }));
    expect(program).toEqual(libpcap);
    expect([...NEIGHBOR_DISCOVERY_PROGRAM]).toEqual(libpcap);
  });

  it('is 8 bytes per instruction: u16 code, u8 jt, u8 jf, u32 k, little-endian', () => {
    const bytes = neighborDiscoveryFilter();
    expect(bytes.length).toBe(10 * 8);
    expect(bytes.subarray(8, 16).toString('hex')).toBe('1500060006080000'); // code 0x0015 (jeq #k), jt 6, jf 0, k 0x0806
    expect(neighborDiscoveryFilter()).not.toBe(bytes); // a fresh copy each call
  });

  it('accepts every captured ARP, NS and NA frame', () => {
    const frames = capturedVectors().flatMap((v) => v.frames.map((f, i) => ({ name: `${v.name}[${i}]`, f })));
    expect(frames.length).toBeGreaterThanOrEqual(16);
    for (const { name, f } of frames) expect({ name, accepted: accepts(f) }).toEqual({ name, accepted: true });
    // The hand-made seeds too: padded ARP, NS/NA with options.
    for (const f of [...loadVector('seeds/arp-padded').frames, ...loadVector('seeds/ndp-options').frames]) expect(accepts(f)).toBe(true);
  });

  it("accepts vipa's own frames", () => {
    const v4 = parseIp('198.51.100.7')!.bytes;
    const v6 = parseIp('2001:db8::7')!.bytes;
    expect(accepts(encodeArpProbe({ mac: MAC, address: v4 }))).toBe(true);
    expect(accepts(encodeUnsolicitedNeighborAdvertisement({ mac: MAC, address: v6, router: false }))).toBe(true);
    expect(accepts(encodeDadNeighborSolicitation({ mac: MAC, address: v6 }))).toBe(true);
  });

  it('drops everything else', () => {
    const drop: [string, Buffer][] = [
      ['IPv4 (UDP)', ether(0x0800, [0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2, 0, 53, 0, 53, 0, 8, 0, 0])],
      ['ICMPv6 echo request', ipv6(58, 128)],
      ['ICMPv6 router solicitation', ipv6(58, 133)],
      ['ICMPv6 router advertisement', ipv6(58, 134)],
      ['ICMPv6 redirect', ipv6(58, 137)],
      ['MLDv2 report behind a hop-by-hop header', ipv6(0, 58)],
      ['NS behind a hop-by-hop header', ipv6(0, 135)],
      ['IPv6 UDP whose byte 40 is 135', ipv6(17, 135)],
      ['802.1Q tagged ARP', ether(0x8100, [0, 1, 0x08, 0x06, ...new Array(28).fill(0)])],
      ['LLDP', ether(0x88cc, new Array(32).fill(0))],
      ['RARP', ether(0x8035, new Array(28).fill(0))],
      ['IEEE 802.3 length field', ether(0x0026, new Array(38).fill(0))],
      ['13 bytes', Buffer.alloc(13)],
      ['IPv6 header cut before the next header', ipv6(58, 135).subarray(0, 20)],
      ['IPv6 cut before the ICMPv6 type', ipv6(58, 135).subarray(0, 54)],
    ];
    for (const [name, f] of drop) expect({ name, accepted: accepts(f) }).toEqual({ name, accepted: false });
    // ...while the same frames with the right fields pass.
    expect(accepts(ipv6(58, 135))).toBe(true);
    expect(accepts(ipv6(58, 136))).toBe(true);
    expect(accepts(ipv6(58, 135).subarray(0, 55))).toBe(true);
  });

  it('agrees with the specification on random and mutated frames', () => {
    const seeds = capturedVectors().flatMap((v) => v.frames);
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(100), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(100))
      .map(([seed, edits, cut]) => {
        const f = Buffer.from(seed);
        for (const [at, value] of edits) if (at < f.length) f[at] = value;
        // Cut some short, across the fields the filter reads.
        return f.subarray(0, Math.min(f.length, cut < 10 ? cut * 6 : f.length));
      });
    const fieldBiased = fc
      .tuple(fc.constantFrom(0x0806, 0x86dd, 0x0800, 0x8100), fc.constantFrom(58, 0, 17, 43), fc.constantFrom(135, 136, 128, 134, 0), fc.nat(80))
      .map(([et, nh, type, len]) => {
        const f = ipv6(nh, type, 80);
        f.writeUInt16BE(et, 12);
        return f.subarray(0, len);
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutated, fieldBiased), (f) => accepts(f) === shouldAccept(f)),
      { numRuns: 20_000, seed: 0x0bbf },
    );
  });
});

describe('encodeSockFilter', () => {
  const ret = (k: number): SockFilter => ({ code: BPF_RET | BPF_K, jt: 0, jf: 0, k });

  it('round-trips through decodeSockFilter', () => {
    const p: SockFilter[] = [{ code: BPF_LD | BPF_W | BPF_ABS, jt: 0, jf: 0, k: 0xfffffffe }, { code: BPF_JMP | BPF_JEQ | BPF_K, jt: 1, jf: 0, k: 7 }, ret(0), ret(1)];
    expect(decodeSockFilter(encodeSockFilter(p))).toEqual(p);
  });

  it('refuses what the kernel would refuse', () => {
    expect(() => encodeSockFilter([])).toThrow(RangeError);
    expect(() => encodeSockFilter(new Array(4097).fill(ret(0)))).toThrow(/1\.\.4096/);
    expect(() => encodeSockFilter([{ code: 0x10000, jt: 0, jf: 0, k: 0 }, ret(0)])).toThrow(/code must be a u16/);
    expect(() => encodeSockFilter([{ code: BPF_JMP | BPF_JEQ, jt: 256, jf: 0, k: 0 }, ret(0)])).toThrow(/jt must be a u8/);
    expect(() => encodeSockFilter([{ code: BPF_JMP | BPF_JEQ, jt: 0, jf: -1, k: 0 }, ret(0)])).toThrow(/jf must be a u8/);
    expect(() => encodeSockFilter([{ code: BPF_RET, jt: 0, jf: 0, k: 2 ** 32 }])).toThrow(/k must be a u32/);
    expect(() => encodeSockFilter([{ code: BPF_JMP | BPF_JEQ, jt: 1, jf: 0, k: 0 }, ret(0)])).toThrow(/jump leaves the program/);
    expect(() => encodeSockFilter([{ code: BPF_LD | BPF_H | BPF_ABS, jt: 0, jf: 0, k: 12 }])).toThrow(/last instruction must be a return/);
    expect(() => decodeSockFilter(new Uint8Array(7))).toThrow(/multiple of 8/);
  });
});

describe('dropAllFilter (a paused receive socket)', () => {
  it('is one `ret #0` and drops every frame the ND filter accepts', () => {
    expect(decodeSockFilter(dropAllFilter())).toEqual([{ code: BPF_RET | BPF_K, jt: 0, jf: 0, k: 0 }]);
    expect(decodeSockFilter(dropAllFilter())).toEqual(DROP_ALL_PROGRAM);
    const probe = encodeArpProbe({ mac: parseMac('02:00:00:00:01:0a')!, address: parseIp('198.51.100.7')!.bytes });
    expect(runBpf(decodeSockFilter(neighborDiscoveryFilter()), probe)).toBeGreaterThan(0);
    expect(runBpf(decodeSockFilter(dropAllFilter()), probe)).toBe(0);
    const copy = dropAllFilter();
    copy[0] = 0xff; // callers get their own copy
    expect(dropAllFilter()[0]).not.toBe(0xff);
  });
});
