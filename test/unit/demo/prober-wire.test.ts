/**
 * The prober's pieces that need no namespace: the probe and echo-reply wire
 * format, the JSON-lines protocol of prober-main, the made-up identity of
 * the neighbour requests, the source address choice, and the echo
 * responder's options.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseIp, parseMac } from '../../../lib/ip.js';
import type { Address } from '../../../lib/netlink/address.js';
import { EchoResponder } from '../../../lib/demo/echo-responder.js';
import { MAX_RESPONDER_NAME_BYTES, PROBE_LENGTH, decodeEchoReply, encodeProbe, monotonicMs } from '../../../lib/demo/probe-wire.js';
import { ProberOutput, applyProberLine, formatProberLine, parseProberLine, roundUs } from '../../../lib/demo/prober-lines.js';
import { chooseSourceAddress, phantomAddress, phantomMac } from '../../../lib/demo/prober.js';
import type { ProbeRecord } from '../../../lib/demo/analysis.js';

describe('probe wire', () => {
  it('encodes seq and send time big-endian in 12 bytes', () => {
    const probe = encodeProbe(0x01020304, 0x1112131415161718n);
    expect(probe.toString('hex')).toBe('01020304' + '1112131415161718');
    expect(probe.length).toBe(PROBE_LENGTH);
  });

  it('decodes a reply: the probe, then the responder name', () => {
    const reply = Buffer.concat([encodeProbe(7, 123456789n), Buffer.from('host-a')]);
    expect(decodeEchoReply(reply)).toEqual({ seq: 7, sentAtNs: 123456789n, responder: 'host-a' });
  });

  it('refuses what is not a reply, without throwing', () => {
    expect(decodeEchoReply(Buffer.alloc(0))).toBeUndefined();
    expect(decodeEchoReply(encodeProbe(1, 1n))).toBeUndefined(); // no name
    expect(decodeEchoReply(Buffer.alloc(PROBE_LENGTH + MAX_RESPONDER_NAME_BYTES + 1))).toBeUndefined();
    expect(decodeEchoReply(Buffer.alloc(5))).toBeUndefined();
  });

  it('reads CLOCK_MONOTONIC in ms, as process.hrtime does', () => {
    const before = Number(process.hrtime.bigint()) / 1e6;
    const t = monotonicMs();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t - before).toBeLessThan(100);
  });
});

describe('prober lines', () => {
  it('round-trips every record line and builds the timeline', () => {
    const record: ProbeRecord = { replies: [], neighbors: [], lost: [], stalls: [] };
    const lines = [
      { type: 'reply', seq: 1, sentAt: 10.5, rttMs: 0.042, responder: 'a' },
      { type: 'neighbor', at: 11, mac: '02:00:00:00:00:0a', kind: 'reply' },
      { type: 'lost', seq: 2, sentAt: 11.5 },
      { type: 'stall', from: 12, to: 20 },
      { type: 'end', reason: 'SIGTERM' },
    ] as const;
    for (const line of lines) {
      const text = formatProberLine(line);
      expect(text.endsWith('\n')).toBe(true);
      const parsed = parseProberLine(text.trim());
      expect(parsed).toEqual(line);
      applyProberLine(record, parsed!);
    }
    expect(record).toEqual({
      replies: [{ seq: 1, sentAt: 10.5, rttMs: 0.042, responder: 'a' }],
      neighbors: [{ at: 11, mac: '02:00:00:00:00:0a', kind: 'reply' }],
      lost: [{ seq: 2, sentAt: 11.5 }],
      stalls: [{ from: 12, to: 20 }],
    });
  });

  it('ignores malformed lines instead of throwing', () => {
    for (const text of ['', 'ready', '{', 'null', '42', '{"type":"reply","seq":"1"}', '{"type":"neighbor","at":1,"mac":"x","kind":"other"}', '{"type":"nope"}']) {
      expect(parseProberLine(text)).toBeUndefined();
    }
  });

  it('rounds times to the microsecond', () => {
    expect(roundUs(1234.5678912)).toBe(1234.568);
  });

  it('follows a stream: ready, records, end', async () => {
    const stream = new PassThrough();
    const output = ProberOutput.follow(stream);
    stream.write('{"type":"ready","target":"198.51.100.100","family":4,"port":7777,"interface":"eth0","ifindex":2,"mac":"02:00:00:00:00:01",' +
      '"neighborIdentity":"phantom","neighborMac":"82:00:00:00:00:01","intervalMs":1,"neighborProbeIntervalMs":1,"startedAt":5}\n');
    expect((await output.ready).target).toBe('198.51.100.100');
    stream.write('(node:1) Warning: something\n{"type":"reply","seq":0,"sentAt":6,"rttMs":0.1,"responder":"a"}\n');
    stream.end('{"type":"stats","sent":1}\n{"type":"end","reason":"done"}\n');
    expect(await output.ended).toEqual({ type: 'end', reason: 'done' });
    expect(output.record.replies).toHaveLength(1);
    expect(output.stats?.sent).toBe(1);
    expect(output.malformed).toBe(1);
  });

  it('rejects ready when the stream ends first, with the error line', async () => {
    const stream = new PassThrough();
    const output = ProberOutput.follow(stream);
    stream.end('{"type":"error","message":"eth0 has no usable IPv4 address"}\n');
    await expect(output.ready).rejects.toThrow(/no usable IPv4 address/);
    expect(await output.ended).toBeUndefined();
  });
});

describe('the neighbour requests\' made-up identity', () => {
  it('derives a locally administered unicast MAC that differs from ours', () => {
    for (const text of ['fa:51:62:74:80:0c', '00:1b:21:3c:4d:5e', '7a:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff']) {
      const mac = parseMac(text)!;
      const phantom = phantomMac(mac);
      expect(formatMac(phantom)).not.toBe(text);
      expect(phantom[0]! & 0x02).toBe(0x02); // U/L: locally administered
      expect(phantom[0]! & 0x01).toBe(0); // I/G: unicast
      expect(formatMac(phantom.subarray(1))).toBe(formatMac(mac.subarray(1)));
    }
  });

  it('derives 169.254.1.0-169.254.254.255 and the EUI-64 link-local address', () => {
    const mac = parseMac('7a:51:62:74:80:0c')!;
    expect(formatIp(phantomAddress(mac, parseIp('198.51.100.100')!.bytes))).toBe('198.51.100.254');
    expect(formatIp(phantomAddress(mac, parseIp('203.0.113.7')!.bytes))).toBe('203.0.113.254');
    expect(formatIp(phantomAddress(mac, parseIp('2001:db8::100')!.bytes))).toBe('2001:db8::7851:62ff:fe74:800c');
  });
});

describe('chooseSourceAddress', () => {
  const flags = { secondary: false, nodad: false, tentative: false, dadfailed: false, deprecated: false, permanent: true, noprefixroute: false };
  const address = (text: string, prefixLength: number, more: Partial<Address> = {}, flagMore: Partial<typeof flags> = {}): Address => ({
    family: text.includes(':') ? 6 : 4,
    linkIndex: 2,
    address: text,
    prefixLength,
    scope: text.startsWith('fe80') ? 253 : 0,
    flags: { ...flags, ...flagMore },
    rawFlags: 0,
    validLifetime: Infinity,
    preferredLifetime: Infinity,
    proto: 0,
    ...more,
  });
  const target4 = parseIp('198.51.100.100')!.bytes;
  const target6 = parseIp('2001:db8::100')!.bytes;

  it('prefers an address in the target subnet, never the target itself', () => {
    expect(chooseSourceAddress([address('203.0.113.5', 24), address('198.51.100.3', 24)], target4)).toBe('198.51.100.3');
    expect(chooseSourceAddress([address('198.51.100.100', 24), address('203.0.113.5', 24)], target4)).toBe('203.0.113.5');
    expect(chooseSourceAddress([], target4)).toBeUndefined();
  });

  it('skips tentative and failed IPv6 addresses and prefers global to link-local', () => {
    expect(chooseSourceAddress([address('fe80::1', 64), address('2001:db8::3', 64)], target6)).toBe('2001:db8::3');
    expect(chooseSourceAddress([address('2001:db8::3', 64, {}, { tentative: true }), address('fe80::1', 64)], target6)).toBe('fe80::1');
    expect(chooseSourceAddress([address('2001:db8::3', 64, {}, { dadfailed: true })], target6)).toBeUndefined();
    expect(chooseSourceAddress([address('198.51.100.3', 24)], target6)).toBeUndefined();
  });
});

describe('EchoResponder options', () => {
  // Answering is tested in test/kernel/prober.test.ts, inside a namespace:
  // unit tests may run in a fresh network namespace whose loopback is down.
  it('refuses bad options and a port in use', async () => {
    await expect(EchoResponder.start({ port: 0, name: '' })).rejects.toThrow(RangeError);
    await expect(EchoResponder.start({ port: 0, name: 'x'.repeat(65) })).rejects.toThrow(RangeError);
    await expect(EchoResponder.start({ port: 70000, name: 'a' })).rejects.toThrow(RangeError);
    await expect(EchoResponder.start({ port: 0, name: 'a', families: [] })).rejects.toThrow(RangeError);
    const first = await EchoResponder.start({ port: 0, name: 'a', families: [4] });
    try {
      await expect(EchoResponder.start({ port: first.port, name: 'b', families: [4] })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
      await first.close(); // twice is fine
    }
  });
});
