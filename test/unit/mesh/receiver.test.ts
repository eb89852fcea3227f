import { describe, expect, it } from 'vitest';
import { Keyring } from '../../../lib/coordinators/mesh/auth.js';
import { MESH_DROP_REASONS, MeshReceiver, type MeshReceiverCounter } from '../../../lib/coordinators/mesh/receiver.js';
import { encodeMeshMessage, type MeshHeartbeat, type MeshMessage } from '../../../lib/coordinators/mesh/wire.js';

const K1 = Buffer.alloc(32, 0x11);
const K2 = Buffer.alloc(32, 0x22);
const DIGEST = Buffer.alloc(16, 0xd1);
const FROM = '192.0.2.7:7410';
const INC = 1_700_000_000_000n;

const keyring = () => new Keyring([{ id: 1, key: K1 }], 1);

function hb(seq: bigint, over: Partial<MeshHeartbeat> = {}): MeshHeartbeat {
  return {
    type: 'heartbeat',
    senderId: 'beta',
    incarnation: INC,
    seq,
    configDigest: DIGEST,
    health: 'healthy',
    intervalMs: 5,
    groups: [{ index: 0, status: 'holding', priority: 255 }],
    ...over,
  };
}

function receiver(kr: Keyring = keyring(), extra: { maxSenders?: number } = {}) {
  return new MeshReceiver({ nodeId: 'alpha', keyring: kr, configDigest: DIGEST, ...extra });
}

function only(counters: Readonly<Record<MeshReceiverCounter, number>>): Partial<Record<MeshReceiverCounter, number>> {
  return Object.fromEntries(Object.entries(counters).filter(([, v]) => v !== 0));
}

const signed = (m: MeshMessage, kr: Keyring = keyring()) => encodeMeshMessage(m, kr);

describe('MeshReceiver', () => {
  it('accepts a fresh authentic message and counts it', () => {
    const r = receiver();
    const result = r.accept(signed(hb(1n)), FROM, 0);
    expect(result).toMatchObject({ kind: 'accepted', from: FROM, message: { type: 'heartbeat', senderId: 'beta', seq: 1n } });
    expect(only(r.counters)).toEqual({ accepted: 1 });
    expect(r.senderCount).toBe(1);
  });

  it('malformed → dropped with the decoder reason', () => {
    const r = receiver();
    const bytes = signed(hb(1n));
    expect(r.accept(bytes.subarray(0, 20), FROM, 0)).toEqual({ kind: 'dropped', reason: 'malformed', from: FROM, detail: 'short at byte 20' });
    const bad = Buffer.from(bytes);
    bad[4] = 9;
    expect(r.accept(bad, FROM, 0)).toEqual({ kind: 'dropped', reason: 'malformed', from: FROM, detail: 'unknown-version at byte 4' });
    expect(r.accept(undefined as unknown as Buffer, FROM, 0)).toMatchObject({ kind: 'dropped', reason: 'malformed' });
    expect(only(r.counters)).toEqual({ malformed: 3 });
  });

  it('own node id → self, without a MAC check', () => {
    const r = receiver();
    expect(r.accept(signed(hb(1n, { senderId: 'alpha' })), FROM, 0)).toEqual({ kind: 'dropped', reason: 'self', from: FROM });
    // Even with a garbage MAC: self is decided first.
    expect(r.accept(signed(hb(2n, { senderId: 'alpha' }), new Keyring([{ id: 1, key: K2 }], 1)), FROM, 0)).toMatchObject({ reason: 'self' });
    expect(only(r.counters)).toEqual({ self: 2 });
  });

  it('auth failures: unauthenticated, unknown-key, expired-key, bad-mac', () => {
    const kr = new Keyring([{ id: 1, key: K1 }, { id: 2, key: K2, expiresAt: 100 }], 1);
    const r = receiver(kr);
    expect(r.accept(encodeMeshMessage(hb(1n)), FROM, 0)).toMatchObject({ kind: 'dropped', reason: 'unauthenticated' });
    expect(r.accept(signed(hb(2n), new Keyring([{ id: 3, key: K1 }], 3)), FROM, 0)).toMatchObject({ reason: 'unknown-key' });
    expect(r.accept(signed(hb(3n), new Keyring([{ id: 2, key: K2 }], 2)), FROM, 100)).toMatchObject({ reason: 'expired-key' });
    expect(r.accept(signed(hb(4n), new Keyring([{ id: 1, key: K2 }], 1)), FROM, 0)).toMatchObject({ reason: 'bad-mac' });
    expect(only(r.counters)).toEqual({ unauthenticated: 1, 'unknown-key': 1, 'expired-key': 1, 'bad-mac': 1 });
    // None of them created replay state.
    expect(r.senderCount).toBe(0);
    // The old key is fine before its expiry.
    expect(r.accept(signed(hb(5n), new Keyring([{ id: 2, key: K2 }], 2)), FROM, 99)).toMatchObject({ kind: 'accepted' });
  });

  it('replays: the same datagram twice, too-old, stale incarnation', () => {
    const r = receiver();
    const first = signed(hb(100n));
    expect(r.accept(first, FROM, 0).kind).toBe('accepted');
    expect(r.accept(first, FROM, 0)).toEqual({ kind: 'dropped', reason: 'replayed', from: FROM });
    expect(r.accept(signed(hb(99n)), FROM, 0).kind).toBe('accepted'); // reordered, inside the window
    expect(r.accept(signed(hb(36n)), FROM, 0)).toMatchObject({ reason: 'too-old' });
    expect(r.accept(signed(hb(1n, { incarnation: INC + 1n })), FROM, 0).kind).toBe('accepted'); // restart
    expect(r.accept(first, FROM, 0)).toMatchObject({ reason: 'stale-incarnation' });
    expect(only(r.counters)).toEqual({ accepted: 3, replayed: 1, 'too-old': 1, 'stale-incarnation': 1 });
  });

  it('forged messages do not advance the replay window (update only after the MAC, RFC 4303 §3.4.3)', () => {
    const r = receiver();
    expect(r.accept(signed(hb(1n)), FROM, 0).kind).toBe('accepted');
    const attacker = new Keyring([{ id: 1, key: K2 }], 1);
    expect(r.accept(signed(hb(1_000_000n), attacker), FROM, 0)).toMatchObject({ reason: 'bad-mac' });
    expect(r.accept(signed(hb(2n, { incarnation: INC + 99n }), attacker), FROM, 0)).toMatchObject({ reason: 'bad-mac' });
    expect(r.accept(signed(hb(2n)), FROM, 0).kind).toBe('accepted');
  });

  it('a config digest mismatch is returned as its own outcome, counted, and still replay-protected', () => {
    const r = receiver();
    const other = Buffer.alloc(16, 0xee);
    const bytes = signed(hb(1n, { configDigest: other }));
    const result = r.accept(bytes, FROM, 0);
    expect(result).toMatchObject({ kind: 'digest-mismatch', from: FROM, message: { senderId: 'beta', seq: 1n } });
    expect(r.accept(bytes, FROM, 0)).toMatchObject({ reason: 'replayed' });
    r.setConfigDigest(other);
    expect(r.accept(signed(hb(2n, { configDigest: other })), FROM, 0).kind).toBe('accepted');
    expect(r.accept(signed(hb(3n)), FROM, 0).kind).toBe('digest-mismatch');
    expect(only(r.counters)).toEqual({ 'digest-mismatch': 2, replayed: 1, accepted: 1 });
    expect(() => r.setConfigDigest(Buffer.alloc(3))).toThrow(RangeError);
  });

  it('keeps the digest it was given even if the caller reuses the buffer', () => {
    const digest = Buffer.from(DIGEST);
    const r = new MeshReceiver({ nodeId: 'alpha', keyring: keyring(), configDigest: digest });
    digest.fill(0);
    expect(r.accept(signed(hb(1n)), FROM, 0).kind).toBe('accepted');
  });

  it('bounds replay state: new senders beyond maxSenders are dropped, known ones still accepted', () => {
    const r = receiver(keyring(), { maxSenders: 2 });
    expect(r.accept(signed(hb(1n, { senderId: 's1' })), FROM, 0).kind).toBe('accepted');
    expect(r.accept(signed(hb(1n, { senderId: 's2' })), FROM, 0).kind).toBe('accepted');
    expect(r.accept(signed(hb(1n, { senderId: 's3' })), FROM, 0)).toMatchObject({ reason: 'sender-limit' });
    expect(r.accept(signed(hb(2n, { senderId: 's1' })), FROM, 0).kind).toBe('accepted');
    r.forgetSender('s2');
    expect(r.accept(signed(hb(1n, { senderId: 's3' })), FROM, 0).kind).toBe('accepted');
    expect(r.senderCount).toBe(2);
  });

  it('an insecure keyring accepts unsigned messages, still replay-checked', () => {
    const r = receiver(Keyring.insecure());
    const bytes = encodeMeshMessage(hb(1n));
    expect(r.accept(bytes, FROM, 0).kind).toBe('accepted');
    expect(r.accept(bytes, FROM, 0)).toMatchObject({ reason: 'replayed' });
  });

  it('accepts every message type, and Uint8Array input', () => {
    const r = receiver();
    const leave = signed({ ...hb(2n), type: 'leave' });
    const release = signed({ type: 'release', senderId: 'beta', incarnation: INC, seq: 3n, configDigest: DIGEST, group: 0, target: 'alpha', pinned: false });
    expect(r.accept(signed(hb(1n)), FROM, 0)).toMatchObject({ message: { type: 'heartbeat' } });
    expect(r.accept(new Uint8Array(leave), FROM, 0)).toMatchObject({ kind: 'accepted', message: { type: 'leave' } });
    expect(r.accept(release, FROM, 0)).toMatchObject({ kind: 'accepted', message: { type: 'release', target: 'alpha', pinned: false, group: 0 } });
  });

  it('every bit flip of a signed message is dropped, and the original still gets through', () => {
    const r = receiver(new Keyring([{ id: 1, key: K1 }, { id: 0x0101, key: K2 }], 1));
    const bytes = signed(hb(7n));
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(bytes);
        tampered[i]! ^= 1 << bit;
        const result = r.accept(tampered, FROM, 0);
        expect(result.kind, `byte ${i} bit ${bit}`).toBe('dropped');
      }
    }
    expect(r.counters.accepted).toBe(0);
    expect(r.accept(bytes, FROM, 0).kind).toBe('accepted');
  });

  it('counter snapshots are copies; resetCounters zeroes them but keeps replay state', () => {
    const r = receiver();
    const bytes = signed(hb(1n));
    r.accept(bytes, FROM, 0);
    const snapshot = r.counters;
    r.accept(bytes, FROM, 0);
    expect(snapshot.replayed).toBe(0);
    r.resetCounters();
    expect(Object.values(r.counters).every((v) => v === 0)).toBe(true);
    expect(Object.keys(r.counters).sort()).toEqual([...MESH_DROP_REASONS, 'accepted', 'digest-mismatch'].sort());
    expect(r.accept(bytes, FROM, 0)).toMatchObject({ reason: 'replayed' });
  });

  it('validates its options', () => {
    expect(() => new MeshReceiver({ nodeId: '', keyring: keyring(), configDigest: DIGEST })).toThrow(/nodeId/);
    expect(() => new MeshReceiver({ nodeId: 'a', keyring: keyring(), configDigest: Buffer.alloc(15) })).toThrow(/configDigest/);
    expect(() => new MeshReceiver({ nodeId: 'a', keyring: keyring(), configDigest: DIGEST, maxSenders: 0 })).toThrow(/maxSenders/);
  });
});
