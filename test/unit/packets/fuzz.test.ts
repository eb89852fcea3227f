/**
 * Fuzzing every frame decoder with a seeded PRNG: random frames and
 * mutations of real ones (the captures and seeds in test/fixtures/frames).
 * Each call must either return a value or throw DecodeError with a known
 * reason and an offset inside the frame; anything else (TypeError,
 * RangeError, ...) fails. Beyond "does not crash", every outcome is compared
 * with a small independent reference decoder below (accept with the same
 * fields, or reject for the same reason), which catches decoders that accept
 * what they should refuse (e.g. an option overrunning the payload read as
 * zeros); accepted ARP frames must re-encode to their own first 42 bytes.
 *
 * VIPA_FUZZ_SEED and VIPA_FUZZ_ITERATIONS override the defaults, e.g. to
 * replay a failure or to run longer.
 */
import { describe, it, expect } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import { parseIp } from '../../../lib/ip.js';
import {
  decodeArp,
  decodeEthernetHeader,
  decodeNdp,
  encodeArp,
  encodeArpProbe,
  encodeDadNeighborSolicitation,
  encodeGratuitousArp,
  encodeNdp,
  encodeUnsolicitedNeighborAdvertisement,
  icmpv6Checksum,
  type ArpPacket,
  type NdpPacket,
} from '../../../lib/packets/index.js';
import { seedCorpus } from '../../fixtures/frames/frames.js';

const SEED = Number(process.env.VIPA_FUZZ_SEED ?? 0x5eed_f00d) >>> 0;
const ITERATIONS = Number(process.env.VIPA_FUZZ_ITERATIONS ?? 1_000_000);

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting PRNG): fast, 128-bit state, good enough for fuzzing. */
function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

const REASONS: Record<string, readonly string[]> = {
  arp: ['short', 'truncated', 'invalid'],
  ndp: ['short', 'truncated', 'invalid', 'bad-checksum'],
  ethernet: ['short', 'invalid'],
};

const INTERESTING = [0x00, 0x01, 0x02, 0x06, 0x08, 0x0e, 0x3a, 0x7f, 0x80, 0x86, 0x87, 0x88, 0xdd, 0xfe, 0xff];


/** What the reference expects of a decoder: accept with these fields (`key`), or reject for `reason`. */
interface Outcome {
  key?: string;
  reason?: string;
}

/** Field text for outcome keys: bytes as hex, numbers in decimal, absent as '-'. */
function text(v: Uint8Array | number | string | undefined): string {
  if (v === undefined) return '-';
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex');
  return String(v);
}

/**
 * Reference checks, written independently of lib/packets from the RFC
 * text (DataView reads, a naive checksum over a concatenated pseudo-header),
 * in the order the decoders document so that reasons are comparable.
 */
function referenceEthernet(f: Uint8Array): Outcome {
  if (f.length < 14) return { reason: 'short' };
  const type = new DataView(f.buffer, f.byteOffset, f.length).getUint16(12);
  return type < 0x600 ? { reason: 'invalid' } : { key: String(type) };
}

function referenceArp(f: Uint8Array): Outcome {
  if (f.length < 22) return { reason: 'short' };
  const dv = new DataView(f.buffer, f.byteOffset, f.length);
  if (dv.getUint16(12) !== 0x0806 || dv.getUint16(14) !== 1 || dv.getUint16(16) !== 0x0800) return { reason: 'invalid' };
  if (f[18] !== 6 || f[19] !== 4) return { reason: 'invalid' };
  const op = dv.getUint16(20);
  if (op !== 1 && op !== 2) return { reason: 'invalid' };
  if (f.length < 42) return { reason: 'truncated' };
  const at = (from: number, to: number): Uint8Array => f.subarray(from, to);
  return { key: [op === 1 ? 'request' : 'reply', at(0, 6), at(6, 12), at(22, 28), at(28, 32), at(32, 38), at(38, 42)].map(text).join('|') };
}

/** Naive RFC 1071 checksum over consecutive segments (all but the last of even length). */
function naiveChecksum(...segments: ArrayLike<number>[]): number {
  let sum = 0;
  for (const data of segments) {
    for (let i = 0; i < data.length; i += 2) {
      sum += data[i]! * 256 + (i + 1 < data.length ? data[i + 1]! : 0);
      if (sum > 0xffff) sum -= 0xffff; // end-around carry, one word at a time
    }
  }
  return 0xffff - sum;
}

function referenceNdp(f: Uint8Array): Outcome {
  if (f.length < 14) return { reason: 'short' };
  const dv = new DataView(f.buffer, f.byteOffset, f.length);
  if (dv.getUint16(12) !== 0x86dd) return { reason: 'invalid' };
  if (f.length < 54) return { reason: 'short' };
  if (f[14]! >> 4 !== 6) return { reason: 'invalid' };
  const payloadLength = dv.getUint16(18);
  if (54 + payloadLength > f.length) return { reason: 'truncated' };
  if (f[20] !== 58 || f[21] !== 255) return { reason: 'invalid' };
  if (payloadLength === 0) return { reason: 'short' };
  if (f[54] !== 135 && f[54] !== 136) return { reason: 'invalid' };
  if (payloadLength < 24) return { reason: 'short' };
  if (f[55] !== 0) return { reason: 'invalid' };
  const pseudoTail = [0, 0, payloadLength >> 8, payloadLength & 0xff, 0, 0, 0, 58]; // RFC 8200 §8.1
  if (naiveChecksum(f.subarray(22, 54), pseudoTail, f.subarray(54, 54 + payloadLength)) !== 0) return { reason: 'bad-checksum' };
  if (f[62] === 0xff) return { reason: 'invalid' };
  const options = new Map<number, Uint8Array>();
  const end = 54 + payloadLength;
  let pos = 78;
  while (pos < end) {
    if (pos + 2 > end) return { reason: 'truncated' };
    const len = f[pos + 1]! * 8;
    if (len === 0) return { reason: 'invalid' };
    if (pos + len > end) return { reason: 'truncated' };
    if ((f[pos] === 1 || f[pos] === 2) && len !== 8) return { reason: 'invalid' };
    if (!options.has(f[pos]!)) options.set(f[pos]!, f.subarray(pos + 2, pos + len));
    pos += len;
  }
  const ns = f[54] === 135;
  const unspecifiedSource = f.subarray(22, 38).every((b) => b === 0);
  if (ns && unspecifiedSource) {
    const d = f.subarray(38, 54);
    const solicitedNode = d[0] === 0xff && d[1] === 2 && d.subarray(2, 11).every((b) => b === 0) && d[11] === 1 && d[12] === 0xff;
    if (!solicitedNode || options.has(1)) return { reason: 'invalid' };
  }
  const flags = ns ? 0 : f[58]!;
  if (!ns && flags & 0x40 && f[38] === 0xff) return { reason: 'invalid' };
  const key = [
    ns ? 'ns' : 'na', f.subarray(0, 6), f.subarray(6, 12), ((f[14]! & 15) << 4) | (f[15]! >> 4), dv.getUint32(14) & 0xfffff,
    f.subarray(22, 38), f.subarray(38, 54), 255, f.subarray(62, 78), `${(flags >> 7) & 1}${(flags >> 6) & 1}${(flags >> 5) & 1}`,
    options.get(1), options.get(2), options.get(14),
  ];
  return { key: key.map(text).join('|') };
}

describe('decoder fuzzing', () => {
  it(`survives ${ITERATIONS.toLocaleString('en')} random and mutated frames (seed 0x${SEED.toString(16)})`, { timeout: 120_000 }, () => {
    const rand = sfc32(SEED);
    const below = (n: number): number => rand() % n;
    const mac = Uint8Array.from([0x02, 0, 0, 0, 0, 0x0a]);
    const corpus: Uint8Array[] = [
      ...seedCorpus(),
      encodeGratuitousArp({ mac, address: parseIp('198.51.100.7')!.bytes, operation: 'request' }),
      encodeGratuitousArp({ mac, address: parseIp('198.51.100.7')!.bytes, operation: 'reply' }),
      encodeArpProbe({ mac, address: parseIp('198.51.100.7')!.bytes }),
      encodeUnsolicitedNeighborAdvertisement({ mac, address: parseIp('2001:db8::7')!.bytes, router: true }),
      encodeDadNeighborSolicitation({ mac, address: parseIp('2001:db8::7')!.bytes, nonce: Uint8Array.of(1, 2, 3, 4, 5, 6) }),
    ];
    expect(corpus.length).toBeGreaterThanOrEqual(20);

    /** Makes an IPv6 frame's Payload Length and checksum consistent again, so mutations reach the option parser. */
    const repairIpv6 = (f: Uint8Array, fixLength: boolean): void => {
      if (f.length < 58 || f[12] !== 0x86 || f[13] !== 0xdd) return;
      if (fixLength) {
        const length = Math.min(f.length - 54, 0xffff);
        f[18] = length >>> 8;
        f[19] = length & 0xff;
      }
      const length = Math.min((f[18]! << 8) | f[19]!, f.length - 54);
      if (length < 4) return;
      f[56] = 0;
      f[57] = 0;
      const checksum = icmpv6Checksum(f.subarray(22, 38), f.subarray(38, 54), f, 54, length);
      f[56] = checksum >>> 8;
      f[57] = checksum & 0xff;
    };

    const randomFrame = (): Uint8Array => {
      const f = new Uint8Array(below(130));
      for (let i = 0; i < f.length; i++) f[i] = rand() & 0xff;
      // Half of them get plausible headers so the decoders get past the first checks.
      if (f.length >= 22 && below(2) === 0) {
        if (below(2) === 0) {
          f.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 1 + below(2)], 12);
        } else {
          f.set([0x86, 0xdd, 0x60], 12);
          if (f.length >= 55) {
            f[20] = 58;
            f[21] = 255;
            f[54] = 135 + below(2);
            f[55] = 0;
            repairIpv6(f, true);
          }
        }
      }
      return f;
    };

    const mutate = (seed: Uint8Array): Uint8Array => {
      let f: Uint8Array = Uint8Array.from(seed);
      const rounds = 1 + below(4);
      for (let r = 0; r < rounds; r++) {
        const n = f.length;
        switch (below(10)) {
          case 0: // bit flip
            if (n) f[below(n)]! ^= 1 << below(8);
            break;
          case 1: // byte set, random or interesting
            if (n) f[below(n)] = below(2) ? rand() & 0xff : INTERESTING[below(INTERESTING.length)]!;
            break;
          case 2: // truncation
            f = f.subarray(0, below(n + 1));
            break;
          case 3: {
            // extension with random bytes or zero padding to the Ethernet minimum
            const extra = below(2) ? new Uint8Array(Math.max(0, 60 - n)) : Uint8Array.from({ length: 1 + below(40) }, () => rand() & 0xff);
            const g = new Uint8Array(n + extra.length);
            g.set(f);
            g.set(extra, n);
            f = g;
            break;
          }
          case 4: {
            // field swap: two equal-length ranges trade places
            if (n < 2) break;
            const len = 1 + below(Math.min(16, n >> 1));
            const a = below(n - len + 1);
            const b = below(n - len + 1);
            const tmp = f.slice(a, a + len);
            f.copyWithin(a, b, b + len);
            f.set(tmp, b);
            break;
          }
          case 5: {
            // 16-bit length and type fields set to edge values
            const at = [12, 14, 16, 18, 20, 54, 56, 78, 86][below(9)]!;
            const v = [0, 1, 8, 24, 25, 32, 0x0600, 0x0806, 0x86dd, 0xffff][below(10)]!;
            if (at + 1 < n) {
              f[at] = v >>> 8;
              f[at + 1] = v & 0xff;
            }
            break;
          }
          case 6: {
            // option-length byte: 0, small, or large
            if (n > 79) {
              const at = 79 + 8 * below(Math.max(1, (n - 79) >> 3));
              if (at < n) f[at] = [0, 1, 2, 3, 0xff][below(5)]!;
            }
            break;
          }
          case 7: {
            // insertion of random bytes
            const at = below(n + 1);
            const ins = Uint8Array.from({ length: 1 + below(16) }, () => rand() & 0xff);
            const g = new Uint8Array(n + ins.length);
            g.set(f.subarray(0, at));
            g.set(ins, at);
            g.set(f.subarray(at), at + ins.length);
            f = g;
            break;
          }
          case 8: {
            // deletion of a range
            if (!n) break;
            const at = below(n);
            const len = 1 + below(Math.min(16, n - at));
            const g = new Uint8Array(n - len);
            g.set(f.subarray(0, at));
            g.set(f.subarray(at + len), at);
            f = g;
            break;
          }
          default: {
            // splice: this frame's head with another seed's tail
            const other = corpus[below(corpus.length)]!;
            const cut = below(Math.min(n, other.length) + 1);
            const g = new Uint8Array(other.length);
            g.set(f.subarray(0, cut));
            g.set(other.subarray(cut), cut);
            f = g;
          }
        }
      }
      // Most mutations would otherwise die at the ICMPv6 checksum.
      if (below(2) === 0) repairIpv6(f, below(2) === 0);
      return f;
    };

    const failures: string[] = [];
    const accepted: Record<string, number> = { arp: 0, ndp: 0, ethernet: 0 };
    const reasons: Record<string, Map<string, number>> = { arp: new Map(), ndp: new Map(), ethernet: new Map() };
    const fail = (i: number, codec: string, f: Uint8Array, what: string): void => {
      if (failures.length < 10) failures.push(`#${i} ${codec}: ${what}\n  frame ${Buffer.from(f).toString('hex')}`);
    };
    /** Runs `run` again with stack traces on (they are off during the loop) and returns the stack it throws. */
    const withStack = (run: () => unknown): string | undefined => {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 20;
      try {
        run();
      } catch (e) {
        return e instanceof Error ? e.stack : String(e);
      } finally {
        Error.stackTraceLimit = limit;
      }
      return undefined;
    };
    /**
     * Runs one decoder on one frame and compares its outcome with the
     * reference: both accept with the same fields, or both reject for the
     * same reason; a rejection must be a DecodeError of this codec with an
     * offset inside the frame.
     */
    const check = (i: number, codec: string, f: Uint8Array, run: () => string, expected: Outcome): void => {
      let key: string;
      try {
        key = run();
      } catch (e) {
        if (!(e instanceof DecodeError)) return fail(i, codec, f, `threw ${withStack(run) ?? String(e)}`);
        if (e.codec !== codec || !REASONS[codec]!.includes(e.reason)) return fail(i, codec, f, `DecodeError ${e.codec}/${e.reason}`);
        if (!Number.isInteger(e.offset) || e.offset < 0 || e.offset > f.length) {
          return fail(i, codec, f, `offset ${e.offset} outside the frame`);
        }
        if (expected.reason !== e.reason) {
          return fail(i, codec, f, `rejected (${e.message}), reference says ${expected.reason ?? 'accept'}`);
        }
        const m = reasons[codec]!;
        m.set(e.reason, (m.get(e.reason) ?? 0) + 1);
        return;
      }
      if (expected.key !== key) return fail(i, codec, f, `accepted as\n  ${key}\n  reference: ${expected.key ?? expected.reason}`);
      accepted[codec]!++;
    };
    const arpKey = (f: Uint8Array, p: ArpPacket): string => {
      const key = [p.operation, p.ethDestination, p.ethSource, p.senderMac, p.senderIp, p.targetMac, p.targetIp].map(text).join('|');
      // Lossless: what was accepted re-encodes to the frame's first 42 bytes.
      if (Buffer.compare(encodeArp(p), f.subarray(0, 42)) !== 0) throw new Error('re-encoding differs');
      return key;
    };
    const ndpKey = (p: NdpPacket): string => {
      const { router, solicited, override } = p.flags;
      const key = [
        p.type, p.ethDestination, p.ethSource, p.trafficClass, p.flowLabel, p.ipSource, p.ipDestination, p.hopLimit, p.target,
        `${+router}${+solicited}${+override}`, p.sourceLinkLayer, p.targetLinkLayer, p.nonce,
      ].map(text).join('|');
      // The canonical re-encoding is a fixed point: decoding and encoding it again changes nothing.
      const canonical = encodeNdp(p);
      if (Buffer.compare(encodeNdp(decodeNdp(canonical)), canonical) !== 0) throw new Error('re-encoding is not stable');
      return key;
    };

    // A rejection costs a few µs, most of it V8 capturing the DecodeError's
    // stack; millions of them would dominate the run, and the decoders behave
    // the same without stacks.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const start = performance.now();
    try {
      for (let i = 0; i < ITERATIONS && failures.length < 10; i++) {
        let f = below(10) === 0 ? randomFrame() : mutate(corpus[below(corpus.length)]!);
        if (below(2) === 0) f = Buffer.from(f.buffer, f.byteOffset, f.length); // sockets hand over Buffers
        const frame = f;
        check(i, 'arp', frame, () => arpKey(frame, decodeArp(frame)), referenceArp(frame));
        check(i, 'ndp', frame, () => ndpKey(decodeNdp(frame)), referenceNdp(frame));
        check(i, 'ethernet', frame, () => text(decodeEthernetHeader(frame).ethertype), referenceEthernet(frame));
      }
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    const seconds = (performance.now() - start) / 1000;

    const summary = Object.entries(reasons)
      .map(([codec, m]) => `${codec}: ${accepted[codec]} accepted, ${[...m].map(([r, n]) => `${r} ${n}`).join(', ')}`)
      .join('; ');
    console.log(`fuzz: ${ITERATIONS} frames × 3 decoders in ${seconds.toFixed(1)} s (seed 0x${SEED.toString(16)}); ${summary}`);
    expect(failures, `replay with VIPA_FUZZ_SEED=0x${SEED.toString(16)}`).toEqual([]);
    // The fuzzer must reach both outcomes and every rejection reason of each decoder.
    if (ITERATIONS >= 100_000) {
      for (const codec of ['arp', 'ndp', 'ethernet']) {
        expect(accepted[codec], `${codec} accepted`).toBeGreaterThan(ITERATIONS / 100);
        for (const reason of REASONS[codec]!) expect(reasons[codec]!.get(reason) ?? 0, `${codec} ${reason}`).toBeGreaterThan(0);
      }
    }
  });
});
