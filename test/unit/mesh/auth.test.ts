import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import { Keyring, MIN_KEY_LENGTH } from '../../../lib/coordinators/mesh/auth.js';
import { decodeMeshMessage, encodeMeshMessage, type MeshHeartbeat, type MeshMessage } from '../../../lib/coordinators/mesh/wire.js';

// Count calls to timingSafeEqual while keeping the real implementation.
const calls = vi.hoisted(() => ({ timingSafeEqual: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.timingSafeEqual++;
      return real.timingSafeEqual(a, b);
    },
  };
});

const K1 = Buffer.alloc(32, 0x11);
const K2 = Buffer.alloc(32, 0x22);
const K3 = Buffer.alloc(16, 0x33);

const msg: MeshHeartbeat = {
  type: 'heartbeat',
  senderId: 'alpha',
  incarnation: 1_700_000_000_000n,
  seq: 42n,
  configDigest: Buffer.alloc(16, 7),
  health: 'healthy',
  intervalMs: 5,
  groups: [{ index: 2, status: 'holding', priority: 255 }],
};

/** Encodes with `sender` and verifies with `receiver` at `now`. */
function roundTrip(sender: Keyring | undefined, receiver: Keyring, now = 0, m: MeshMessage = msg) {
  const bytes = encodeMeshMessage(m, sender);
  return receiver.verify(decodeMeshMessage(bytes), bytes, now);
}

describe('Keyring: construction', () => {
  it('rejects keys shorter than 16 bytes, naming the key id', () => {
    expect(() => new Keyring([{ id: 9, key: Buffer.alloc(15) }], 9)).toThrow(RangeError);
    expect(() => new Keyring([{ id: 9, key: Buffer.alloc(15) }], 9)).toThrow(/key 9: 15 bytes, at least 16/);
    const kr = new Keyring([{ id: 1, key: K1 }], 1);
    expect(() => kr.addKey({ id: 4242, key: Buffer.alloc(8) })).toThrow(/key 4242/);
    expect(MIN_KEY_LENGTH).toBe(16);
    expect(() => new Keyring([{ id: 3, key: K3 }], 3)).not.toThrow();
  });

  it('rejects bad ids, duplicates, empty key lists and an unknown current key', () => {
    expect(() => new Keyring([], 1)).toThrow(/at least one key/);
    expect(() => new Keyring([{ id: 65536, key: K1 }], 65536)).toThrow(/key id 65536/);
    expect(() => new Keyring([{ id: -1, key: K1 }], -1)).toThrow(/key id -1/);
    expect(() => new Keyring([{ id: 1, key: K1 }, { id: 1, key: K2 }], 1)).toThrow(/key 1: id already/);
    expect(() => new Keyring([{ id: 1, key: K1 }], 2)).toThrow(/key 2 is not in the keyring/);
    expect(() => new Keyring([{ id: 1, key: 'secret' as unknown as Buffer }], 1)).toThrow(TypeError);
  });

  it('keeps its own copy of the key', () => {
    const key = Buffer.from(K1);
    const kr = new Keyring([{ id: 1, key }], 1);
    const bytes = encodeMeshMessage(msg, kr);
    key.fill(0);
    expect(kr.verify(decodeMeshMessage(bytes), bytes, 0)).toEqual({ ok: true });
    expect(bytes.equals(encodeMeshMessage(msg, new Keyring([{ id: 1, key: K1 }], 1)))).toBe(true);
  });

  it('reports its keys', () => {
    const kr = new Keyring([{ id: 1, key: K1 }, { id: 2, key: K2, expiresAt: 50 }], 1);
    expect(kr.insecure).toBe(false);
    expect(kr.currentKeyId).toBe(1);
    expect(kr.keyIds().sort()).toEqual([1, 2]);
    expect(kr.has(2)).toBe(true);
    expect(kr.has(3)).toBe(false);
    expect(kr.expiresAt(2)).toBe(50);
    expect(kr.expiresAt(1)).toBeUndefined();
    expect(() => kr.expiresAt(3)).toThrow(RangeError);
  });
});

describe('Keyring: verify', () => {
  const kr = new Keyring([{ id: 1, key: K1 }], 1);

  it('accepts a message signed with a held key, comparing in constant time', () => {
    const before = calls.timingSafeEqual;
    expect(roundTrip(kr, kr)).toEqual({ ok: true });
    expect(calls.timingSafeEqual).toBe(before + 1);
  });

  it('unsigned → unauthenticated', () => {
    expect(roundTrip(undefined, kr)).toEqual({ ok: false, reason: 'unauthenticated' });
    expect(roundTrip(Keyring.insecure(), kr)).toEqual({ ok: false, reason: 'unauthenticated' });
  });

  it('key id not held → unknown-key', () => {
    expect(roundTrip(new Keyring([{ id: 2, key: K1 }], 2), kr)).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('same key id, different secret → bad-mac', () => {
    expect(roundTrip(new Keyring([{ id: 1, key: K2 }], 1), kr)).toEqual({ ok: false, reason: 'bad-mac' });
  });

  it('forged MACs → bad-mac', () => {
    const bytes = encodeMeshMessage(msg, kr);
    for (let i = 0; i < 50; i++) {
      const forged = Buffer.from(bytes);
      randomBytes(32).copy(forged, forged.length - 32);
      expect(kr.verify(decodeMeshMessage(forged), forged, 0)).toEqual({ ok: false, reason: 'bad-mac' });
    }
    const zero = Buffer.from(bytes).fill(0, bytes.length - 32);
    expect(kr.verify(decodeMeshMessage(zero), zero, 0)).toEqual({ ok: false, reason: 'bad-mac' });
  });

  it('truncated MAC: the decoder refuses it; a hand-made short MAC is bad-mac', () => {
    const bytes = encodeMeshMessage(msg, kr);
    for (let cut = 1; cut <= 34; cut++) {
      expect(() => decodeMeshMessage(bytes.subarray(0, bytes.length - cut))).toThrow(DecodeError);
    }
    const decoded = decodeMeshMessage(bytes);
    const short = { ...decoded, auth: { ...decoded.auth!, mac: decoded.auth!.mac.subarray(0, 16) } };
    expect(kr.verify(short, bytes, 0)).toEqual({ ok: false, reason: 'bad-mac' });
    expect(kr.verify(decoded, bytes.subarray(0, bytes.length - 1), 0)).toEqual({ ok: false, reason: 'bad-mac' });
    const wrongOffset = { ...decoded, auth: { ...decoded.auth!, macOffset: decoded.auth!.macOffset - 1 } };
    expect(kr.verify(wrongOffset, bytes, 0)).toEqual({ ok: false, reason: 'bad-mac' });
  });

  it('a flipped bit anywhere in a signed message is rejected (decode or verify)', () => {
    const other = new Keyring([{ id: 1, key: K1 }, { id: 0x0101, key: K2 }, { id: 0x0001 | 0x8000, key: K2 }], 1);
    for (const m of [msg, { type: 'release', senderId: 'alpha', incarnation: 1n, seq: 2n, configDigest: Buffer.alloc(16), group: 1, target: 'beta', pinned: false } as MeshMessage]) {
      const bytes = encodeMeshMessage(m, kr);
      expect(other.verify(decodeMeshMessage(bytes), bytes, 0)).toEqual({ ok: true });
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const tampered = Buffer.from(bytes);
          tampered[i]! ^= 1 << bit;
          let decoded: MeshMessage;
          try {
            decoded = decodeMeshMessage(tampered);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
            continue;
          }
          const result = other.verify(decoded, tampered, 0);
          expect(result.ok, `byte ${i} bit ${bit}`).toBe(false);
        }
      }
    }
  });
});

describe('Keyring: rotation window', () => {
  it('old key accepted strictly before its expiry, rejected from it on', () => {
    const oldSender = new Keyring([{ id: 1, key: K1 }], 1);
    const receiver = new Keyring([{ id: 1, key: K1 }], 1);
    receiver.rotate({ id: 2, key: K2 }, 1000);
    expect(receiver.currentKeyId).toBe(2);
    expect(receiver.expiresAt(1)).toBe(1000);
    expect(roundTrip(oldSender, receiver, -5)).toEqual({ ok: true });
    expect(roundTrip(oldSender, receiver, 999)).toEqual({ ok: true });
    expect(roundTrip(oldSender, receiver, 999.999)).toEqual({ ok: true });
    expect(roundTrip(oldSender, receiver, 1000)).toEqual({ ok: false, reason: 'expired-key' });
    expect(roundTrip(oldSender, receiver, 1e12)).toEqual({ ok: false, reason: 'expired-key' });
    // The new key is accepted at any time.
    expect(roundTrip(receiver, receiver, 1e12)).toEqual({ ok: true });
    // An expired key with a wrong MAC still reports expiry (no MAC computed).
    expect(roundTrip(new Keyring([{ id: 1, key: K2 }], 1), receiver, 1000)).toEqual({ ok: false, reason: 'expired-key' });
  });

  it('three-step rollout: add everywhere, switch, expire', () => {
    const a = new Keyring([{ id: 1, key: K1 }], 1);
    const b = new Keyring([{ id: 1, key: K1 }], 1);
    // Step 1: both accept key 2, both still send with key 1.
    a.addKey({ id: 2, key: K2 });
    b.addKey({ id: 2, key: K2 });
    // Step 2: a switches first; b (still on key 1) accepts a, and a accepts b.
    a.rotate({ id: 2, key: K2 }, 5000);
    expect(a.currentKeyId).toBe(2);
    expect(roundTrip(a, b, 100)).toEqual({ ok: true });
    expect(roundTrip(b, a, 100)).toEqual({ ok: true });
    b.rotate({ id: 2, key: K2 }, 5000);
    // Step 3: after the deadline only key 2 works.
    expect(roundTrip(a, b, 6000)).toEqual({ ok: true });
    expect(roundTrip(new Keyring([{ id: 1, key: K1 }], 1), a, 6000)).toEqual({ ok: false, reason: 'expired-key' });
    a.removeKey(1);
    expect(roundTrip(new Keyring([{ id: 1, key: K1 }], 1), a, 6000)).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('a key added with an expiry in the past is never accepted', () => {
    const kr = new Keyring([{ id: 1, key: K1 }], 1);
    kr.addKey({ id: 2, key: K2, expiresAt: 10 });
    expect(roundTrip(new Keyring([{ id: 2, key: K2 }], 2), kr, 10)).toEqual({ ok: false, reason: 'expired-key' });
    expect(roundTrip(new Keyring([{ id: 2, key: K2 }], 2), kr, 9)).toEqual({ ok: true });
  });

  it('the sending key cannot expire or be removed; making a key current clears its expiry', () => {
    const kr = new Keyring([{ id: 1, key: K1 }, { id: 2, key: K2, expiresAt: 10 }], 1);
    expect(() => kr.expireKey(1, 10)).toThrow(/sending key/);
    expect(() => kr.removeKey(1)).toThrow(/sending key/);
    kr.setCurrent(2);
    expect(kr.expiresAt(2)).toBeUndefined();
    expect(roundTrip(kr, kr, 1e9)).toEqual({ ok: true });
    expect(() => kr.expireKey(7, 10)).toThrow(/key 7 is not in the keyring/);
    expect(() => kr.expireKey(1, Number.NaN)).toThrow(RangeError);
  });

  it('rotating to the current key changes nothing', () => {
    const kr = new Keyring([{ id: 1, key: K1 }], 1);
    kr.rotate({ id: 1, key: K1 }, 0);
    expect(kr.currentKeyId).toBe(1);
    expect(kr.expiresAt(1)).toBeUndefined();
  });
});

describe('Keyring.insecure', () => {
  it('is flagged, signs nothing, accepts everything', () => {
    const kr = Keyring.insecure();
    expect(kr.insecure).toBe(true);
    const bytes = encodeMeshMessage(msg, kr);
    const decoded = decodeMeshMessage(bytes);
    expect(decoded.auth).toBeUndefined();
    expect(kr.verify(decoded, bytes, 0)).toEqual({ ok: true });
    expect(roundTrip(new Keyring([{ id: 1, key: K1 }], 1), kr)).toEqual({ ok: true });
  });

  it('holds no keys', () => {
    const kr = Keyring.insecure();
    expect(() => kr.currentKeyId).toThrow(/insecure/);
    expect(() => kr.addKey({ id: 1, key: K1 })).toThrow(/insecure/);
    expect(() => kr.rotate({ id: 1, key: K1 }, 0)).toThrow(/insecure/);
    expect(kr.keyIds()).toEqual([]);
  });

  it('cannot be built through the constructor', () => {
    expect(new Keyring([{ id: 1, key: K1 }], 1).insecure).toBe(false);
    expect(() => new Keyring([], 0)).toThrow(/Keyring.insecure\(\)/);
  });
});
