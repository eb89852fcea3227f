/**
 * The receiving half of the heartbeat mesh, without the socket: bytes in,
 * a verdict out. Puts together, in this order,
 *
 * 1. structure ({@link decodeMeshMessage}) → 'malformed';
 * 2. own node id → 'self' (multicast loopback, or a second node misconfigured
 *    with our id) — before the MAC, so our own traffic costs no HMAC;
 * 3. replay pre-check ({@link ReplayWindow.check}) → 'stale-incarnation',
 *    'replayed', 'too-old' — before the MAC to drop replays cheaply, as
 *    RFC 4303 §3.4.3 recommends;
 * 4. authentication ({@link Keyring.verify}, RFC 2104 HMAC-SHA256) →
 *    'unauthenticated', 'unknown-key', 'expired-key', 'bad-mac';
 * 5. replay window update — only after the MAC verified (RFC 4303 §3.4.3),
 *    so forged packets cannot advance the window and block real ones;
 * 6. config digest: a fresh, authentic message from a node with a different
 *    shared config is returned as a distinct 'digest-mismatch' outcome, not
 *    dropped silently — both nodes would compute different successors, and
 *    the operator must hear about it.
 *
 * Never throws on network input. Every outcome is counted, so a node can
 * export "dropped heartbeats by reason" and an operator can tell an attack
 * (bad-mac), a rollout mistake (unknown-key, digest-mismatch) and a lossy
 * network apart.
 */
import { DecodeError } from '../../errors.js';
import type { Keyring } from './auth.js';
import { ReplayWindow } from './replay.js';
import { MESH_CONFIG_DIGEST_LENGTH, decodeMeshMessage, nodeIdBytes, type MeshMessage } from './wire.js';

/** Why {@link MeshReceiver.accept} dropped a datagram. */
export type MeshDropReason =
  | 'malformed'
  | 'self'
  | 'unauthenticated'
  | 'unknown-key'
  | 'expired-key'
  | 'bad-mac'
  | 'stale-incarnation'
  | 'replayed'
  | 'too-old'
  | 'sender-limit';

/** Every drop reason, for iterating counters. */
export const MESH_DROP_REASONS: readonly MeshDropReason[] = [
  'malformed',
  'self',
  'unauthenticated',
  'unknown-key',
  'expired-key',
  'bad-mac',
  'stale-incarnation',
  'replayed',
  'too-old',
  'sender-limit',
];

/** Counter names: every drop reason, plus the two delivered outcomes. */
export type MeshReceiverCounter = MeshDropReason | 'accepted' | 'digest-mismatch';

/** What {@link MeshReceiver.accept} made of one datagram. */
export type MeshAcceptResult =
  /** A fresh, authentic message from a peer with the same config: act on it. */
  | { kind: 'accepted'; message: MeshMessage; from: string }
  /**
   * A fresh, authentic message from a peer whose config digest differs: report
   * a config mismatch (its claims are computed from a different config).
   */
  | { kind: 'digest-mismatch'; message: MeshMessage; from: string }
  /** Dropped; `detail` says more for 'malformed' (the decoder's reason and offset). */
  | { kind: 'dropped'; reason: MeshDropReason; from: string; detail?: string };

/** Options of a {@link MeshReceiver}. */
export interface MeshReceiverOptions {
  /** This node's id: messages claiming it are dropped as 'self'. */
  nodeId: string;
  /** Keys to verify with ({@link Keyring.insecure} accepts everything). */
  keyring: Keyring;
  /** 16-byte digest of this node's shared config. */
  configDigest: Uint8Array;
  /**
   * Most senders to keep replay state for (default 1024). Beyond it, messages
   * from new senders are dropped ('sender-limit') rather than evicting
   * someone's window: eviction would reopen that sender to replays. Only
   * authentic messages create state, so with a secure keyring this bounds
   * a misconfiguration, not an attacker.
   */
  maxSenders?: number;
}

function zeroCounters(): Record<MeshReceiverCounter, number> {
  const counters = { accepted: 0, 'digest-mismatch': 0 } as Record<MeshReceiverCounter, number>;
  for (const reason of MESH_DROP_REASONS) counters[reason] = 0;
  return counters;
}

function checkDigest(digest: Uint8Array): Buffer {
  if (!(digest instanceof Uint8Array) || digest.length !== MESH_CONFIG_DIGEST_LENGTH) {
    throw new RangeError(`configDigest must be ${MESH_CONFIG_DIGEST_LENGTH} bytes`);
  }
  return Buffer.from(digest);
}

/**
 * Decode + self check + replay + auth + config digest, with counters.
 * Pure: the caller supplies the bytes, the source address and the time.
 */
export class MeshReceiver {
  private readonly nodeId: string;
  private readonly keyring: Keyring;
  private digest: Buffer;
  private readonly maxSenders: number;
  private readonly windows = new Map<string, ReplayWindow>();
  private readonly count = zeroCounters();

  constructor(options: MeshReceiverOptions) {
    nodeIdBytes(options.nodeId, 'nodeId');
    this.nodeId = options.nodeId;
    this.keyring = options.keyring;
    this.digest = checkDigest(options.configDigest);
    const max = options.maxSenders ?? 1024;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxSenders ${String(max)} is not a positive integer`);
    this.maxSenders = max;
  }

  /**
   * Judges one datagram. `from` is the source address (for the caller's
   * bookkeeping and logs; it is not trusted for anything), `now` the
   * current time in ms on the keyring's clock (key expiry). Never throws.
   */
  accept(bytes: Uint8Array, from: string, now: number): MeshAcceptResult {
    let message: MeshMessage;
    try {
      message = decodeMeshMessage(bytes);
    } catch (err) {
      const detail = err instanceof DecodeError ? `${err.reason} at byte ${err.offset}` : String(err);
      return this.drop('malformed', from, detail);
    }
    if (message.senderId === this.nodeId) return this.drop('self', from);

    const window = this.windows.get(message.senderId);
    if (window !== undefined) {
      const pre = window.check(message.incarnation, message.seq);
      if (!pre.ok) return this.drop(pre.reason, from);
    }

    const auth = this.keyring.verify(message, bytes, now);
    if (!auth.ok) return this.drop(auth.reason, from);

    if (window !== undefined) {
      window.update(message.incarnation, message.seq);
    } else {
      if (this.windows.size >= this.maxSenders) return this.drop('sender-limit', from);
      const fresh = new ReplayWindow();
      fresh.update(message.incarnation, message.seq);
      this.windows.set(message.senderId, fresh);
    }

    if (!this.digest.equals(message.configDigest)) {
      this.count['digest-mismatch']++;
      return { kind: 'digest-mismatch', message, from };
    }
    this.count.accepted++;
    return { kind: 'accepted', message, from };
  }

  /** A snapshot of the counters: accepted, digest-mismatch and every drop reason. */
  get counters(): Readonly<Record<MeshReceiverCounter, number>> {
    return { ...this.count };
  }

  /** Sets every counter back to 0 (replay state is kept). */
  resetCounters(): void {
    Object.assign(this.count, zeroCounters());
  }

  /** Replaces the local config digest (after a config reload). */
  setConfigDigest(digest: Uint8Array): void {
    this.digest = checkDigest(digest);
  }

  /** Number of senders with replay state. */
  get senderCount(): number {
    return this.windows.size;
  }

  /**
   * Forgets a sender's replay state (it left the config). Its next message,
   * from any incarnation, starts a new window — so only call this for nodes
   * that are gone for good: a forgotten sender can be replayed once more.
   */
  forgetSender(senderId: string): void {
    this.windows.delete(senderId);
  }

  private drop(reason: MeshDropReason, from: string, detail?: string): MeshAcceptResult {
    this.count[reason]++;
    return detail === undefined ? { kind: 'dropped', reason, from } : { kind: 'dropped', reason, from, detail };
  }
}
