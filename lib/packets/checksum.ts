/**
 * The Internet checksum (RFC 1071) and the ICMPv6 checksum over the IPv6
 * pseudo-header (RFC 8200 §8.1, RFC 4443 §2.3).
 *
 * The checksum is the 16-bit one's complement of the one's complement sum of
 * the data taken as big-endian 16-bit words, an odd last byte padded with a
 * zero byte (RFC 1071 §1). The sum is accumulated unfolded in a double (exact
 * up to 2^53, i.e. for any buffer Node can allocate) and folded once at the
 * end (RFC 1071 §2(C), "deferred carries"), which keeps the inner loop to one
 * add per word.
 *
 * Verifying: the checksum computed over data that includes a correct checksum
 * field is 0 (RFC 1071 §1, "the result is checked by ... all 1 bits" before the
 * complement), so receivers compare the result with 0.
 */

/**
 * Adds `data[offset .. offset + length)` as big-endian 16-bit words to `sum`
 * and returns the new, unfolded sum. An odd trailing byte counts as the high
 * byte of a word whose low byte is zero (RFC 1071 §1).
 *
 * Sums of consecutive ranges chain (pass one result as the next `sum`) only
 * when every range but the last has an even length: an odd range pads its
 * last byte, which would shift the words of the next range.
 */
export function onesComplementSum(data: Uint8Array, offset: number, length: number, sum = 0): number {
  const end = offset + length;
  const evenEnd = end - (length & 1);
  let i = offset;
  for (; i < evenEnd; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < end) sum += data[i]! << 8;
  return sum;
}

/**
 * Folds an unfolded one's complement sum to 16 bits (end-around carry,
 * RFC 1071 §4.1) and returns its complement: the value that goes into a
 * checksum field.
 */
export function finishChecksum(sum: number): number {
  // Division instead of `>>> 16`: the unfolded sum may exceed 32 bits.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * The Internet checksum (RFC 1071) of `data[offset .. offset + length)`.
 * Over data that includes a correct checksum field the result is 0.
 */
export function internetChecksum(data: Uint8Array, offset = 0, length = data.length - offset): number {
  checkRange(data, offset, length);
  return finishChecksum(onesComplementSum(data, offset, length));
}

/** IPv6 next-header value of ICMPv6 (RFC 4443 §1). */
export const IPPROTO_ICMPV6 = 58;

/**
 * The ICMPv6 checksum (RFC 4443 §2.3) of the message
 * `message[offset .. offset + length)`, sent from `source` to `destination`
 * (16 bytes each), over the RFC 8200 §8.1 pseudo-header: source address,
 * destination address, 32-bit upper-layer packet length, three zero bytes and
 * next header 58.
 *
 * To compute a checksum, pass the message with its checksum field zeroed; to
 * verify one, pass it as received: the result is 0 when it is correct.
 */
export function icmpv6Checksum(
  source: Uint8Array,
  destination: Uint8Array,
  message: Uint8Array,
  offset = 0,
  length = message.length - offset,
): number {
  if (source.length !== 16 || destination.length !== 16) {
    throw new RangeError(`IPv6 addresses have 16 bytes, got ${source.length} and ${destination.length}`);
  }
  checkRange(message, offset, length);
  let sum = onesComplementSum(source, 0, 16);
  sum = onesComplementSum(destination, 0, 16, sum);
  // Upper-layer length as a 32-bit word, then 24 zero bits and the next header.
  sum += Math.floor(length / 0x10000) + (length & 0xffff) + IPPROTO_ICMPV6;
  return finishChecksum(onesComplementSum(message, offset, length, sum));
}

function checkRange(data: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > data.length) {
    throw new RangeError(`checksum range [${offset}, ${offset}+${length}) is outside the ${data.length}-byte buffer`);
  }
}
