/**
 * Prepared address batches without the kernel: the prebuilt requests are
 * byte for byte what the per-call encoder writes, each run stamps fresh
 * sequence numbers, and the acks map to the same per-item results as
 * addrBatchSync. Also the ack reader they share (NetlinkConnection.requestSync)
 * on scripted datagrams.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError, VipaError } from '../../../lib/errors.js';
import { encodeAddressRequest, validateAddressSpec, VIPA_PROTO, type AddressSpec, type AddressVerb } from '../../../lib/netlink/address.js';
import { NetlinkConnection, type FailedAcks } from '../../../lib/netlink/connection.js';
import { NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSGERR_ATTR_MSG, RTM_NEWADDR } from '../../../lib/netlink/constants.js';
import { MessageWriter, type NetlinkAck } from '../../../lib/netlink/message.js';
import { PreparedAddrBatch } from '../../../lib/netlink/netlink.js';

interface Sent {
  firstSeq: number;
  count: number;
  bytes: Buffer;
}

/** Stands in for the connection: hands out sequence numbers, records what is sent, answers with scripted failures. */
class FakeConnection {
  seq: number;
  readonly sent: Sent[] = [];
  /** Failed acks to answer, by batch index (over all chunks). */
  failures = new Map<number, NetlinkAck>();
  private from = 0;

  constructor(firstSeq: number) {
    this.seq = firstSeq;
  }

  nextSeq(count = 1): number {
    const first = this.seq;
    this.seq = (this.seq + count) >>> 0 || 1;
    return first;
  }

  private answer(firstSeq: number, count: number, buffer: Buffer, length: number): FailedAcks | undefined {
    this.sent.push({ firstSeq, count, bytes: Buffer.from(buffer.subarray(0, length)) });
    let failed: FailedAcks | undefined;
    for (let i = 0; i < count; i++) {
      const ack = this.failures.get(this.from + i);
      if (ack) (failed ??= new Map()).set(i, ack);
    }
    this.from += count;
    return failed;
  }

  requestSync(_op: string, firstSeq: number, count: number, buffer: Buffer, length: number): FailedAcks | undefined {
    return this.answer(firstSeq, count, buffer, length);
  }

  async request(_op: string, firstSeq: number, count: number, buffer: Buffer, length: number): Promise<FailedAcks | undefined> {
    return this.answer(firstSeq, count, buffer, length);
  }

  /** Starts a new run: failure indexes count from the batch's first item again. */
  newRun(): void {
    this.from = 0;
  }
}

function prepare(conn: FakeConnection, verb: AddressVerb, specs: AddressSpec[], options: { allowExisting?: boolean; allowMissing?: boolean } = {}): PreparedAddrBatch {
  const entries = specs.map((spec) => ({ verb, request: validateAddressSpec(spec), options }));
  return new PreparedAddrBatch(conn as unknown as NetlinkConnection, verb, entries);
}

/** What addrBatchSync would send for `specs` with consecutive sequence numbers from `firstSeq`. */
function encoded(verb: AddressVerb, specs: AddressSpec[], firstSeq: number): Buffer {
  const w = new MessageWriter();
  specs.forEach((spec, i) => encodeAddressRequest(w, verb, validateAddressSpec(spec), (firstSeq + i) >>> 0));
  return Buffer.from(w.buffer.subarray(0, w.length));
}

/** The nlmsg_seq of every request in a datagram. */
function seqsOf(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let o = 0; o < bytes.length; o += (bytes.readUInt32LE(o) + 3) & ~3) out.push(bytes.readUInt32LE(o + 8));
  return out;
}

/** 300 takeover specs, both families: three chunks (128, 128, 44). */
function takeoverSpecs(): AddressSpec[] {
  const specs: AddressSpec[] = [];
  for (let i = 1; i <= 200; i++) specs.push({ link: 3, address: `198.51.100.${i}`, prefixLength: 32, proto: VIPA_PROTO, validLifetime: 3, preferredLifetime: 3 });
  for (let i = 1; i <= 100; i++) specs.push({ link: 4, address: `2001:db8::${i.toString(16)}/128`, nodad: true, proto: VIPA_PROTO, validLifetime: 3, preferredLifetime: 3 });
  return specs;
}

describe('PreparedAddrBatch: encoding', () => {
  it('sends byte for byte what the per-call encoder writes, 128 requests per sendto', () => {
    const specs = takeoverSpecs();
    const conn = new FakeConnection(1000);
    const batch = prepare(conn, 'replace', specs);
    expect(batch.length).toBe(300);
    expect(batch.op).toBe('replace');
    batch.runSync();
    expect(conn.sent.map((s) => s.count)).toEqual([128, 128, 44]);
    let from = 0;
    for (const s of conn.sent) {
      expect(s.bytes.toString('hex')).toBe(encoded('replace', specs.slice(from, from + s.count), s.firstSeq).toString('hex'));
      from += s.count;
    }
  });

  it('the same for add and delete, with broadcast, peer, scope and noprefixroute', () => {
    const specs: AddressSpec[] = [
      { link: 7, address: '203.0.113.9/24', broadcast: true, scope: 'link' },
      { link: 7, address: '203.0.113.10/32', peer: '203.0.113.11', noprefixroute: true, validLifetime: 60 },
      { link: 8, address: '2001:db8::1/64', nodad: true, scope: 'host', proto: 3 },
    ];
    for (const verb of ['add', 'delete'] as const) {
      const conn = new FakeConnection(7);
      prepare(conn, verb, specs).runSync();
      expect(conn.sent).toHaveLength(1);
      expect(conn.sent[0]!.bytes.toString('hex')).toBe(encoded(verb, specs, 7).toString('hex'));
    }
  });

  it('every run stamps fresh consecutive sequence numbers and changes nothing else', () => {
    const specs = takeoverSpecs();
    const conn = new FakeConnection(50);
    const batch = prepare(conn, 'replace', specs);
    batch.runSync();
    batch.runSync();
    expect(conn.sent).toHaveLength(6);
    const seqs = conn.sent.map((s) => seqsOf(s.bytes));
    // Run 1 took 50..349, run 2 350..649, each chunk from its own nextSeq.
    expect(seqs.flat()).toEqual(Array.from({ length: 600 }, (_, i) => 50 + i));
    expect(conn.sent.map((s) => s.firstSeq)).toEqual([50, 178, 306, 350, 478, 606]);
    for (let c = 0; c < 3; c++) {
      const [a, b] = [conn.sent[c]!, conn.sent[c + 3]!];
      expect(b.bytes.toString('hex')).toBe(encoded('replace', specs.slice(c * 128, c * 128 + a.count), b.firstSeq).toString('hex'));
    }
  });

  it('sequence numbers wrap past 2^32 as the connection hands them out', () => {
    const specs = takeoverSpecs().slice(0, 5);
    const conn = new FakeConnection(0xfffffffe);
    prepare(conn, 'replace', specs).runSync();
    expect(seqsOf(conn.sent[0]!.bytes)).toEqual([0xfffffffe, 0xffffffff, 0, 1, 2]);
    expect(conn.sent[0]!.bytes.toString('hex')).toBe(encoded('replace', specs, 0xfffffffe).toString('hex'));
  });

  it('an empty batch sends nothing and succeeds', async () => {
    const conn = new FakeConnection(1);
    const batch = prepare(conn, 'replace', []);
    expect(batch.runSync()).toEqual({ ok: true, changed: 0 });
    expect(await batch.run()).toEqual({ ok: true, changed: 0 });
    expect(conn.sent).toEqual([]);
  });
});

describe('PreparedAddrBatch: outcomes', () => {
  it('all acks 0: the same frozen summary every run, no per-item results', async () => {
    const conn = new FakeConnection(1);
    const batch = prepare(conn, 'replace', takeoverSpecs());
    const first = batch.runSync();
    expect(first).toEqual({ ok: true, changed: 300 });
    expect(Object.isFrozen(first)).toBe(true);
    expect(batch.runSync()).toBe(first);
    expect(await batch.run()).toBe(first);
  });

  it('a failure anywhere gives one result per item, as addrBatchSync reports them', () => {
    const specs = takeoverSpecs();
    const conn = new FakeConnection(1);
    conn.failures.set(130, { errno: 17, message: 'ipv4: Address already assigned' }); // second chunk
    conn.failures.set(299, { errno: 19 }); // last item: an interface index the kernel does not know
    conn.failures.set(0, { errno: 1 });
    const outcome = prepare(conn, 'add', specs).runSync();
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.failed).toBe(3);
    expect(outcome.results).toHaveLength(300);
    expect(outcome.results.flatMap((r, i) => (r.ok ? [] : [i]))).toEqual([0, 130, 299]);
    expect(outcome.results[1]).toEqual({ ok: true, changed: true });
    const eexist = outcome.results[130] as { ok: false; error: VipaError };
    expect(eexist.error).toBeInstanceOf(VipaError);
    expect(eexist.error).toMatchObject({ code: 'EEXIST', syscall: 'netlink', op: 'addr add', extack: 'ipv4: Address already assigned' });
    expect(eexist.error.message).toContain('198.51.100.131/32 dev 3');
    const enodev = outcome.results[299] as { ok: false; error: Error };
    expect(enodev.error).toBeInstanceOf(RangeError);
    expect(enodev.error.message).toBe('unknown interface index 4');
    expect((outcome.results[0] as { ok: false; error: VipaError }).error).toMatchObject({ code: 'EPERM' });
  });

  it('allowExisting absorbs EEXIST: ok, with fewer changed', async () => {
    const conn = new FakeConnection(1);
    const batch = prepare(conn, 'add', takeoverSpecs(), { allowExisting: true });
    conn.failures.set(5, { errno: 17 });
    conn.failures.set(200, { errno: 17 });
    expect(batch.runSync()).toEqual({ ok: true, changed: 298 });
    conn.newRun();
    expect(await batch.run()).toEqual({ ok: true, changed: 298 });
    // EEXIST is absorbed on add only; on delete allowMissing absorbs EADDRNOTAVAIL.
    const del = new FakeConnection(1);
    del.failures.set(3, { errno: 99 });
    expect(prepare(del, 'delete', takeoverSpecs(), { allowMissing: true }).runSync()).toEqual({ ok: true, changed: 299 });
    const strict = new FakeConnection(1);
    strict.failures.set(3, { errno: 99 });
    expect(prepare(strict, 'delete', takeoverSpecs()).runSync()).toMatchObject({ ok: false, failed: 1 });
  });

  it('the Promise form sends the same bytes and reports the same failures', async () => {
    const specs = takeoverSpecs();
    const [sync, async] = [new FakeConnection(9), new FakeConnection(9)];
    for (const c of [sync, async]) c.failures.set(140, { errno: 17 });
    const a = prepare(sync, 'add', specs).runSync();
    const b = await prepare(async, 'add', specs).run();
    expect(async.sent.map((s) => s.bytes.toString('hex'))).toEqual(sync.sent.map((s) => s.bytes.toString('hex')));
    expect(b).toEqual(a);
  });
});

// ---- the shared ack reader --------------------------------------------------------------

/** An NLMSG_ERROR for `seq`: 0 is an ack; with `extack`, the TLV of a capped error. */
function ackMessage(seq: number, errno: number, extack?: string): Buffer {
  const w = new MessageWriter();
  w.beginMessage(NLMSG_ERROR, extack === undefined ? 0 : NLM_F_CAPPED | NLM_F_ACK_TLVS, seq);
  const o = w.reserve(4 + 16);
  w.buffer.writeInt32LE(-errno, o);
  w.buffer.writeUInt32LE(16, o + 4); // the echoed request's header (capped)
  w.buffer.writeUInt16LE(RTM_NEWADDR, o + 8);
  if (extack !== undefined) w.attrString(NLMSGERR_ATTR_MSG, extack);
  w.endMessage();
  return Buffer.from(w.buffer.subarray(0, w.length));
}

/**
 * A NetlinkConnection over a scripted socket: each recv returns the next
 * datagram; recvMany, as the addon's, the next one and then every further
 * queued one back to back, 4-aligned, while `reserve` bytes stay free.
 */
function scriptedConnection(datagrams: Buffer[]): { conn: NetlinkConnection; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const queue = [...datagrams];
  const recv = (b: Buffer, offset = 0): number => {
    const d = queue.shift();
    if (!d) return -1;
    d.copy(b, offset);
    return d.length;
  };
  const socket = {
    send: (b: Buffer, offset = 0, length = b.length) => sent.push(Buffer.from(b.subarray(offset, offset + length))),
    recv: (b: Buffer) => recv(b),
    recvMany: (b: Buffer, _timeoutMs: number, reserve: number) => {
      let off = recv(b);
      if (off < 0) return -1;
      while (queue.length > 0 && b.length - ((off + 3) & ~3) >= reserve) {
        const aligned = (off + 3) & ~3;
        b.fill(0, off, aligned);
        off = aligned + recv(b, aligned);
      }
      return off;
    },
  };
  // Without the constructor, which opens a native socket.
  const memory = new ArrayBuffer(65536);
  const conn = Object.assign(Object.create(NetlinkConnection.prototype) as NetlinkConnection, {
    socket, writer: new MessageWriter(), receiveMemory: memory, receiveBuffer: Buffer.from(memory), receiveWords: new Int32Array(memory),
    seq: 1, exchanges: new Map(), reading: false, closed: false,
  });
  return { conn, sent };
}

describe('NetlinkConnection.requestSync (the ack reader of batches and single changes)', () => {
  it('undefined when every ack is 0, one datagram per ack or several in one', () => {
    const { conn, sent } = scriptedConnection([ackMessage(100, 0), Buffer.concat([ackMessage(101, 0), ackMessage(102, 0)])]);
    const request = Buffer.from('request');
    expect(conn.requestSync('addr batch', 100, 3, request, 4)).toBeUndefined();
    expect(sent.map((b) => b.toString())).toEqual(['requ']);
  });

  it('acks read back to back in one call, each datagram padded to 4 bytes, parse like separate reads', () => {
    // An extended ack ending in a 1-byte string attribute, its padding left out: 2 bytes short of a multiple of 4.
    const odd = ackMessage(52, 17, 'x');
    const trimmed = Buffer.from(odd.subarray(0, odd.length - 2));
    trimmed.writeUInt32LE(trimmed.length, 0);
    expect(trimmed.length % 4).toBe(2);
    const { conn } = scriptedConnection([ackMessage(50, 0), ackMessage(51, 0), trimmed, ackMessage(53, 0)]);
    const failed = conn.requestSync('addr batch', 50, 4, Buffer.alloc(16), 16);
    expect([...failed!.keys()]).toEqual([2]);
  });

  it('failed acks by request index, with the extended ack decoded', () => {
    const { conn } = scriptedConnection([ackMessage(10, 0), ackMessage(11, 17, 'ipv4: Address already assigned'), ackMessage(12, 0), ackMessage(13, 19)]);
    const failed = conn.requestSync('addr batch', 10, 4, Buffer.alloc(16), 16);
    expect([...failed!.entries()]).toEqual([
      [1, { errno: 17, message: 'ipv4: Address already assigned' }],
      [3, { errno: 19 }],
    ]);
  });

  it('replies that are not its own go to the exchanges they belong to; stale ones are dropped', () => {
    const { conn } = scriptedConnection([ackMessage(7, 0), ackMessage(500, 0), ackMessage(8, 0), ackMessage(9, 0)]);
    const other = { firstSeq: 500, count: 1, acks: [undefined] as (NetlinkAck | undefined)[], remaining: 1, interrupted: false, onMessage: undefined, error: undefined };
    (conn as unknown as { exchanges: Map<number, unknown> }).exchanges.set(500, other);
    expect(conn.requestSync('addr batch', 8, 2, Buffer.alloc(16), 16)).toBeUndefined(); // seq 7: stale, dropped
    expect(other.acks[0]).toEqual({ errno: 0 });
    expect(other.remaining).toBe(0);
  });

  it('a truncated datagram is a DecodeError; no reply in time is ETIMEDOUT; a closed handle is EBADF', () => {
    const bad = ackMessage(1, 0);
    bad.writeUInt32LE(200, 0);
    expect(() => scriptedConnection([bad]).conn.requestSync('addr batch', 1, 1, Buffer.alloc(16), 16)).toThrow(DecodeError);
    const { conn } = scriptedConnection([]);
    const socket = (conn as unknown as { socket: { recvMany: (b: Buffer, timeoutMs: number, reserve: number) => number } }).socket;
    const waits: number[] = [];
    socket.recvMany = (_b, timeoutMs) => (waits.push(timeoutMs), -1);
    expect(() => conn.requestSync('addr batch', 1, 1, Buffer.alloc(16), 16)).toThrow(expect.objectContaining({ code: 'ETIMEDOUT', syscall: 'recvfrom' }));
    expect(waits[0]).toBe(0); // first a look without blocking, then a bounded wait
    expect(waits[1]).toBeGreaterThan(9000);
    (conn as unknown as { closed: boolean }).closed = true;
    expect(() => conn.requestSync('addr batch', 1, 1, Buffer.alloc(16), 16)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
