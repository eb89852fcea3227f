/**
 * Classic BPF socket filters (the "Linux Socket Filtering" of
 * Documentation/networking/filter.rst, attached with SO_ATTACH_FILTER,
 * socket(7)) for vipa's AF_PACKET receive sockets, so that the kernel drops
 * every frame vipa does not care about before it wakes the event loop.
 *
 * A program is an array of `struct sock_filter` (linux/filter.h):
 *
 * | bytes | field | meaning                                   |
 * |-------|-------|-------------------------------------------|
 * | 2     | code  | opcode: class, size, mode/op, source      |
 * | 1     | jt    | jump offset when the condition holds      |
 * | 1     | jf    | jump offset when it does not              |
 * | 4     | k     | constant operand                          |
 *
 * in host byte order (the kernel reads it as a C struct). On an AF_PACKET
 * socket of type SOCK_RAW, absolute loads are offsets from the start of the
 * Ethernet header (packet(7)); a load beyond the end of the frame ends the
 * program with return value 0, i.e. drop (filter.rst, "ld ... out of
 * bounds"). The return value is the number of bytes to keep; 0 drops.
 */

/** Instruction class BPF_LD (linux/bpf_common.h). */
export const BPF_LD = 0x00;
/** Instruction class BPF_JMP. */
export const BPF_JMP = 0x05;
/** Instruction class BPF_RET. */
export const BPF_RET = 0x06;
/** Load size: 32-bit word. */
export const BPF_W = 0x00;
/** Load size: 16-bit half word. */
export const BPF_H = 0x08;
/** Load size: byte. */
export const BPF_B = 0x10;
/** Addressing mode: absolute offset into the packet. */
export const BPF_ABS = 0x20;
/** Jump operation: equal. */
export const BPF_JEQ = 0x10;
/** Operand source: the constant k. */
export const BPF_K = 0x00;

/** Bytes of one `struct sock_filter`. */
export const SOCK_FILTER_SIZE = 8;
/** BPF_MAXINSNS (linux/bpf_common.h): the kernel refuses longer classic programs. */
export const BPF_MAXINSNS = 4096;

/** One classic BPF instruction, fields as in `struct sock_filter`. */
export interface SockFilter {
  /** Opcode (u16). */
  code: number;
  /** Instructions to skip when the condition holds (u8). */
  jt: number;
  /** Instructions to skip when it does not (u8). */
  jf: number;
  /** Constant operand (u32). */
  k: number;
}

/**
 * Encodes instructions as the `struct sock_filter[]` bytes the addon hands
 * to setsockopt(SO_ATTACH_FILTER): 8 bytes each, little-endian (vipa runs on
 * little-endian hosts only, see lib/native.ts). Checks field ranges and that
 * every jump stays inside the program, as the kernel's sk_chk_filter() does.
 */
export function encodeSockFilter(program: readonly SockFilter[]): Buffer {
  if (program.length === 0 || program.length > BPF_MAXINSNS) {
    throw new RangeError(`a classic BPF program has 1..${BPF_MAXINSNS} instructions, got ${program.length}`);
  }
  const out = Buffer.alloc(program.length * SOCK_FILTER_SIZE);
  program.forEach((insn, i) => {
    const { code, jt, jf, k } = insn;
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new RangeError(`instruction ${i}: code must be a u16, got ${code}`);
    if (!Number.isInteger(jt) || jt < 0 || jt > 0xff) throw new RangeError(`instruction ${i}: jt must be a u8, got ${jt}`);
    if (!Number.isInteger(jf) || jf < 0 || jf > 0xff) throw new RangeError(`instruction ${i}: jf must be a u8, got ${jf}`);
    if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) throw new RangeError(`instruction ${i}: k must be a u32, got ${k}`);
    if ((code & 0x07) === BPF_JMP && (i + 1 + jt >= program.length || i + 1 + jf >= program.length)) {
      throw new RangeError(`instruction ${i}: a jump leaves the program`);
    }
    const o = i * SOCK_FILTER_SIZE;
    out.writeUInt16LE(code, o);
    out[o + 2] = jt;
    out[o + 3] = jf;
    out.writeUInt32LE(k, o + 4);
  });
  const last = program[program.length - 1]!;
  if ((last.code & 0x07) !== BPF_RET) throw new RangeError('the last instruction must be a return (BPF_RET)');
  return out;
}

/** Decodes `struct sock_filter[]` bytes back into instructions (for tests and diagnostics). */
export function decodeSockFilter(bytes: Uint8Array): SockFilter[] {
  if (bytes.length % SOCK_FILTER_SIZE !== 0) throw new RangeError(`a sock_filter array is a multiple of 8 bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: SockFilter[] = [];
  for (let o = 0; o < b.length; o += SOCK_FILTER_SIZE) {
    out.push({ code: b.readUInt16LE(o), jt: b[o + 2]!, jf: b[o + 3]!, k: b.readUInt32LE(o + 4) });
  }
  return out;
}

/**
 * Bytes kept of an accepted frame. Large enough for any frame (it is
 * tcpdump's default snap length, 262144); the receive buffer decides the
 * real limit.
 */
const ACCEPT_BYTES = 0x40000;

const insn = (code: number, jt: number, jf: number, k: number): SockFilter => ({ code, jt, jf, k });

/**
 * The program of {@link neighborDiscoveryFilter}, as instructions. In
 * tcpdump's notation (`tcpdump -d`):
 *
 * ```
 * (000) ldh  [12]                  ; EtherType
 * (001) jeq  #0x806   jt 8  jf 2   ; ARP (RFC 826)               -> accept
 * (002) jeq  #0x86dd  jt 3  jf 9   ; IPv6 (RFC 2464)             else drop
 * (003) ldb  [20]                  ; IPv6 Next Header
 * (004) jeq  #58      jt 5  jf 9   ; ICMPv6, no extension header else drop
 * (005) ldb  [54]                  ; ICMPv6 Type
 * (006) jeq  #135     jt 8  jf 7   ; Neighbor Solicitation       -> accept
 * (007) jeq  #136     jt 8  jf 9   ; Neighbor Advertisement      -> accept
 * (008) ret  #262144               ; accept
 * (009) ret  #0                    ; drop
 * ```
 *
 * Instruction for instruction what libpcap 1.10.3 compiles (tcpdump 4.99.3,
 * `tcpdump -dd -y EN10MB 'arp or (ip6 and ip6[6] == 58 and (ip6[40] == 135
 * or ip6[40] == 136))'`), checked in test/unit/packets/bpf.test.ts.
 *
 * (jt/jf above are absolute targets, as tcpdump prints them; the encoded
 * offsets are relative to the next instruction, and classic BPF jumps only
 * forward.) "No extension header": no sender we know of (the kernel,
 * keepalived, ndisc6) puts one in front of an NS or NA, and the decoder
 * (lib/packets/ndp.ts) rejects them anyway, so there is no point waking up
 * for them. A frame too short for a load ends the program with 0 in the
 * kernel: dropped.
 */
export const NEIGHBOR_DISCOVERY_PROGRAM: readonly SockFilter[] = Object.freeze([
  /* 0 */ insn(BPF_LD | BPF_H | BPF_ABS, 0, 0, 12),
  /* 1 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 0x0806),
  /* 2 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, 0x86dd),
  /* 3 */ insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, 20),
  /* 4 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 58),
  /* 5 */ insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, 54),
  /* 6 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 135),
  /* 7 */ insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 136),
  /* 8 */ insn(BPF_RET | BPF_K, 0, 0, ACCEPT_BYTES),
  /* 9 */ insn(BPF_RET | BPF_K, 0, 0, 0),
]);

let cachedNd: Buffer | undefined;
let cachedDrop: Buffer | undefined;

/** `ret #0`: drops every frame in the kernel (a paused receive socket). */
export const DROP_ALL_PROGRAM: readonly SockFilter[] = Object.freeze([insn(BPF_RET | BPF_K, 0, 0, 0)]);

/**
 * A classic BPF program that drops every frame: a receive socket with it
 * attached queues nothing and never wakes its process. Fresh copy each call.
 */
export function dropAllFilter(): Buffer {
  cachedDrop ??= encodeSockFilter(DROP_ALL_PROGRAM);
  return Buffer.from(cachedDrop);
}

/**
 * A classic BPF program (as `struct sock_filter[]` bytes) that accepts only
 * ARP frames (EtherType 0x0806) and IPv6 ICMPv6 Neighbor Solicitations and
 * Advertisements (EtherType 0x86dd, Next Header 58 at offset 20, ICMPv6 Type
 * 135 or 136 at offset 54) and drops everything else in the kernel.
 *
 * Returns a fresh copy each call, so a caller may modify it.
 */
export function neighborDiscoveryFilter(): Buffer {
  cachedNd ??= encodeSockFilter(NEIGHBOR_DISCOVERY_PROGRAM);
  return Buffer.from(cachedNd);
}
