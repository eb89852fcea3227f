/**
 * The UDP probe the client prober sends and the echo responder answers, and
 * the clock both sides and their parents read.
 *
 * Probe (12 bytes, network byte order):
 *
 * | offset | bytes | field                                              |
 * |--------|-------|----------------------------------------------------|
 * | 0      | 4     | sequence number, from 0                            |
 * | 4      | 8     | send time, CLOCK_MONOTONIC nanoseconds             |
 *
 * Echo reply: the probe's 12 bytes unchanged, then the responder's host name
 * in UTF-8 (1..{@link MAX_RESPONDER_NAME_BYTES} bytes, no terminator). The
 * prober needs no per-probe state to compute a round trip (the send time
 * comes back), and the name says which host answered without a packet
 * capture on the client.
 */

/** Bytes of a probe, and of the echoed part of a reply. */
export const PROBE_LENGTH = 12;

/** Longest responder name the wire carries; a reply is at most 12 + 64 bytes. */
export const MAX_RESPONDER_NAME_BYTES = 64;

/**
 * Milliseconds of CLOCK_MONOTONIC (process.hrtime), as a float with
 * sub-microsecond precision. Every time in a probe timeline is on this
 * clock; it is the same clock in every process of the machine (network
 * namespaces do not change it), so a parent that notes when it moved an
 * address with this function lines up with the prober's records.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Encodes a probe with sequence number `seq` sent at `sentAtNs` (process.hrtime.bigint()). */
export function encodeProbe(seq: number, sentAtNs: bigint): Buffer {
  const probe = Buffer.allocUnsafe(PROBE_LENGTH);
  probe.writeUInt32BE(seq >>> 0, 0);
  probe.writeBigUInt64BE(sentAtNs, 4);
  return probe;
}

/** A decoded echo reply. */
export interface EchoReply {
  /** The probe's sequence number. */
  seq: number;
  /** The probe's send time, CLOCK_MONOTONIC nanoseconds. */
  sentAtNs: bigint;
  /** The name the responder was started with. */
  responder: string;
}

/**
 * Decodes an echo reply; `undefined` for anything that is not one (too
 * short, too long, no name): a datagram from a stranger must not stop the
 * prober, so this never throws.
 */
export function decodeEchoReply(datagram: Buffer): EchoReply | undefined {
  const nameBytes = datagram.length - PROBE_LENGTH;
  if (nameBytes < 1 || nameBytes > MAX_RESPONDER_NAME_BYTES) return undefined;
  return {
    seq: datagram.readUInt32BE(0),
    sentAtNs: datagram.readBigUInt64BE(4),
    responder: datagram.toString('utf8', PROBE_LENGTH),
  };
}
