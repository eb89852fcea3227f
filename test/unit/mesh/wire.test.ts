import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../lib/errors.js';
import { Keyring } from '../../../lib/coordinators/mesh/auth.js';
import {
  MESH_AUTH_TRAILER_LENGTH,
  decodeMeshMessage,
  encodeMeshMessage,
  encodeMeshMessageBatch,
  nodeIdBytes,
  type MeshHeartbeat,
  type MeshMessage,
  type MeshRelease,
} from '../../../lib/coordinators/mesh/wire.js';

/** Joins hex fragments (one per field, so each can carry a comment). */
const hex = (...parts: string[]): Buffer => Buffer.from(parts.join(''), 'hex');

// Key 0x0102 = bytes 00..1f. The MACs below were cross-checked with
// `openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f` over the bytes
// before the MAC (RFC 2104 HMAC-SHA256).
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const keyring = () => new Keyring([{ id: 0x0102, key: KEY }], 0x0102);
const DIGEST = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

const heartbeat: MeshHeartbeat = {
  type: 'heartbeat',
  senderId: 'n1',
  incarnation: 0x190_0000_0001n,
  seq: 5n,
  configDigest: DIGEST,
  health: 'draining',
  intervalMs: 10,
  groups: [
    { index: 0, status: 'holding', priority: 255 },
    { index: 3, status: 'standby', priority: 100 },
  ],
};

const release: MeshRelease = {
  type: 'release',
  senderId: 'n1',
  incarnation: 0x190_0000_0001n,
  seq: 6n,
  configDigest: DIGEST,
  group: 7,
  target: 'n2',
  pinned: true,
};

const HEADER_N1 = (type: string, flags: string, seq: string) => [
  '56495041', //          0  magic "VIPA"
  '01', //                4  version 1
  type, //                5  type
  flags, //               6  flags (bit 0 = authenticated)
  '02', //                8  sender id length 2
  '6e31', //              9  sender id "n1"
  '0000019000000001', // 11  incarnation 0x19000000001
  seq, //               19  seq
  '000102030405060708090a0b0c0d0e0f', // 27  config digest
];

const HEARTBEAT_BODY = [
  '02', //        43  health 2 = draining
  '0000000a', //  44  intervalMs 10
  '0002', //      48  group count 2
  '0000', //      50  group 0 index 0
  '01', //        52          status 1 = holding
  'ff', //        53          priority 255 = home
  '0003', //      54  group 1 index 3
  '00', //        56          status 0 = standby
  '64', //        57          priority 100
];

const vectors: { name: string; msg: MeshMessage; signed: boolean; bytes: Buffer }[] = [
  {
    name: 'heartbeat, unauthenticated',
    msg: heartbeat,
    signed: false,
    bytes: hex(...HEADER_N1('01', '0000', '0000000000000005'), ...HEARTBEAT_BODY), // 58 bytes
  },
  {
    name: 'heartbeat, authenticated',
    msg: heartbeat,
    signed: true,
    bytes: hex(
      ...HEADER_N1('01', '0001', '0000000000000005'),
      ...HEARTBEAT_BODY,
      '0102', // 58  key id 0x0102
      'e5b5962a23cad99827697aa2f8da1c9c6f2cdc80595e0d27300cc0647ee07d37', // 60  HMAC-SHA256 over [0, 60)
    ),
  },
  {
    name: 'leave, unauthenticated, no groups',
    msg: { ...heartbeat, type: 'leave', health: 'healthy', intervalMs: 0x01020304, groups: [] },
    signed: false,
    bytes: hex(
      ...HEADER_N1('02', '0000', '0000000000000005'),
      '00', //       43  health 0 = healthy
      '01020304', // 44  intervalMs
      '0000', //     48  no groups
    ),
  },
  {
    name: 'release, authenticated',
    msg: release,
    signed: true,
    bytes: hex(
      ...HEADER_N1('03', '0001', '0000000000000006'),
      '0007', // 43  group 7
      '01', //   45  flags: pinned (an operator move)
      '02', //   46  target id length 2
      '6e32', // 47  target "n2"
      '0102', // 49  key id
      'bb60472e930ce1a6172c97abb6121c062f4584c6cd6d31d6a4622d2a87fc9047', // 51  HMAC over [0, 51) (checked with openssl dgst -mac HMAC)
    ),
  },
  {
    name: 'heartbeat, every group status, u64 extremes, non-ASCII id',
    msg: {
      type: 'heartbeat',
      senderId: 'nœud',
      incarnation: 0xffff_ffff_ffff_ffffn,
      seq: 0n,
      configDigest: Buffer.alloc(16, 0xaa),
      health: 'unhealthy',
      intervalMs: 0xffff_ffff,
      groups: [
        { index: 0xffff, status: 'ineligible', priority: 0 },
        { index: 1, status: 'releasing', priority: 1 },
      ],
    },
    signed: false,
    bytes: hex(
      '56495041', //          0  magic
      '01', //                4  version
      '01', //                5  heartbeat
      '0000', //              6  flags
      '05', //                8  id length 5: "nœud" is n(6e) œ(c5 93) u(75) d(64)
      '6ec5937564', //        9  id
      'ffffffffffffffff', // 14  incarnation 2^64-1
      '0000000000000000', // 22  seq 0
      'aa'.repeat(16), //    30  digest
      '01', //               46  health 1 = unhealthy
      'ffffffff', //         47  intervalMs 2^32-1
      '0002', //             51  2 groups
      'ffff', '02', '00', // 53  group 65535 ineligible, priority 0
      '0001', '03', '01', // 57  group 1 releasing, priority 1
    ),
  },
];

function withoutAuth(msg: MeshMessage): MeshMessage {
  const { auth: _auth, ...rest } = msg;
  return rest as MeshMessage;
}

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('did not throw');
}

describe('mesh wire: byte vectors', () => {
  it.each(vectors)('$name encodes to the exact bytes', ({ msg, signed, bytes }) => {
    expect(encodeMeshMessage(msg, signed ? keyring() : undefined).toString('hex')).toBe(bytes.toString('hex'));
  });

  it.each(vectors)('$name decodes to the message', ({ msg, signed, bytes }) => {
    const decoded = decodeMeshMessage(bytes);
    expect(withoutAuth(decoded)).toEqual({ ...msg, configDigest: decoded.configDigest });
    expect(Buffer.from(decoded.configDigest).equals(Buffer.from(msg.configDigest))).toBe(true);
    if (signed) {
      expect(decoded.auth).toEqual({ keyId: 0x0102, mac: bytes.subarray(bytes.length - 32), macOffset: bytes.length - 32 });
    } else {
      expect(decoded.auth).toBeUndefined();
    }
  });

  it('the MAC is HMAC-SHA256 over header, body and key id (RFC 2104)', () => {
    for (const { bytes, signed } of vectors) {
      if (!signed) continue;
      const macOffset = bytes.length - 32;
      const expected = createHmac('sha256', KEY).update(bytes.subarray(0, macOffset)).digest();
      expect(bytes.subarray(macOffset).equals(expected)).toBe(true);
    }
  });
});

describe('mesh wire: round trips', () => {
  const ids = ['a', 'node-1.example', 'x'.repeat(64), 'ü'.repeat(32), '節点', '🛰️-7', 'with space'];
  for (const id of ids) {
    it(`sender id ${JSON.stringify(id)}`, () => {
      for (const signed of [false, true]) {
        const msg: MeshHeartbeat = { ...heartbeat, senderId: id };
        const decoded = decodeMeshMessage(encodeMeshMessage(msg, signed ? keyring() : undefined));
        expect(decoded.senderId).toBe(id);
        expect(withoutAuth(decoded)).toEqual({ ...msg, configDigest: decoded.configDigest });
      }
    });
  }

  it('many groups', () => {
    const groups = Array.from({ length: 5000 }, (_, i) => ({ index: i * 13, status: (['standby', 'holding', 'ineligible', 'releasing'] as const)[i % 4], priority: i % 256 }));
    const msg: MeshHeartbeat = { ...heartbeat, groups };
    expect((decodeMeshMessage(encodeMeshMessage(msg)) as MeshHeartbeat).groups).toEqual(groups);
  });

  it('accepts a Uint8Array that is not a Buffer, at a non-zero offset', () => {
    const bytes = encodeMeshMessage(release, keyring());
    const backing = new Uint8Array(bytes.length + 8);
    backing.set(bytes, 8);
    const decoded = decodeMeshMessage(backing.subarray(8));
    expect(decoded).toMatchObject({ type: 'release', group: 7, target: 'n2', auth: { keyId: 0x0102 } });
  });

  it('insecure keyring sends unsigned', () => {
    expect(encodeMeshMessage(heartbeat, Keyring.insecure()).equals(vectors[0]!.bytes)).toBe(true);
  });
});

describe('mesh wire: decode rejections', () => {
  const hb = vectors[0]!.bytes; // unauthenticated heartbeat, 58 bytes
  const hbSigned = vectors[1]!.bytes; // 92 bytes
  const rel = encodeMeshMessage(release); // 49 bytes, unauthenticated
  const patch = (buf: Buffer, offset: number, ...values: number[]) => {
    const copy = Buffer.from(buf);
    values.forEach((v, i) => (copy[offset + i] = v));
    return copy;
  };

  const cases: { name: string; bytes: Buffer; reason: string; offset: number }[] = [
    { name: 'empty', bytes: Buffer.alloc(0), reason: 'short', offset: 0 },
    { name: '45 bytes', bytes: hb.subarray(0, 45), reason: 'short', offset: 45 },
    { name: 'magic', bytes: patch(hb, 0, 0x76), reason: 'bad-magic', offset: 0 },
    { name: 'magic last byte', bytes: patch(hb, 3, 0x42), reason: 'bad-magic', offset: 0 },
    { name: 'version 0', bytes: patch(hb, 4, 0), reason: 'unknown-version', offset: 4 },
    { name: 'version 2', bytes: patch(hb, 4, 2), reason: 'unknown-version', offset: 4 },
    { name: 'type 0', bytes: patch(hb, 5, 0), reason: 'unknown-type', offset: 5 },
    { name: 'type 5', bytes: patch(hb, 5, 5), reason: 'unknown-type', offset: 5 },
    { name: 'reserved flag bit 1', bytes: patch(hb, 6, 0x00, 0x02), reason: 'bad-flags', offset: 6 },
    { name: 'reserved flag bit 15', bytes: patch(hb, 6, 0x80, 0x00), reason: 'bad-flags', offset: 6 },
    { name: 'sender id length 0', bytes: patch(hb, 8, 0), reason: 'bad-length', offset: 8 },
    { name: 'sender id length 65', bytes: patch(hb, 8, 65), reason: 'bad-length', offset: 8 },
    { name: 'sender id length past the end', bytes: patch(hb, 8, 30), reason: 'truncated', offset: 9 },
    { name: 'sender id with NUL', bytes: patch(hb, 10, 0x00), reason: 'bad-node-id', offset: 10 },
    { name: 'sender id with newline', bytes: patch(hb, 9, 0x0a), reason: 'bad-node-id', offset: 9 },
    { name: 'sender id with DEL', bytes: patch(hb, 10, 0x7f), reason: 'bad-node-id', offset: 10 },
    { name: 'sender id with ESC', bytes: patch(hb, 9, 0x1b), reason: 'bad-node-id', offset: 9 },
    { name: 'sender id invalid UTF-8', bytes: patch(hb, 9, 0xff), reason: 'bad-node-id', offset: 9 },
    { name: 'sender id overlong UTF-8', bytes: patch(hb, 9, 0xc0, 0xae), reason: 'bad-node-id', offset: 9 },
    { name: 'sender id C1 control U+0085', bytes: patch(hb, 9, 0xc2, 0x85), reason: 'bad-node-id', offset: 9 },
    { name: 'health 3', bytes: patch(hb, 43, 3), reason: 'bad-value', offset: 43 },
    { name: 'intervalMs 0', bytes: patch(hb, 44, 0, 0, 0, 0), reason: 'bad-value', offset: 44 },
    { name: 'group status 5', bytes: patch(hb, 56, 5), reason: 'bad-value', offset: 56 },
    { name: 'duplicate group index', bytes: patch(hb, 54, 0, 0), reason: 'duplicate-group', offset: 54 },
    { name: 'group count one too many', bytes: patch(hb, 48, 0, 3), reason: 'truncated', offset: 50 },
    { name: 'group count 65535', bytes: patch(hb, 48, 0xff, 0xff), reason: 'truncated', offset: 50 },
    { name: 'body cut inside a group', bytes: hb.subarray(0, 56), reason: 'truncated', offset: 50 },
    { name: 'body cut before the group count', bytes: hb.subarray(0, 49), reason: 'truncated', offset: 43 },
    { name: 'unauthenticated + 1 trailing byte', bytes: Buffer.concat([hb, Buffer.from([0])]), reason: 'trailing', offset: 58 },
    { name: 'unauthenticated + a whole auth trailer', bytes: patch(hbSigned, 7, 0), reason: 'trailing', offset: 58 },
    { name: 'authenticated flag without trailer', bytes: patch(hb, 7, 1), reason: 'truncated', offset: 58 },
    { name: 'MAC cut by 1 byte', bytes: hbSigned.subarray(0, hbSigned.length - 1), reason: 'truncated', offset: 58 },
    { name: 'MAC cut to the key id', bytes: hbSigned.subarray(0, 60), reason: 'truncated', offset: 58 },
    { name: 'authenticated + 1 trailing byte', bytes: Buffer.concat([hbSigned, Buffer.from([0])]), reason: 'trailing', offset: 92 },
    { name: 'release reserved flag bit', bytes: patch(rel, 45, 0x03), reason: 'bad-flags', offset: 45 },
    { name: 'release target length 65', bytes: patch(rel, 46, 65), reason: 'bad-length', offset: 46 },
    { name: 'release target past the end', bytes: patch(rel, 46, 3), reason: 'truncated', offset: 47 },
    { name: 'release target with TAB', bytes: patch(rel, 47, 0x09), reason: 'bad-node-id', offset: 47 },
    { name: 'release + trailing byte', bytes: Buffer.concat([rel, Buffer.from([0x41])]), reason: 'trailing', offset: 49 },
    { name: 'move-request with a pinned flag', bytes: patch(rel, 5, 4), reason: 'bad-flags', offset: 45 },
    { name: 'move-request without target', bytes: patch(patch(rel, 5, 4, 0, 0), 45, 0, 0).subarray(0, 47), reason: 'bad-length', offset: 46 },
  ];

  it.each(cases)('$name → $reason at $offset', ({ bytes, reason, offset }) => {
    const err = decodeError(() => decodeMeshMessage(bytes));
    expect(err.codec).toBe('heartbeat');
    expect({ reason: err.reason, offset: err.offset }).toEqual({ reason, offset });
  });

  it('every proper prefix of a valid message is refused with a DecodeError', () => {
    for (const { bytes } of vectors) {
      for (let n = 0; n < bytes.length; n++) {
        const err = decodeError(() => decodeMeshMessage(bytes.subarray(0, n)));
        expect(['short', 'truncated']).toContain(err.reason);
      }
    }
  });

  it('the config digest and MAC are views into the input', () => {
    const bytes = Buffer.from(hbSigned);
    const decoded = decodeMeshMessage(bytes);
    expect(decoded.configDigest.buffer).toBe(bytes.buffer);
    expect(decoded.auth!.mac.buffer).toBe(bytes.buffer);
  });
});

describe('mesh wire: encode validation', () => {
  const bad: { name: string; msg: MeshMessage; error: typeof RangeError | typeof TypeError; match: RegExp }[] = [
    { name: 'empty sender id', msg: { ...heartbeat, senderId: '' }, error: RangeError, match: /senderId "": must be 1\.\.64/ },
    { name: '65-byte sender id', msg: { ...heartbeat, senderId: 'x'.repeat(65) }, error: RangeError, match: /is 65/ },
    { name: '33 two-byte chars', msg: { ...heartbeat, senderId: 'ü'.repeat(33) }, error: RangeError, match: /is 66/ },
    { name: 'control char in id', msg: { ...heartbeat, senderId: 'a\nb' }, error: RangeError, match: /control character U\+000a at index 1/ },
    { name: 'C1 control in id', msg: { ...heartbeat, senderId: 'a\u0085' }, error: RangeError, match: /U\+0085/ },
    { name: 'lone surrogate in id', msg: { ...heartbeat, senderId: 'a\ud800' }, error: RangeError, match: /lone surrogate/ },
    { name: 'non-string id', msg: { ...heartbeat, senderId: 7 as unknown as string }, error: TypeError, match: /senderId must be a string/ },
    { name: 'negative seq', msg: { ...heartbeat, seq: -1n }, error: RangeError, match: /seq -1/ },
    { name: 'seq 2^64', msg: { ...heartbeat, seq: 1n << 64n }, error: RangeError, match: /seq 18446744073709551616/ },
    { name: 'number seq', msg: { ...heartbeat, seq: 5 as unknown as bigint }, error: TypeError, match: /seq must be a bigint/ },
    { name: 'incarnation 2^64', msg: { ...heartbeat, incarnation: 1n << 64n }, error: RangeError, match: /incarnation/ },
    { name: '15-byte digest', msg: { ...heartbeat, configDigest: Buffer.alloc(15) }, error: RangeError, match: /configDigest must be 16 bytes/ },
    { name: 'unknown health', msg: { ...heartbeat, health: 'sick' as 'healthy' }, error: RangeError, match: /health sick/ },
    { name: 'interval 0', msg: { ...heartbeat, intervalMs: 0 }, error: RangeError, match: /intervalMs 0/ },
    { name: 'interval 2^32', msg: { ...heartbeat, intervalMs: 2 ** 32 }, error: RangeError, match: /intervalMs/ },
    { name: 'fractional interval', msg: { ...heartbeat, intervalMs: 1.5 }, error: RangeError, match: /intervalMs 1\.5/ },
    { name: 'priority 256', msg: { ...heartbeat, groups: [{ index: 0, status: 'holding', priority: 256 }] }, error: RangeError, match: /groups\[0\]\.priority 256/ },
    { name: 'group index 65536', msg: { ...heartbeat, groups: [{ index: 65536, status: 'holding', priority: 1 }] }, error: RangeError, match: /groups\[0\]\.index/ },
    { name: 'unknown status', msg: { ...heartbeat, groups: [{ index: 0, status: 'owning' as 'holding', priority: 1 }] }, error: RangeError, match: /groups\[0\]\.status owning/ },
    {
      name: 'duplicate group',
      msg: { ...heartbeat, groups: [{ index: 4, status: 'holding', priority: 1 }, { index: 4, status: 'standby', priority: 2 }] },
      error: RangeError,
      match: /groups\[1\]\.index 4 appears twice/,
    },
    {
      name: 'more groups than fit in a datagram',
      msg: { ...heartbeat, groups: Array.from({ length: 20000 }, (_, i) => ({ index: i, status: 'standby' as const, priority: 1 })) },
      error: RangeError,
      match: /exceeds the UDP limit/,
    },
    { name: 'unknown type', msg: { ...heartbeat, type: 'hello' as 'heartbeat' }, error: RangeError, match: /message type hello/ },
    { name: 'release group 65536', msg: { ...release, group: 65536 }, error: RangeError, match: /group 65536/ },
    { name: 'release to empty target', msg: { ...release, target: '' }, error: RangeError, match: /target ""/ },
    { name: 'release to target with NUL', msg: { ...release, target: 'n\u00002' }, error: RangeError, match: /target .*U\+0000/ },
  ];
  it.each(bad)('$name', ({ msg, error, match }) => {
    expect(() => encodeMeshMessage(msg)).toThrow(error);
    expect(() => encodeMeshMessage(msg)).toThrow(match);
  });

  it('nodeIdBytes returns the UTF-8 bytes', () => {
    expect(nodeIdBytes('nœud').toString('hex')).toBe('6ec5937564');
  });
});

describe('mesh wire: pre-signed batches', () => {
  it('produces consecutive seqs, each equal to a single encode, in one contiguous block', () => {
    const kr = keyring();
    const batch = encodeMeshMessageBatch(heartbeat, 1000n, 100, kr);
    expect(batch).toHaveLength(100);
    const stride = batch[0]!.length;
    expect(stride).toBe(vectors[1]!.bytes.length);
    batch.forEach((buf, i) => {
      expect(buf.buffer).toBe(batch[0]!.buffer);
      expect(buf.byteOffset).toBe(batch[0]!.byteOffset + i * stride);
      expect(buf.length).toBe(stride);
      const seq = 1000n + BigInt(i);
      expect(buf.equals(encodeMeshMessage({ ...heartbeat, seq }, kr))).toBe(true);
      const decoded = decodeMeshMessage(buf);
      expect(decoded.seq).toBe(seq);
      expect(kr.verify(decoded, buf, 0)).toEqual({ ok: true });
    });
    expect(batch[0]!.buffer.byteLength).toBe(stride * 100);
  });

  it('unsigned batches patch only the seq', () => {
    const batch = encodeMeshMessageBatch(release, 7n, 3);
    expect(batch.map((b) => decodeMeshMessage(b).seq)).toEqual([7n, 8n, 9n]);
    expect(batch[2]!.equals(encodeMeshMessage({ ...release, seq: 9n }))).toBe(true);
    expect(batch[0]!.length).toBe(encodeMeshMessage(release).length);
  });

  it('signed batch trailers are complete', () => {
    const batch = encodeMeshMessageBatch(release, 1n, 2, keyring());
    expect(batch[1]!.length).toBe(encodeMeshMessage(release).length + MESH_AUTH_TRAILER_LENGTH);
  });

  it('reaches 2^64-1 but not beyond', () => {
    const max = (1n << 64n) - 1n;
    expect(decodeMeshMessage(encodeMeshMessageBatch(heartbeat, max - 1n, 2)[1]!).seq).toBe(max);
    expect(() => encodeMeshMessageBatch(heartbeat, max - 1n, 3)).toThrow(RangeError);
    expect(() => encodeMeshMessageBatch(heartbeat, 0n, 0)).toThrow(/count 0/);
    expect(() => encodeMeshMessageBatch(heartbeat, -1n, 1)).toThrow(/firstSeq -1/);
  });
});

describe('takeover extensions: starting, pinned, release to nobody, move-request', () => {
  it('carries starting and pinned group states', () => {
    const msg: MeshHeartbeat = { ...heartbeat, groups: [{ index: 1, status: 'starting', priority: 10 }, { index: 2, status: 'holding', priority: 255, pinned: true }] };
    const bytes = encodeMeshMessage(msg);
    const groupsAt = bytes.length - 8;
    expect(bytes.subarray(groupsAt).toString('hex')).toBe(['0001', '04', '0a', '0002', '81', 'ff'].join('')); // status 4; status 1 | 0x80 pinned
    expect(decodeMeshMessage(bytes)).toMatchObject({ groups: [{ index: 1, status: 'starting' }, { index: 2, status: 'holding', pinned: true }] });
  });

  it('a release may name no target', () => {
    const bytes = encodeMeshMessage({ ...release, target: undefined, pinned: false });
    expect(bytes.subarray(43).toString('hex')).toBe('0007' + '00' + '00'); // group 7, no flags, target length 0
    expect(decodeMeshMessage(bytes)).toMatchObject({ type: 'release', group: 7, target: undefined, pinned: false });
  });

  it('round-trips a move-request', () => {
    const bytes = encodeMeshMessage({ type: 'move-request', senderId: 'n1', incarnation: 1n, seq: 2n, configDigest: DIGEST, group: 3, target: 'n2' }, keyring());
    expect(bytes[5]).toBe(4);
    expect(decodeMeshMessage(bytes)).toMatchObject({ type: 'move-request', group: 3, target: 'n2', auth: { keyId: 0x0102 } });
    expect(() => encodeMeshMessage({ type: 'move-request', senderId: 'n1', incarnation: 1n, seq: 2n, configDigest: DIGEST, group: 3, target: '' })).toThrow(RangeError);
  });
});
