import { describe, expect, it } from 'vitest';
import { Keyring } from '../../../lib/coordinators/mesh/auth.js';
import { MESH_DROP_REASONS, MeshReceiver, type MeshAcceptResult } from '../../../lib/coordinators/mesh/receiver.js';
import { encodeMeshMessage, type MeshGroupState, type MeshMessage } from '../../../lib/coordinators/mesh/wire.js';

// Fuzzing MeshReceiver.accept, the function that eats untrusted datagrams:
// random bytes, structured-but-random headers, and valid messages mutated
// (bit flips, byte overwrites, truncation, extension, splicing, length-field
// corruption), plus valid messages re-sent (replays). Deterministic: the
// seed is fixed, and a failure prints the input to reproduce it.

const ITERATIONS = 200_000;
const SEED = 0x5eed_1234;

/** xorshift32: small, fast, reproducible. */
function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const int = (n: number) => next() % n;
  const bytes = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = next() & 0xff;
    return b;
  };
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, bytes, pick };
}

const K1 = Buffer.alloc(32, 0x11);
const K2 = Buffer.alloc(32, 0x22);
const K3 = Buffer.alloc(32, 0x33);
const DIGEST = Buffer.alloc(16, 0xd1);
const NOW = 1000;
const INC = 1_700_000_000_000n;

const SIGNERS: (Keyring | undefined)[] = [
  new Keyring([{ id: 1, key: K1 }], 1), // valid
  new Keyring([{ id: 1, key: K1 }], 1),
  new Keyring([{ id: 1, key: K1 }], 1),
  new Keyring([{ id: 1, key: K1 }], 1),
  new Keyring([{ id: 2, key: K2 }], 2), // expired at the receiver
  new Keyring([{ id: 3, key: K3 }], 3), // unknown to the receiver
  new Keyring([{ id: 1, key: K3 }], 1), // wrong secret
  undefined, // unsigned
];
const SENDERS = ['beta', 'gamma', 'delta', 'alpha' /* self */, 'nœud-ü', '節点-3', 'x'.repeat(64)];
const STATUSES = ['standby', 'holding', 'ineligible', 'releasing'] as const;
const HEALTHS = ['healthy', 'unhealthy', 'draining'] as const;
const KINDS = new Set(['accepted', 'digest-mismatch', 'dropped']);
const REASONS = new Set<string>(MESH_DROP_REASONS);

describe('MeshReceiver fuzz', () => {
  it(`survives ${ITERATIONS} random and mutated datagrams`, () => {
    const r = prng(SEED);
    const keyring = new Keyring([{ id: 1, key: K1 }, { id: 2, key: K2, expiresAt: 500 }], 1);
    const receiver = new MeshReceiver({ nodeId: 'alpha', keyring, configDigest: DIGEST });
    const seqs = new Map<string, bigint>();
    const incarnations = new Map<string, bigint>();

    const randomMessage = (): MeshMessage => {
      const senderId = r.pick(SENDERS);
      // Now and then a sender restarts (new incarnation, seq starts over).
      let incarnation = incarnations.get(senderId) ?? INC;
      if (r.int(500) === 0) {
        incarnation += 1n;
        seqs.set(senderId, 0n);
      }
      incarnations.set(senderId, incarnation);
      // Mostly increasing seqs per sender (accepted), sometimes old ones (replay window paths).
      const last = seqs.get(senderId) ?? 0n;
      const seq = r.int(10) === 0 ? BigInt(r.int(Number(last) + 1)) : last + 1n + BigInt(r.int(3));
      seqs.set(senderId, seq > last ? seq : last);
      // Sometimes a message from a previous life.
      if (r.int(50) === 0) incarnation -= 1n;
      const configDigest = r.int(20) === 0 ? r.bytes(16) : DIGEST;
      const type = r.int(10);
      if (type === 0) {
        return { type: 'release', senderId, incarnation, seq, configDigest, group: r.int(65536), target: r.pick(SENDERS), pinned: r.int(2) === 1 };
      }
      const count = r.int(9);
      const groups: MeshGroupState[] = [];
      for (let i = 0; i < count; i++) groups.push({ index: i * 7 + r.int(7), status: r.pick(STATUSES), priority: r.int(256) });
      return { type: type === 1 ? 'leave' : 'heartbeat', senderId, incarnation, seq, configDigest, health: r.pick(HEALTHS), intervalMs: 1 + r.int(1000), groups };
    };
    const validBytes = () => encodeMeshMessage(randomMessage(), r.pick(SIGNERS));

    // A pool of earlier valid datagrams, for replays and as mutation bases.
    const pool: Buffer[] = [];
    for (let i = 0; i < 512; i++) pool.push(validBytes());

    const mutate = (base: Buffer): Buffer => {
      const b = Buffer.from(base);
      switch (r.int(9)) {
        case 0: // flip 1..4 bits
          for (let k = 1 + r.int(4); k > 0; k--) b[r.int(b.length)]! ^= 1 << r.int(8);
          return b;
        case 1: // overwrite bytes with boundary or random values
          for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] = r.pick([0, 1, 0x1f, 0x20, 0x7f, 0x80, 0xc2, 0xff, r.int(256)]);
          return b;
        case 2: // truncate
          return b.subarray(0, r.int(b.length));
        case 3: // extend
          return Buffer.concat([b, r.bytes(1 + r.int(40))]);
        case 4: {
          // splice the head of one datagram onto the tail of another
          const other = r.pick(pool);
          return Buffer.concat([b.subarray(0, r.int(b.length)), other.subarray(r.int(other.length))]);
        }
        case 5: // corrupt a length or count field: id length, group count, target length
          b[r.pick([8, 8, Math.min(b.length - 1, 9 + b[8]! + 32 + 5), Math.min(b.length - 1, 9 + b[8]! + 32 + 6), Math.min(b.length - 1, 9 + b[8]! + 32 + 2)])] = r.int(256);
          return b;
        case 6: {
          // delete a chunk
          const at = r.int(b.length);
          return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(8)))]);
        }
        case 7: {
          // duplicate a chunk
          const at = r.int(b.length);
          const chunk = b.subarray(at, at + 1 + r.int(8));
          return Buffer.concat([b.subarray(0, at), chunk, b.subarray(at)]);
        }
        default: // flip the authenticated flag
          b[7]! ^= 1;
          return b;
      }
    };

    const nextInput = (): Buffer => {
      switch (r.int(10)) {
        case 0: // random bytes, any length
          return r.bytes(r.int(160));
        case 1: {
          // correct magic and version, random rest
          const b = r.bytes(8 + r.int(150));
          b.writeUInt32BE(0x56495041, 0);
          b[4] = 1;
          b[5] = 1 + r.int(3);
          b[6] = 0;
          b[7] &= 1;
          if (b.length > 8) b[8] = 1 + r.int(70);
          return b;
        }
        case 2:
        case 3: {
          // a fresh valid message (accepted or dropped for a legitimate reason)
          const b = validBytes();
          pool[r.int(pool.length)] = b;
          return b;
        }
        case 4: // a replay of an earlier datagram
          return r.pick(pool);
        default:
          // Mutate an earlier datagram, or a valid one never sent (fresh seq: the MAC must catch it).
          return mutate(r.int(2) === 0 ? r.pick(pool) : validBytes());
      }
    };

    const outcomes = new Map<string, number>();
    let failure: string | undefined;
    const start = performance.now();
    for (let i = 0; i < ITERATIONS && failure === undefined; i++) {
      const input = nextInput();
      let result: MeshAcceptResult;
      try {
        result = receiver.accept(input, '198.51.100.9:7410', NOW);
      } catch (err) {
        failure = `iteration ${i}: threw ${String(err)} on ${input.toString('hex')}`;
        break;
      }
      if (!KINDS.has(result.kind)) failure = `iteration ${i}: unknown kind ${result.kind}`;
      let key: string = result.kind;
      if (result.kind === 'dropped') {
        if (!REASONS.has(result.reason)) failure = `iteration ${i}: unknown reason ${result.reason}`;
        // The decoder must refuse with its own DecodeError, never a TypeError/RangeError.
        if (result.reason === 'malformed' && !/^[a-z-]+ at byte \d+$/.test(result.detail ?? '')) {
          failure = `iteration ${i}: decoder threw a non-DecodeError (${result.detail}) on ${input.toString('hex')}`;
        }
        key = result.reason;
      }
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    const ms = performance.now() - start;

    expect(failure).toBeUndefined();
    const counters = receiver.counters;
    const total = Object.values(counters).reduce((a, b) => a + b, 0);
    expect(total).toBe(ITERATIONS);
    for (const [key, n] of outcomes) expect(counters[key as keyof typeof counters]).toBe(n);
    // Every path was exercised.
    for (const reason of ['accepted', 'digest-mismatch', 'malformed', 'self', 'unauthenticated', 'unknown-key', 'expired-key', 'bad-mac', 'replayed', 'too-old', 'stale-incarnation']) {
      expect(outcomes.get(reason) ?? 0, reason).toBeGreaterThan(0);
    }
    expect(ms).toBeLessThan(10_000);
    console.log(`mesh fuzz: ${ITERATIONS} datagrams in ${ms.toFixed(0)} ms (${((ms * 1000) / ITERATIONS).toFixed(2)} µs each):`, Object.fromEntries([...outcomes].sort()));
  });
});
