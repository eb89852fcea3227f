/**
 * Heartbeat authentication: a keyring of shared secrets, HMAC-SHA256
 * (RFC 2104 with SHA-256, FIPS 180-4) over every byte of a mesh message
 * before the MAC (see lib/coordinators/mesh/wire.ts), and key rotation.
 *
 * Why authenticate at all: a heartbeat decides who holds an address. A forged
 * "leave" or "release" moves it; forged heartbeats keep a dead holder
 * "alive". An attacker on the segment can send UDP, so every message carries a
 * MAC, and the replay window (replay.ts) stops re-sending captured ones.
 *
 * Rotation without a flag day (three steps, each rolled out to all nodes):
 * 1. {@link Keyring.addKey} the new key everywhere: it is accepted, not yet used;
 * 2. {@link Keyring.rotate} (or {@link Keyring.setCurrent}) on each node: it
 *    signs with the new key, and the old one is accepted until a deadline;
 * 3. after the deadline, the old key is rejected ('expired-key'), and can be
 *    removed with {@link Keyring.removeKey}.
 *
 * Times are injected milliseconds on the caller's clock (the same clock as
 * `now` in {@link Keyring.verify}): no I/O, no clock reads here.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { MESH_MAC_LENGTH, type MeshMessage } from './wire.js';

/**
 * Shortest accepted key, in bytes. RFC 2104 §3: keys shorter than the hash
 * output L (32 for SHA-256) are "strongly discouraged"; 16 random bytes
 * (128 bits) is the floor accepted here, 32 is recommended.
 */
export const MIN_KEY_LENGTH = 16;

/** One key given to a {@link Keyring}. */
export interface KeyringEntry {
  /** Key id sent on the wire (u16), so receivers pick the right key without trying all. */
  id: number;
  /** The secret, ≥ 16 bytes (32 random bytes recommended). The keyring keeps its own copy. */
  key: Uint8Array;
  /** When set: messages signed with this key are rejected from this time on (ms, caller's clock). */
  expiresAt?: number;
}

/** Result of {@link Keyring.verify}. */
export type VerifyResult =
  | { ok: true }
  | { ok: false; reason: 'unauthenticated' | 'unknown-key' | 'expired-key' | 'bad-mac' };

const OK: VerifyResult = Object.freeze({ ok: true });
const UNAUTHENTICATED: VerifyResult = Object.freeze({ ok: false, reason: 'unauthenticated' });
const UNKNOWN_KEY: VerifyResult = Object.freeze({ ok: false, reason: 'unknown-key' });
const EXPIRED_KEY: VerifyResult = Object.freeze({ ok: false, reason: 'expired-key' });
const BAD_MAC: VerifyResult = Object.freeze({ ok: false, reason: 'bad-mac' });

/** Only {@link Keyring.insecure} holds this, so no other caller can build an insecure keyring. */
const INSECURE: unique symbol = Symbol('insecure keyring');

interface StoredKey {
  key: KeyObject;
  expiresAt: number | undefined;
}

function checkKeyId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new RangeError(`key id ${String(id)} is not an integer in 0..65535`);
}

function checkTime(t: number, field: string): void {
  if (typeof t !== 'number' || Number.isNaN(t)) throw new RangeError(`${field} ${String(t)} is not a time in ms`);
}

/**
 * The shared secrets of a mesh, by key id, and which one this node signs with.
 *
 * Secure keyrings sign every outgoing message and accept only messages with a
 * valid MAC from a known, unexpired key. {@link Keyring.insecure} builds the
 * one keyring that does neither; its `insecure` flag is true so callers can
 * warn loudly.
 */
export class Keyring {
  /** True only for {@link Keyring.insecure}: nothing is signed or checked. Callers should warn. */
  readonly insecure: boolean;
  private readonly keys = new Map<number, StoredKey>();
  private current = -1;

  /**
   * @param keys at least one key; ids must be distinct.
   * @param currentKeyId the key to sign with; must be among `keys` (any expiry it carries is cleared).
   * @param insecureToken internal: only {@link Keyring.insecure} can pass it.
   */
  constructor(keys: readonly KeyringEntry[], currentKeyId: number, insecureToken?: typeof INSECURE) {
    this.insecure = insecureToken === INSECURE;
    if (this.insecure) return;
    if (!Array.isArray(keys) || keys.length === 0) throw new RangeError('a keyring needs at least one key (or use Keyring.insecure())');
    for (const entry of keys) this.addKey(entry);
    this.setCurrent(currentKeyId);
  }

  /**
   * A keyring without keys: messages are sent unsigned and every message is
   * accepted, signed or not (signatures are not checked). Only for trusted,
   * isolated networks and tests; `insecure` is true so callers warn.
   */
  static insecure(): Keyring {
    return new Keyring([], 0, INSECURE);
  }

  /** The key id this node signs with. Throws on an insecure keyring. */
  get currentKeyId(): number {
    if (this.insecure) throw new Error('an insecure keyring has no sending key');
    return this.current;
  }

  /** Ids of all keys held, accepted or expired. */
  keyIds(): number[] {
    return [...this.keys.keys()];
  }

  /** True when a key with this id is held. */
  has(id: number): boolean {
    return this.keys.has(id);
  }

  /** The expiry of a key (undefined: never), or throws RangeError when unknown. */
  expiresAt(id: number): number | undefined {
    return this.get(id).expiresAt;
  }

  /**
   * Adds a key (accepted right away, unless `expiresAt` has passed). Throws
   * RangeError naming the key id when the id is taken or the key is shorter
   * than {@link MIN_KEY_LENGTH}.
   */
  addKey(entry: KeyringEntry): void {
    this.refuseInsecure('addKey');
    checkKeyId(entry.id);
    if (!(entry.key instanceof Uint8Array)) throw new TypeError(`key ${entry.id}: key must be a Buffer or Uint8Array`);
    if (entry.key.length < MIN_KEY_LENGTH) {
      throw new RangeError(`key ${entry.id}: ${entry.key.length} bytes, at least ${MIN_KEY_LENGTH} needed (32 random bytes recommended)`);
    }
    if (this.keys.has(entry.id)) throw new RangeError(`key ${entry.id}: id already in the keyring`);
    if (entry.expiresAt !== undefined) checkTime(entry.expiresAt, `key ${entry.id} expiresAt`);
    // createSecretKey copies the bytes: the caller may wipe its buffer.
    this.keys.set(entry.id, { key: createSecretKey(Buffer.from(entry.key)), expiresAt: entry.expiresAt });
  }

  /**
   * Signs with key `id` from now on. The sending key never expires locally, so
   * any expiry it carried is cleared (a key this node sends with must stay
   * acceptable).
   */
  setCurrent(id: number): void {
    this.refuseInsecure('setCurrent');
    this.get(id).expiresAt = undefined;
    this.current = id;
  }

  /**
   * Sets when key `id` stops being accepted (ms, caller's clock; messages
   * verified at `now >= at` are rejected as 'expired-key'). The current
   * sending key cannot expire: rotate first.
   */
  expireKey(id: number, at: number): void {
    this.refuseInsecure('expireKey');
    checkTime(at, `key ${id} expiresAt`);
    const stored = this.get(id);
    if (id === this.current) throw new RangeError(`key ${id} is the sending key: rotate to another key before expiring it`);
    stored.expiresAt = at;
  }

  /**
   * Rotation in one call: adds `next` (unless its id is already held), signs
   * with it from now on, and keeps accepting the previous sending key until
   * `previousExpiresAt`.
   */
  rotate(next: KeyringEntry, previousExpiresAt: number): void {
    this.refuseInsecure('rotate');
    checkTime(previousExpiresAt, 'previousExpiresAt');
    if (!this.keys.has(next.id)) this.addKey(next);
    const previous = this.current;
    this.setCurrent(next.id);
    if (previous !== next.id) this.expireKey(previous, previousExpiresAt);
  }

  /** Forgets a key (messages signed with it become 'unknown-key'). The sending key cannot be removed. */
  removeKey(id: number): void {
    this.refuseInsecure('removeKey');
    if (id === this.current) throw new RangeError(`key ${id} is the sending key: rotate to another key before removing it`);
    this.keys.delete(id);
  }

  /**
   * HMAC-SHA256 of `data` with key `id` (RFC 2104: H(K⊕opad ‖ H(K⊕ipad ‖ m))),
   * 32 bytes. Throws RangeError for an unknown id. Used by the encoder; does
   * not look at expiry (signing is the sender's choice).
   */
  mac(id: number, data: Uint8Array): Buffer {
    return createHmac('sha256', this.get(id).key).update(data).digest();
  }

  /**
   * Checks the authentication of a decoded message against the raw bytes it
   * was decoded from.
   *
   * Order: unsigned → 'unauthenticated'; key id not held → 'unknown-key';
   * key expired at `now` → 'expired-key'; MAC differs → 'bad-mac'. The MAC is
   * compared with crypto.timingSafeEqual so the time taken does not tell an
   * attacker how many leading bytes of a forged MAC were right.
   *
   * An insecure keyring returns ok for every message, signed or not.
   */
  verify(message: MeshMessage, rawBytes: Uint8Array, now: number): VerifyResult {
    if (this.insecure) return OK;
    const auth = message.auth;
    if (auth === undefined) return UNAUTHENTICATED;
    const stored = this.keys.get(auth.keyId);
    if (stored === undefined) return UNKNOWN_KEY;
    if (stored.expiresAt !== undefined && !(now < stored.expiresAt)) return EXPIRED_KEY;
    const { macOffset } = auth;
    if (
      auth.mac.length !== MESH_MAC_LENGTH ||
      !Number.isInteger(macOffset) ||
      macOffset < 0 ||
      macOffset + MESH_MAC_LENGTH > rawBytes.length
    ) {
      return BAD_MAC;
    }
    const expected = createHmac('sha256', stored.key).update(rawBytes.subarray(0, macOffset)).digest();
    return timingSafeEqual(expected, auth.mac) ? OK : BAD_MAC;
  }

  private get(id: number): StoredKey {
    const stored = this.keys.get(id);
    if (stored === undefined) throw new RangeError(`key ${String(id)} is not in the keyring`);
    return stored;
  }

  private refuseInsecure(op: string): void {
    if (this.insecure) throw new Error(`${op}: an insecure keyring holds no keys`);
  }
}
