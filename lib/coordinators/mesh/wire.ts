/**
 * Binary codec of the heartbeat mesh: the UDP messages nodes exchange to
 * tell each other they are alive, which groups (virtual addresses) they hold,
 * that they are leaving, or that they hand one group to a named node.
 *
 * Pure: no sockets, no clocks. All integers are big-endian (network order).
 *
 * Layout (offsets in bytes; `L` = sender id length, `T` = target id length,
 * `N` = group count, `A` = offset of the auth trailer = end of the body):
 *
 * ```
 * header (41 + L bytes)
 *   0        4  magic "VIPA" (56 49 50 41)
 *   4        1  version = 1
 *   5        1  type: 1 heartbeat, 2 leave, 3 release, 4 move-request
 *   6        2  flags: bit 0 = authenticated; the other bits must be 0
 *   8        1  sender id length L, 1..64
 *   9        L  sender id, UTF-8, no control characters
 *   9+L      8  incarnation u64 (sender process start time, ms)
 *   17+L     8  seq u64 (strictly increasing within one incarnation)
 *   25+L    16  config digest
 * body, heartbeat and leave (7 + 4N bytes), at H = 41 + L
 *   H        1  health: 0 healthy, 1 unhealthy, 2 draining
 *   H+1      4  intervalMs u32, ≥ 1 (the sender's heartbeat interval)
 *   H+5      2  group count N
 *   H+7     4N  per group: index u16, status u8 (low 7 bits: 0 standby,
 *               1 holding, 2 ineligible, 3 releasing, 4 starting; bit 7:
 *               pinned there by an operator), priority u8 (255 = home)
 * body, release and move-request (4 + T bytes), at H
 *   H        2  group index
 *   H+2      1  flags: bit 0 = pinned (an operator move); other bits 0
 *   H+3      1  target id length T, 0..64 (0: release to nobody in particular)
 *   H+4      T  target node id, same rules as the sender id
 * auth trailer, only when flags bit 0 is set (34 bytes), at A
 *   A        2  key id u16
 *   A+2     32  HMAC-SHA256 (RFC 2104, FIPS 180-4) over bytes [0, A+2):
 *               the whole header, the body and the key id
 * ```
 *
 * Why the MAC covers the key id: an attacker who flips the key id must not
 * get the receiver to try a different key on the same MAC; covering every
 * byte before the MAC also means there is no unauthenticated byte at all
 * (magic, version and flags included), so a tampered byte anywhere fails.
 *
 * Why the message carries the sender's incarnation and seq: with the receiver's
 * sliding window (lib/coordinators/mesh/replay.ts, RFC 4303 §3.4.3) they make a
 * captured heartbeat worthless to replay, and a restarted sender (new
 * incarnation) is recognised without any shared state.
 *
 * Decoding checks structure only; authentication is {@link Keyring.verify}'s
 * job, and {@link MeshReceiver} puts decode, auth, replay and config digest
 * checks together.
 */
import { DecodeError } from '../../errors.js';
import type { Keyring } from './auth.js';

/** The four magic bytes "VIPA" as one big-endian u32. */
export const MESH_MAGIC = 0x56495041;
/** The only wire version this codec speaks. */
export const MESH_VERSION = 1;
/** Flags bit 0: the message ends with a key id and an HMAC-SHA256. */
export const MESH_FLAG_AUTHENTICATED = 0x0001;
/** Length of the config digest field: the first 16 bytes of a hash of the shared config. */
export const MESH_CONFIG_DIGEST_LENGTH = 16;
/** Length of the HMAC-SHA256 output (RFC 2104 with SHA-256: L = 32). */
export const MESH_MAC_LENGTH = 32;
/** Length of the auth trailer: key id u16 + MAC. */
export const MESH_AUTH_TRAILER_LENGTH = 2 + MESH_MAC_LENGTH;
/** Longest node id in UTF-8 bytes (the length byte allows 255; 64 keeps messages small). */
export const MESH_MAX_NODE_ID_BYTES = 64;
/** Largest UDP payload over IPv4 (65535 − 20 IP − 8 UDP): no encoded message may exceed it. */
export const MESH_MAX_MESSAGE_LENGTH = 65507;
/** Priority value that marks the sender as the group's home node. */
export const MESH_PRIORITY_HOME = 255;

/** Header length before the id: magic 4, version 1, type 1, flags 2, id length 1. */
const ID_OFFSET = 9;
/** Fixed header bytes after the id: incarnation 8, seq 8, digest 16. */
const HEADER_FIXED_AFTER_ID = 32;
/** Heartbeat/leave body without groups: health 1, interval 4, count 2. */
const STATUS_BODY_FIXED = 7;
/** One group entry: index 2, status 1, priority 1. */
const GROUP_ENTRY = 4;
/** Smallest message at all: 1-byte id, release to nobody (46 bytes). */
const MIN_MESSAGE_LENGTH = ID_OFFSET + 1 + HEADER_FIXED_AFTER_ID + 4;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const CODEC = 'heartbeat';

/** Numeric type codes on the wire. */
const TYPE_CODES = { heartbeat: 1, leave: 2, release: 3, 'move-request': 4 } as const;
const TYPE_NAMES = [undefined, 'heartbeat', 'leave', 'release', 'move-request'] as const;

/** The sender's own health, as it judges it. */
export type MeshHealth = 'healthy' | 'unhealthy' | 'draining';
const HEALTH_NAMES: readonly MeshHealth[] = ['healthy', 'unhealthy', 'draining'];
const HEALTH_CODES: Readonly<Record<MeshHealth, number>> = { healthy: 0, unhealthy: 1, draining: 2 };

/** The sender's relation to one group. */
export type MeshGroupStatus = 'standby' | 'holding' | 'ineligible' | 'releasing' | 'starting';
const STATUS_NAMES: readonly MeshGroupStatus[] = ['standby', 'holding', 'ineligible', 'releasing', 'starting'];
const STATUS_CODES: Readonly<Record<MeshGroupStatus, number>> = { standby: 0, holding: 1, ineligible: 2, releasing: 3, starting: 4 };
/** Bit 7 of a group's status byte: the sender holds the group because an operator moved it there. */
const STATUS_PINNED = 0x80;
/** Bit 0 of a release's flags: the handoff is an operator move; the target keeps the group pinned. */
const RELEASE_PINNED = 0x01;

/** What a sender says about one group (a virtual address set, by its position in the shared config). */
export interface MeshGroupState {
  /** Position of the group in the shared config, 0..65535. */
  index: number;
  /** Whether the sender stands by, holds, may not take, is releasing, or is still starting. */
  status: MeshGroupStatus;
  /** The sender holds the group because an operator moved it there (default false). */
  pinned?: boolean;
  /** The sender's rank for this group: 1..254 backups (higher first), 255 = home, 0 = not ranked. */
  priority: number;
}

/** Authentication trailer of a decoded message. `mac` is a view into the decoded bytes. */
export interface MeshAuth {
  /** Which key signed the message. */
  keyId: number;
  /** The 32-byte HMAC-SHA256 as received (a view, not a copy). */
  mac: Buffer;
  /** Offset of the MAC in the raw bytes: the MAC covers bytes [0, macOffset). */
  macOffset: number;
}

/** Fields every mesh message carries. */
export interface MeshHeader {
  /** The sending node's id (1..64 UTF-8 bytes, no control characters). */
  senderId: string;
  /** The sender process's start time in ms: a larger value means the sender restarted. */
  incarnation: bigint;
  /** Per-incarnation sequence number, strictly increasing. */
  seq: bigint;
  /**
   * 16-byte digest of the sender's shared config. Nodes whose digests differ
   * compute different successors, so a mismatch is reported, not ignored.
   * Decoded messages hold a view into the input bytes.
   */
  configDigest: Uint8Array;
  /** Present on decoded authenticated messages; ignored by the encoder (the keyring decides). */
  auth?: MeshAuth;
}

/** Body of heartbeat and leave messages: the sender's health and its view of every group it knows. */
export interface MeshStatusBody {
  /** The sender's own health. */
  health: MeshHealth;
  /** The sender's heartbeat interval in ms (1..2^32−1): receivers time out relative to it. */
  intervalMs: number;
  /** The sender's state per group. Indexes must be distinct. */
  groups: readonly MeshGroupState[];
}

/** "I am alive": sent every interval. */
export interface MeshHeartbeat extends MeshHeader, MeshStatusBody {
  type: 'heartbeat';
}

/** Graceful leave: "I am going away, take over now" — backups need not wait for a timeout. */
export interface MeshLeave extends MeshHeader, MeshStatusBody {
  type: 'leave';
}

/** Handoff of one group to a named node (giveback to home, operator move, drain). */
export interface MeshRelease extends MeshHeader {
  type: 'release';
  /** The group handed off. */
  group: number;
  /** The node that should take it now; undefined when the sender names nobody (split brain lost). */
  target: string | undefined;
  /** An operator move: the target keeps the group pinned. */
  pinned: boolean;
}

/** Asks the holder of a group to hand it to `target` (an operator move issued on another node). */
export interface MeshMoveRequest extends MeshHeader {
  type: 'move-request';
  group: number;
  target: string;
}

/** Any mesh message, discriminated by `type`. */
export type MeshMessage = MeshHeartbeat | MeshLeave | MeshRelease | MeshMoveRequest;

// ---------------------------------------------------------------------------
// Node ids

/**
 * True for code units that are control characters: C0 (U+0000–U+001F), DEL
 * and C1 (U+007F–U+009F). Node ids appear in logs and status output, where
 * control characters could forge lines or escape sequences.
 */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

/** Why `id` is not an acceptable node id, or undefined when it is. */
function nodeIdProblem(id: string): string | undefined {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (isControl(c)) return `control character U+${c.toString(16).padStart(4, '0')} at index ${i}`;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = id.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return `lone surrogate at index ${i}`;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return `lone surrogate at index ${i}`;
    }
  }
  return undefined;
}

/**
 * Checks a node id as the encoder would and returns its UTF-8 bytes.
 * Throws a TypeError or RangeError naming the field.
 */
export function nodeIdBytes(id: string, field = 'node id'): Buffer {
  if (typeof id !== 'string') throw new TypeError(`${field} must be a string, got ${typeof id}`);
  const problem = nodeIdProblem(id);
  if (problem !== undefined) throw new RangeError(`${field} ${JSON.stringify(id)}: ${problem}`);
  const bytes = Buffer.from(id, 'utf8');
  if (bytes.length < 1 || bytes.length > MESH_MAX_NODE_ID_BYTES) {
    throw new RangeError(`${field} ${JSON.stringify(id)}: must be 1..${MESH_MAX_NODE_ID_BYTES} UTF-8 bytes, is ${bytes.length}`);
  }
  return bytes;
}

// A node encodes its own id on every heartbeat: a one-entry cache keeps the
// validation and UTF-8 encoding off the hot path.
let cachedId = '';
let cachedIdBytes: Buffer = Buffer.alloc(0);
function cachedNodeIdBytes(id: string, field: string): Buffer {
  if (id === cachedId && cachedIdBytes.length > 0) return cachedIdBytes;
  const bytes = nodeIdBytes(id, field);
  cachedId = id;
  cachedIdBytes = bytes;
  return bytes;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Reads a node id of `len` bytes at `off`, or throws DecodeError('bad-node-id'). */
function readNodeId(buf: Buffer, off: number, len: number, field: string): string {
  let ascii = true;
  for (let i = off; i < off + len; i++) {
    const b = buf[i]!;
    if (b < 0x20 || b === 0x7f) {
      throw new DecodeError(CODEC, 'bad-node-id', i, `${field} has control byte 0x${b.toString(16).padStart(2, '0')}`);
    }
    if (b > 0x7f) ascii = false;
  }
  if (ascii) return buf.toString('latin1', off, off + len);
  let id: string;
  try {
    id = utf8Fatal.decode(buf.subarray(off, off + len));
  } catch {
    throw new DecodeError(CODEC, 'bad-node-id', off, `${field} is not valid UTF-8`);
  }
  const problem = nodeIdProblem(id);
  if (problem !== undefined) throw new DecodeError(CODEC, 'bad-node-id', off, `${field}: ${problem}`);
  return id;
}

// ---------------------------------------------------------------------------
// Encoding

function checkU64(value: bigint, field: string): void {
  if (typeof value !== 'bigint') throw new TypeError(`${field} must be a bigint, got ${typeof value}`);
  if (value < 0n || value > U64_MAX) throw new RangeError(`${field} ${value} is outside 0..2^64-1`);
}

function checkInt(value: number, max: number, field: string, min = 0): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${field} ${String(value)} is not an integer in ${min}..${max}`);
  }
}

function statusBodyLength(msg: MeshStatusBody): number {
  const groups = msg.groups;
  if (!Array.isArray(groups)) throw new TypeError('groups must be an array');
  checkInt(groups.length, 0xffff, 'group count');
  return STATUS_BODY_FIXED + GROUP_ENTRY * groups.length;
}

/** Writes a heartbeat/leave body at `o`; returns the offset after it. */
function writeStatusBody(buf: Buffer, o: number, msg: MeshStatusBody): number {
  const health = HEALTH_CODES[msg.health];
  if (health === undefined) throw new RangeError(`health ${String(msg.health)} is not one of ${HEALTH_NAMES.join(', ')}`);
  checkInt(msg.intervalMs, 0xffff_ffff, 'intervalMs', 1);
  const groups = msg.groups;
  buf[o] = health;
  buf.writeUInt32BE(msg.intervalMs, o + 1);
  buf.writeUInt16BE(groups.length, o + 5);
  o += STATUS_BODY_FIXED;
  // Duplicate indexes would make "the sender's state for group i" ambiguous.
  let seen: Set<number> | undefined;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    checkInt(g.index, 0xffff, `groups[${i}].index`);
    const status = STATUS_CODES[g.status];
    if (status === undefined) throw new RangeError(`groups[${i}].status ${String(g.status)} is not one of ${STATUS_NAMES.join(', ')}`);
    checkInt(g.priority, 255, `groups[${i}].priority`);
    if (groups.length > 1) {
      seen ??= new Set();
      if (seen.has(g.index)) throw new RangeError(`groups[${i}].index ${g.index} appears twice`);
      seen.add(g.index);
    }
    buf.writeUInt16BE(g.index, o);
    buf[o + 2] = status | (g.pinned ? STATUS_PINNED : 0);
    buf[o + 3] = g.priority;
    o += GROUP_ENTRY;
  }
  return o;
}

/**
 * Encodes a mesh message. With a keyring that is not {@link Keyring.insecure},
 * the message is authenticated with the keyring's current key (flags bit 0,
 * key id, HMAC-SHA256 over every preceding byte); otherwise it is sent bare.
 * The `auth` field of `msg` is ignored.
 *
 * Throws TypeError/RangeError naming the bad field. Cost: about 1 µs
 * unauthenticated, plus one HMAC (≈2.5 µs) when signing.
 */
export function encodeMeshMessage(msg: MeshMessage, keyring?: Keyring): Buffer {
  const typeCode = TYPE_CODES[msg.type];
  if (typeCode === undefined) throw new RangeError(`message type ${String((msg as { type: unknown }).type)} is not heartbeat, leave, release or move-request`);
  const id = cachedNodeIdBytes(msg.senderId, 'senderId');
  checkU64(msg.incarnation, 'incarnation');
  checkU64(msg.seq, 'seq');
  const digest = msg.configDigest;
  if (!(digest instanceof Uint8Array) || digest.length !== MESH_CONFIG_DIGEST_LENGTH) {
    throw new RangeError(`configDigest must be ${MESH_CONFIG_DIGEST_LENGTH} bytes`);
  }
  const signing = keyring !== undefined && !keyring.insecure;

  let target: Buffer | undefined;
  let bodyLength: number;
  if (msg.type === 'release' || msg.type === 'move-request') {
    checkInt(msg.group, 0xffff, 'group');
    target = msg.target === undefined && msg.type === 'release' ? Buffer.alloc(0) : nodeIdBytes(msg.target!, 'target');
    bodyLength = 4 + target.length;
  } else {
    bodyLength = statusBodyLength(msg);
  }
  const bodyOffset = ID_OFFSET + id.length + HEADER_FIXED_AFTER_ID;
  const authOffset = bodyOffset + bodyLength;
  const total = authOffset + (signing ? MESH_AUTH_TRAILER_LENGTH : 0);
  if (total > MESH_MAX_MESSAGE_LENGTH) {
    throw new RangeError(`message of ${total} bytes exceeds the UDP limit of ${MESH_MAX_MESSAGE_LENGTH} (too many groups)`);
  }

  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32BE(MESH_MAGIC, 0);
  buf[4] = MESH_VERSION;
  buf[5] = typeCode;
  buf.writeUInt16BE(signing ? MESH_FLAG_AUTHENTICATED : 0, 6);
  buf[8] = id.length;
  id.copy(buf, ID_OFFSET);
  let o = ID_OFFSET + id.length;
  buf.writeBigUInt64BE(msg.incarnation, o);
  buf.writeBigUInt64BE(msg.seq, o + 8);
  buf.set(digest, o + 16);
  o = bodyOffset;
  if (msg.type === 'release' || msg.type === 'move-request') {
    buf.writeUInt16BE(msg.group, o);
    buf[o + 2] = msg.type === 'release' && msg.pinned ? RELEASE_PINNED : 0;
    buf[o + 3] = target!.length;
    target!.copy(buf, o + 4);
  } else {
    writeStatusBody(buf, o, msg);
  }
  if (signing) sign(buf, authOffset, keyring);
  return buf;
}

/** Writes the key id at `authOffset` and the MAC over [0, authOffset + 2) after it. */
function sign(buf: Buffer, authOffset: number, keyring: Keyring): void {
  const keyId = keyring.currentKeyId;
  buf.writeUInt16BE(keyId, authOffset);
  const macOffset = authOffset + 2;
  keyring.mac(keyId, buf.subarray(0, macOffset)).copy(buf, macOffset);
}

/**
 * Encodes `count` copies of `template` with seq = `firstSeq`, `firstSeq + 1`,
 * …, each signed with its own MAC (the template's own `seq` is ignored).
 *
 * Why: a native sender thread can put these on the wire on schedule while the
 * JavaScript event loop is stalled (GC, a slow callback), so a busy-but-alive
 * node is not declared dead. Each buffer is still unique and replay-safe
 * because seq differs. The template is encoded (and validated) once; every
 * further message is a copy of those bytes with the 8 seq bytes patched and
 * the MAC recomputed.
 *
 * The returned buffers are consecutive, equally long views into one
 * allocation of `count × length` bytes (`buffers[0].buffer`, stride =
 * `buffers[0].length`), so they can be handed to native code as one block.
 */
export function encodeMeshMessageBatch(template: MeshMessage, firstSeq: bigint, count: number, keyring?: Keyring): Buffer[] {
  checkU64(firstSeq, 'firstSeq');
  checkInt(count, 1_000_000, 'count', 1);
  if (firstSeq + BigInt(count - 1) > U64_MAX) throw new RangeError(`seq would pass 2^64-1 (firstSeq ${firstSeq}, count ${count})`);
  const first = encodeMeshMessage({ ...template, seq: firstSeq }, keyring);
  const stride = first.length;
  const signing = keyring !== undefined && !keyring.insecure;
  const seqOffset = ID_OFFSET + first[8]! + 8;
  const macOffset = stride - MESH_MAC_LENGTH;
  const keyId = signing ? keyring.currentKeyId : 0;
  // Its own ArrayBuffer (not the shared pool), so native code may keep it.
  const block = Buffer.allocUnsafeSlow(stride * count);
  const out: Buffer[] = new Array(count);
  let seq = firstSeq;
  for (let i = 0; i < count; i++) {
    const start = i * stride;
    const buf = block.subarray(start, start + stride);
    if (i === 0) {
      first.copy(buf, 0);
    } else {
      block.copyWithin(start, 0, signing ? macOffset : stride);
      buf.writeBigUInt64BE(seq, seqOffset);
      if (signing) keyring.mac(keyId, buf.subarray(0, macOffset)).copy(buf, macOffset);
    }
    out[i] = buf;
    seq++;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

function truncated(off: number, need: number, have: number, what: string): DecodeError {
  return new DecodeError(CODEC, 'truncated', off, `${what} needs ${need} bytes, ${have} left`);
}

/** Reads a heartbeat/leave body at `o`; returns its fields and the offset after it. */
function readStatusBody(buf: Buffer, o: number): { body: MeshStatusBody; end: number } {
  const left = buf.length - o;
  if (left < STATUS_BODY_FIXED) throw truncated(o, STATUS_BODY_FIXED, left, 'status body');
  const healthCode = buf[o]!;
  const health = HEALTH_NAMES[healthCode];
  if (health === undefined) throw new DecodeError(CODEC, 'bad-value', o, `health ${healthCode} is not 0..2`);
  const intervalMs = buf.readUInt32BE(o + 1);
  if (intervalMs === 0) throw new DecodeError(CODEC, 'bad-value', o + 1, 'intervalMs is 0');
  const count = buf.readUInt16BE(o + 5);
  o += STATUS_BODY_FIXED;
  if (buf.length - o < count * GROUP_ENTRY) {
    throw truncated(o, count * GROUP_ENTRY, buf.length - o, `${count} groups`);
  }
  const groups: MeshGroupState[] = new Array(count);
  let seen: Set<number> | undefined;
  for (let i = 0; i < count; i++) {
    const index = buf.readUInt16BE(o);
    const statusCode = buf[o + 2]! & ~STATUS_PINNED;
    const status = STATUS_NAMES[statusCode];
    if (status === undefined) throw new DecodeError(CODEC, 'bad-value', o + 2, `group ${index} status ${statusCode} is not 0..4`);
    if (count > 1) {
      seen ??= new Set();
      if (seen.has(index)) throw new DecodeError(CODEC, 'duplicate-group', o, `group ${index} appears twice`);
      seen.add(index);
    }
    groups[i] = (buf[o + 2]! & STATUS_PINNED) !== 0 ? { index, status, priority: buf[o + 3]!, pinned: true } : { index, status, priority: buf[o + 3]! };
    o += GROUP_ENTRY;
  }
  return { body: { health, intervalMs, groups }, end: o };
}

/**
 * Decodes one mesh message, checking structure only (no MAC check, no replay
 * check: see {@link Keyring.verify} and {@link MeshReceiver}).
 *
 * Throws only {@link DecodeError} (codec 'heartbeat'), with reason:
 * 'short' (under 46 bytes, the smallest message), 'bad-magic',
 * 'unknown-version', 'unknown-type', 'bad-flags' (a reserved bit set),
 * 'bad-length' (node id length 0 or over 64), 'bad-node-id' (control
 * characters or invalid UTF-8), 'truncated', 'bad-value' (health, status or
 * zero interval), 'duplicate-group', 'trailing' (bytes after the message).
 *
 * `configDigest` and `auth.mac` are views into `bytes`: copy them if the
 * buffer is reused.
 */
export function decodeMeshMessage(bytes: Uint8Array): MeshMessage {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.length;
  if (n < MIN_MESSAGE_LENGTH) throw new DecodeError(CODEC, 'short', n, `${n} bytes, the smallest message has ${MIN_MESSAGE_LENGTH}`);
  if (buf.readUInt32BE(0) !== MESH_MAGIC) throw new DecodeError(CODEC, 'bad-magic', 0, `magic 0x${buf.readUInt32BE(0).toString(16)} is not "VIPA"`);
  if (buf[4] !== MESH_VERSION) throw new DecodeError(CODEC, 'unknown-version', 4, `version ${buf[4]}, this codec speaks ${MESH_VERSION}`);
  const type = TYPE_NAMES[buf[5]!];
  if (type === undefined) throw new DecodeError(CODEC, 'unknown-type', 5, `type ${buf[5]} is not 1..4`);
  const flags = buf.readUInt16BE(6);
  if ((flags & ~MESH_FLAG_AUTHENTICATED) !== 0) throw new DecodeError(CODEC, 'bad-flags', 6, `reserved flag bits set (0x${flags.toString(16)})`);
  const idLength = buf[8]!;
  if (idLength < 1 || idLength > MESH_MAX_NODE_ID_BYTES) {
    throw new DecodeError(CODEC, 'bad-length', 8, `sender id length ${idLength} is not 1..${MESH_MAX_NODE_ID_BYTES}`);
  }
  const bodyOffset = ID_OFFSET + idLength + HEADER_FIXED_AFTER_ID;
  if (n < bodyOffset) throw truncated(ID_OFFSET, bodyOffset - ID_OFFSET, n - ID_OFFSET, 'header');
  const senderId = readNodeId(buf, ID_OFFSET, idLength, 'sender id');
  let o = ID_OFFSET + idLength;
  const incarnation = buf.readBigUInt64BE(o);
  const seq = buf.readBigUInt64BE(o + 8);
  const configDigest = buf.subarray(o + 16, o + 16 + MESH_CONFIG_DIGEST_LENGTH);
  o = bodyOffset;

  let msg: MeshMessage;
  if (type === 'release' || type === 'move-request') {
    if (n - o < 4) throw truncated(o, 4, n - o, `${type} body`);
    const group = buf.readUInt16BE(o);
    const bodyFlags = buf[o + 2]!;
    if ((bodyFlags & ~(type === 'release' ? RELEASE_PINNED : 0)) !== 0) {
      throw new DecodeError(CODEC, 'bad-flags', o + 2, `reserved ${type} flag bits set (0x${bodyFlags.toString(16)})`);
    }
    const targetLength = buf[o + 3]!;
    const minTarget = type === 'release' ? 0 : 1;
    if (targetLength < minTarget || targetLength > MESH_MAX_NODE_ID_BYTES) {
      throw new DecodeError(CODEC, 'bad-length', o + 3, `target id length ${targetLength} is not ${minTarget}..${MESH_MAX_NODE_ID_BYTES}`);
    }
    if (n - o - 4 < targetLength) throw truncated(o + 4, targetLength, n - o - 4, 'target id');
    const target = targetLength === 0 ? undefined : readNodeId(buf, o + 4, targetLength, 'target id');
    o += 4 + targetLength;
    msg =
      type === 'release'
        ? { type, senderId, incarnation, seq, configDigest, group, target, pinned: (bodyFlags & RELEASE_PINNED) !== 0 }
        : { type, senderId, incarnation, seq, configDigest, group, target: target! };
  } else {
    const { body, end } = readStatusBody(buf, o);
    o = end;
    msg = { type, senderId, incarnation, seq, configDigest, health: body.health, intervalMs: body.intervalMs, groups: body.groups };
  }

  const left = n - o;
  if ((flags & MESH_FLAG_AUTHENTICATED) !== 0) {
    if (left < MESH_AUTH_TRAILER_LENGTH) throw truncated(o, MESH_AUTH_TRAILER_LENGTH, left, 'auth trailer');
    if (left > MESH_AUTH_TRAILER_LENGTH) {
      throw new DecodeError(CODEC, 'trailing', o + MESH_AUTH_TRAILER_LENGTH, `${left - MESH_AUTH_TRAILER_LENGTH} bytes after the MAC`);
    }
    msg.auth = { keyId: buf.readUInt16BE(o), mac: buf.subarray(o + 2, n), macOffset: o + 2 };
  } else if (left !== 0) {
    throw new DecodeError(CODEC, 'trailing', o, `${left} bytes after the body of an unauthenticated message`);
  }
  return msg;
}
