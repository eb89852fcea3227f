/**
 * Conflict detection without the kernel: the pure parts (which frame claims
 * which address, what counts while probing, the RFC 5227 §2.4 decision) on
 * captured frames (test/fixtures/frames: b's kernel answering arping's probe,
 * ndisc6's exchange, the kernel's DAD NS), and the ConflictDetector itself
 * on a fake socket with a fake clock. test/kernel/announce.test.ts runs it
 * against real hosts.
 */
import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseIp, parseMac } from '../../../lib/ip.js';
import {
  ConflictDetector,
  DEFEND_INTERVAL_MS,
  claimOf,
  decideDefense,
  probeConflict,
  type ConflictEvent,
  type ConflictSocket,
  type DefendPolicy,
} from '../../../lib/packets/conflict.js';
import type { LinkFrame } from '../../../lib/packets/link-socket.js';
import {
  decodeArp,
  decodeNdp,
  encodeArp,
  encodeGratuitousArp,
  encodeNdp,
  encodeUnsolicitedNeighborAdvertisement,
} from '../../../lib/packets/index.js';
import { frame } from '../../fixtures/frames/frames.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const mac = (t: string): Uint8Array => parseMac(t)!;
const ip = (t: string): Uint8Array => parseIp(t)!.bytes;
const MAC_A = mac('02:00:00:00:00:0a');
const MAC_B = mac('02:00:00:00:00:0b');
const MAC_C = mac('02:00:00:00:00:0c');

function decoded(f: Buffer): LinkFrame {
  return f.readUInt16BE(12) === 0x0806 ? { kind: 'arp', packet: decodeArp(f) } : { kind: 'ndp', packet: decodeNdp(f) };
}
const fx = (name: string, index = 0): LinkFrame => decoded(frame(name, index));

function showClaim(f: LinkFrame): string | undefined {
  const c = claimOf(f);
  return c && `${formatIp(c.address)} at ${formatMac(c.mac)} via ${c.via}`;
}

describe('claimOf', () => {
  it('an ARP reply or request claims its sender IP for its sender MAC', () => {
    // b's kernel answering arping -D: sender 198.51.100.20 at b.
    expect(showClaim(fx('arping-dad-probe-defended', 1))).toBe('198.51.100.20 at 02:00:00:00:00:0b via arp');
    // A plain resolution request claims the requester's own address.
    expect(showClaim(fx('kernel-arp-resolution', 0))).toBe('198.51.100.10 at 02:00:00:00:00:0a via arp');
    expect(showClaim(fx('keepalived-master', 0))).toBe('198.51.100.100 at 02:00:00:00:00:0a via arp');
  });

  it('an ARP probe (sender 0.0.0.0) claims nothing', () => {
    expect(showClaim(fx('arping-dad-probe-defended', 0))).toBeUndefined();
  });

  it('an NA claims its target for its target link-layer address, else its Ethernet source', () => {
    expect(showClaim(fx('ndisc6-solicitation', 1))).toBe('2001:db8::20 at 02:00:00:00:00:0b via na');
    expect(showClaim(fx('kernel-ndisc-notify', 0))).toBe('2001:db8::10 at 02:00:00:00:00:0a via na');
    const na = decodeNdp(encodeUnsolicitedNeighborAdvertisement({ mac: MAC_C, address: ip('2001:db8::5'), router: false }));
    delete na.targetLinkLayer;
    expect(showClaim(decoded(encodeNdp(na)))).toBe('2001:db8::5 at 02:00:00:00:00:0c via na');
  });

  it('an NS claims nothing', () => {
    expect(showClaim(fx('ndisc6-solicitation', 0))).toBeUndefined();
    expect(showClaim(fx('kernel-dad-solicitation', 0))).toBeUndefined();
  });
});

describe('probeConflict', () => {
  const v4 = ip('198.51.100.20');
  it('IPv4: any ARP from another MAC with the address as sender IP', () => {
    expect(probeConflict(fx('arping-dad-probe-defended', 1), v4, MAC_A)).toEqual(MAC_B);
    expect(probeConflict(fx('arping-dad-probe-defended', 1), v4, MAC_B)).toBeUndefined(); // our own
    expect(probeConflict(fx('arping-dad-probe-defended', 1), ip('198.51.100.21'), MAC_A)).toBeUndefined();
  });

  it('IPv4: another host probing the same address (RFC 5227 §2.1.1)', () => {
    expect(probeConflict(fx('arping-dad-probe-defended', 0), v4, MAC_C)).toEqual(MAC_A);
    expect(probeConflict(fx('arping-dad-probe-defended', 0), v4, MAC_A)).toBeUndefined();
    // A reply from 0.0.0.0 is no probe.
    const odd = decodeArp(frame('arping-dad-probe-defended', 0));
    odd.operation = 'reply';
    expect(probeConflict(decoded(encodeArp(odd)), v4, MAC_C)).toBeUndefined();
    // Someone else's request for the address (resolution, sender = its own IP) is no conflict.
    expect(probeConflict(fx('kernel-arp-resolution', 0), v4, MAC_C)).toBeUndefined();
  });

  it('IPv6: an NA for the address from another MAC', () => {
    const v6 = ip('2001:db8::20');
    expect(probeConflict(fx('ndisc6-solicitation', 1), v6, MAC_A)).toEqual(MAC_B);
    expect(probeConflict(fx('ndisc6-solicitation', 1), v6, MAC_B)).toBeUndefined();
    expect(probeConflict(fx('ndisc6-solicitation', 1), ip('2001:db8::21'), MAC_A)).toBeUndefined();
  });

  it('IPv6: another host\'s DAD NS for the address, unless it carries our nonce (RFC 7527)', () => {
    const dad = fx('kernel-dad-solicitation-nonce', 0);
    const target = ip('2001:db8::31');
    expect(probeConflict(dad, target, MAC_C)).toEqual(MAC_A);
    expect(probeConflict(dad, target, MAC_C, Uint8Array.from([0xf0, 0x98, 0x78, 0x0a, 0xd0, 0x00]))).toEqual(MAC_A);
    const theirs = (dad as { packet: { nonce: Uint8Array } }).packet.nonce;
    expect(probeConflict(dad, target, MAC_C, theirs)).toBeUndefined();
    expect(probeConflict(dad, target, MAC_A)).toBeUndefined();
    expect(probeConflict(fx('kernel-dad-solicitation', 0), ip('2001:db8::30'), MAC_C, theirs)).toEqual(MAC_A); // no nonce in the NS
    // An address-resolution NS (from a unicast source) is no conflict.
    expect(probeConflict(fx('ndisc6-solicitation', 0), ip('2001:db8::20'), MAC_C)).toBeUndefined();
  });

  it('families do not mix', () => {
    expect(probeConflict(fx('arping-dad-probe-defended', 1), ip('2001:db8::20'), MAC_A)).toBeUndefined();
    expect(probeConflict(fx('ndisc6-solicitation', 1), v4, MAC_A)).toBeUndefined();
  });
});

describe('decideDefense (RFC 5227 §2.4)', () => {
  const fresh = { lastConflictAt: undefined, lastDefendedAt: undefined };
  it("'stop': release at once", () => {
    expect(decideDefense('stop', fresh, 0, 10_000)).toEqual({ action: 'release', state: fresh });
  });
  it("'defend-once': defend, then release on a second conflict within the interval", () => {
    const first = decideDefense('defend-once', fresh, 1000, 10_000);
    expect(first).toEqual({ action: 'defended', state: { lastConflictAt: 1000, lastDefendedAt: 1000 } });
    expect(decideDefense('defend-once', first.state, 10_999, 10_000).action).toBe('release');
    expect(decideDefense('defend-once', first.state, 11_000, 10_000)).toEqual({ action: 'defended', state: { lastConflictAt: 11_000, lastDefendedAt: 11_000 } });
  });
  it("'defend-always': defend at most once per interval, ignore in between", () => {
    const first = decideDefense('defend-always', fresh, 0, 10_000);
    expect(first.action).toBe('defended');
    expect(decideDefense('defend-always', first.state, 9_999, 10_000)).toEqual({ action: 'ignored', state: first.state });
    expect(decideDefense('defend-always', first.state, 10_000, 10_000).action).toBe('defended');
  });
  it('refuses an unknown policy', () => {
    expect(() => decideDefense('fight' as DefendPolicy, fresh, 0, 1)).toThrow(RangeError);
    expect(DEFEND_INTERVAL_MS).toBe(10_000);
  });
});

class FakeSocket implements ConflictSocket {
  readonly ifindex = 2;
  readonly name = 'eth0';
  readonly mac = MAC_A;
  readonly sent: { at: number; frame: Buffer }[] = [];
  readonly listeners = new Set<(f: LinkFrame) => void>();
  closed = false;
  failWith: Error | undefined;
  constructor(
    private readonly clock: FakeClock,
    readonly forwarding = { ipv4: false, ipv6: false },
  ) {}
  send(frame: Uint8Array): void {
    if (this.failWith) throw this.failWith;
    this.sent.push({ at: this.clock.now(), frame: Buffer.from(frame) });
  }
  close(): void {
    this.closed = true;
  }
  onFrame(listener: (f: LinkFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  deliver(frame: Buffer): void {
    for (const l of this.listeners) l(decoded(frame));
  }
}

/** What a sent frame is: 'probe 198.51.100.7', 'garp 198.51.100.7', 'dad 2001:db8::7', 'na 2001:db8::7'. */
function what(f: Buffer): string {
  if (f.readUInt16BE(12) === 0x0806) {
    const p = decodeArp(f);
    return `${p.senderIp.every((b) => b === 0) ? 'probe' : 'garp'} ${formatIp(p.targetIp)}`;
  }
  const p = decodeNdp(f);
  return `${p.type === 'ns' ? 'dad' : 'na'} ${formatIp(p.target)}${p.nonce ? ' nonce' : ''}${p.flags.router ? ' R' : ''}`;
}

function setup(options: { policy?: DefendPolicy; probeIntervalMs?: number; defendIntervalMs?: number; router?: boolean; forwarding?: boolean } = {}) {
  const clock = new FakeClock();
  const socket = new FakeSocket(clock, { ipv4: false, ipv6: options.forwarding ?? false });
  const { forwarding: _f, ...rest } = options;
  const detector = new ConflictDetector({ link: 'eth0', clock, socket, ...rest });
  const events: ConflictEvent[] = [];
  detector.on('conflict', (e) => events.push(e));
  const sent = () => socket.sent.map((s) => `${s.at} ${what(s.frame)}`);
  return { clock, socket, detector, events, sent };
}

/** c claiming an IPv4 address with a gratuitous ARP, or answering for it. */
const garpFrom = (m: Uint8Array, address: string) => encodeGratuitousArp({ mac: m, address: ip(address), operation: 'request' });
const naFrom = (m: Uint8Array, address: string) => encodeUnsolicitedNeighborAdvertisement({ mac: m, address: ip(address), router: false });

describe('ConflictDetector', () => {
  it("reports another MAC's claim on a watched address, with the default policy 'defend-once'", () => {
    const { clock, socket, detector, events, sent } = setup();
    detector.watch('198.51.100.7');
    detector.watch('2001:DB8::7');
    detector.watch('198.51.100.7'); // again: no change
    expect(detector.watching()).toEqual(['198.51.100.7', '2001:db8::7']);
    expect(detector.link).toBe('eth0');
    expect(detector.mac).toBe('02:00:00:00:00:0a');
    socket.deliver(garpFrom(MAC_C, '198.51.100.7'));
    clock.advance(1000);
    socket.deliver(naFrom(MAC_C, '2001:db8::7'));
    clock.advance(1000);
    socket.deliver(garpFrom(MAC_C, '198.51.100.7'));
    expect(events).toEqual([
      { address: '198.51.100.7', mac: '02:00:00:00:00:0c', via: 'arp', action: 'defended' },
      { address: '2001:db8::7', mac: '02:00:00:00:00:0c', via: 'na', action: 'defended' },
      { address: '198.51.100.7', mac: '02:00:00:00:00:0c', via: 'arp', action: 'release' },
    ]);
    expect(sent()).toEqual(['0 garp 198.51.100.7', '1000 na 2001:db8::7']);
    expect(detector.watching()).toEqual(['2001:db8::7']); // released: no longer watched
    socket.deliver(garpFrom(MAC_C, '198.51.100.7'));
    expect(events).toHaveLength(3);
    expect(detector.stats).toEqual({ conflicts: 3, defenses: 2, probesSent: 0, sendErrors: 0 });
  });

  it('ignores our own frames, unwatched addresses, probes and DAD solicitations', () => {
    const { socket, detector, events } = setup();
    detector.watch('198.51.100.20');
    detector.watch('2001:db8::31');
    socket.deliver(garpFrom(MAC_A, '198.51.100.20')); // ours, looped back
    socket.deliver(garpFrom(MAC_C, '198.51.100.21')); // not watched
    socket.deliver(naFrom(MAC_A, '2001:db8::31'));
    socket.deliver(frame('arping-dad-probe-defended', 0)); // another host probing .20: the kernel answers it
    socket.deliver(frame('kernel-dad-solicitation-nonce', 0)); // another host's DAD for ::31: the kernel answers it
    expect(events).toEqual([]);
    expect(detector.unwatch('198.51.100.20')).toBe(true);
    expect(detector.unwatch('198.51.100.20')).toBe(false);
    expect(detector.unwatch('nonsense')).toBe(false);
    socket.deliver(frame('arping-dad-probe-defended', 1)); // b claims .20, no longer watched
    expect(events).toEqual([]);
  });

  it("'stop' releases at once and sends nothing", () => {
    const { socket, detector, events, sent } = setup({ policy: 'stop' });
    detector.watch('198.51.100.20');
    socket.deliver(frame('arping-dad-probe-defended', 1));
    expect(events).toEqual([{ address: '198.51.100.20', mac: '02:00:00:00:00:0b', via: 'arp', action: 'release' }]);
    expect(sent()).toEqual([]);
    expect(detector.watching()).toEqual([]);
  });

  it("'defend-always' defends at most once per defendIntervalMs, with the Router flag from forwarding", () => {
    const { clock, socket, detector, events, sent } = setup({ policy: 'defend-always', defendIntervalMs: 5000, forwarding: true });
    detector.watch('2001:db8::7');
    socket.deliver(naFrom(MAC_C, '2001:db8::7'));
    clock.advance(4999);
    socket.deliver(naFrom(MAC_C, '2001:db8::7'));
    clock.advance(1);
    socket.deliver(naFrom(MAC_C, '2001:db8::7'));
    expect(events.map((e) => e.action)).toEqual(['defended', 'ignored', 'defended']);
    expect(sent()).toEqual(['0 na 2001:db8::7 R', '5000 na 2001:db8::7 R']);
    const plain = setup({ policy: 'defend-always', forwarding: true, router: false });
    plain.detector.watch('2001:db8::7');
    plain.socket.deliver(naFrom(MAC_C, '2001:db8::7'));
    expect(plain.sent()).toEqual(['0 na 2001:db8::7']);
  });

  it('probes watched addresses every probeIntervalMs, the first at once, until unwatched', () => {
    const { clock, detector, sent } = setup({ probeIntervalMs: 1000 });
    detector.watch('198.51.100.7');
    detector.watch('2001:db8::7');
    expect(sent()).toEqual(['0 probe 198.51.100.7', '0 dad 2001:db8::7']);
    clock.advance(2500);
    detector.unwatch('198.51.100.7');
    clock.advance(1000);
    expect(sent()).toEqual([
      '0 probe 198.51.100.7',
      '0 dad 2001:db8::7',
      '1000 probe 198.51.100.7',
      '1000 dad 2001:db8::7',
      '2000 probe 198.51.100.7',
      '2000 dad 2001:db8::7',
      '3000 dad 2001:db8::7',
    ]);
    expect(detector.stats.probesSent).toBe(7);
  });

  it('a host that only answers probes is reported within one probe interval', () => {
    const { clock, socket, detector, events } = setup({ probeIntervalMs: 1000 });
    detector.watch('198.51.100.20');
    clock.advance(10);
    socket.deliver(frame('arping-dad-probe-defended', 1)); // b's kernel answering the first probe
    expect(detector.stats.probesSent).toBe(1);
    expect(events).toEqual([{ address: '198.51.100.20', mac: '02:00:00:00:00:0b', via: 'arp', action: 'defended' }]);
  });

  it("send errors are counted, and emitted as 'error' only when listened to", () => {
    const { clock, socket, detector } = setup({ probeIntervalMs: 1000 });
    socket.failWith = new Error('ENETDOWN');
    detector.watch('198.51.100.7'); // probe fails: no listener, no throw
    expect(detector.stats.sendErrors).toBe(1);
    const errors: unknown[] = [];
    detector.on('error', (e) => errors.push(e));
    clock.advance(1000);
    socket.deliver(garpFrom(MAC_C, '198.51.100.7')); // defense fails
    expect(errors.map((e) => (e as Error).message)).toEqual(['ENETDOWN', 'ENETDOWN']);
    expect(detector.stats).toMatchObject({ sendErrors: 3, defenses: 0, probesSent: 0, conflicts: 1 });
  });

  it('close stops probing and watching, leaves an injected socket open; a closed detector refuses work', async () => {
    const { clock, socket, detector, events, sent } = setup({ probeIntervalMs: 1000 });
    detector.watch('198.51.100.7');
    detector.close();
    detector.close();
    expect(clock.pending).toBe(0);
    expect(socket.closed).toBe(false);
    expect(socket.listeners.size).toBe(0);
    clock.advance(5000);
    expect(sent()).toHaveLength(1);
    expect(() => detector.watch('198.51.100.8')).toThrow(/closed/);
    await expect(detector.probe('198.51.100.8')).rejects.toThrow(/closed/);
    expect(events).toEqual([]);
  });

  it('validates its options', () => {
    const clock = new FakeClock();
    const socket = new FakeSocket(clock);
    expect(() => new ConflictDetector({ link: 'eth0', socket, policy: 'fight' as DefendPolicy })).toThrow(RangeError);
    expect(() => new ConflictDetector({ link: 'eth0', socket, probeIntervalMs: -1 })).toThrow(/probeIntervalMs/);
    expect(() => new ConflictDetector({ link: 'eth0', socket, defendIntervalMs: 1.5 })).toThrow(/defendIntervalMs/);
    expect(() => new ConflictDetector({ link: 'eth0', socket, router: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => new ConflictDetector(null as unknown as { link: string })).toThrow(TypeError);
    const d = new ConflictDetector({ link: 'eth0', socket, clock });
    expect(() => d.watch('198.51.100.256')).toThrow(RangeError);
  });
});

describe('ConflictDetector.probe', () => {
  it('IPv4: count probes intervalMs apart, then waitMs of silence: free', async () => {
    const { clock, detector, sent } = setup();
    const result = detector.probe('198.51.100.9');
    expect(sent()).toEqual(['0 probe 198.51.100.9']); // the first one before probe() returns
    clock.advance(1000);
    await expect(result).resolves.toEqual({ inUse: false });
    expect(sent()).toEqual(['0 probe 198.51.100.9', '10 probe 198.51.100.9', '20 probe 198.51.100.9']);
    expect(clock.pending).toBe(0);
  });

  it('IPv4: an answer ends the probe at once with the holder\'s MAC', async () => {
    const { clock, socket, detector, sent } = setup();
    const result = detector.probe('198.51.100.20', { count: 5, intervalMs: 100, waitMs: 1000 });
    clock.advance(150);
    socket.deliver(frame('arping-dad-probe-defended', 1));
    await expect(result).resolves.toEqual({ inUse: true, mac: '02:00:00:00:00:0b' });
    clock.advance(10_000);
    expect(sent()).toEqual(['0 probe 198.51.100.20', '100 probe 198.51.100.20']);
    expect(clock.pending).toBe(0);
  });

  it('IPv6: DAD NS with a nonce; an NA means in use, our own looped NS does not', async () => {
    const { clock, socket, detector, sent } = setup();
    const result = detector.probe('2001:db8::20', { count: 2, intervalMs: 50, waitMs: 50 });
    const ours = decodeNdp(socket.sent[0]!.frame);
    expect(ours.nonce).toHaveLength(6);
    // Our own NS coming back from the network (same MAC, same nonce), then a copy from a reflector with another MAC but our nonce.
    socket.deliver(socket.sent[0]!.frame);
    const reflected = { ...ours, ethSource: MAC_C };
    socket.deliver(encodeNdp(reflected));
    clock.advance(60);
    socket.deliver(frame('ndisc6-solicitation', 1)); // b's NA for 2001:db8::20
    await expect(result).resolves.toEqual({ inUse: true, mac: '02:00:00:00:00:0b' });
    expect(sent()).toEqual(['0 dad 2001:db8::20 nonce', '50 dad 2001:db8::20 nonce']);
  });

  it('IPv6: another host probing the same address at the same time', async () => {
    const { socket, detector } = setup();
    const result = detector.probe('2001:db8::30', { count: 1 });
    socket.deliver(frame('kernel-dad-solicitation', 0)); // from 02:00:00:00:00:0a = our fake MAC: ours, ignored
    const other = decodeNdp(frame('kernel-dad-solicitation', 0));
    other.ethSource = MAC_C;
    socket.deliver(encodeNdp(other));
    await expect(result).resolves.toEqual({ inUse: true, mac: '02:00:00:00:00:0c' });
  });

  it('concurrent probes settle independently; count 1 and waitMs 0 work', async () => {
    const { clock, socket, detector } = setup();
    const a = detector.probe('198.51.100.20', { count: 1, waitMs: 100 });
    const b = detector.probe('198.51.100.21', { count: 1, waitMs: 0 });
    clock.advance(0);
    await expect(b).resolves.toEqual({ inUse: false });
    socket.deliver(frame('arping-dad-probe-defended', 1));
    await expect(a).resolves.toEqual({ inUse: true, mac: '02:00:00:00:00:0b' });
  });

  it('rejects on a send error, on close, and on bad arguments', async () => {
    const { clock, socket, detector } = setup();
    socket.failWith = new Error('ENETDOWN');
    await expect(detector.probe('198.51.100.9')).rejects.toThrow('ENETDOWN');
    socket.failWith = undefined;
    const later = detector.probe('198.51.100.9', { count: 3, intervalMs: 10 });
    clock.advance(10);
    socket.failWith = new Error('ENXIO');
    clock.advance(10);
    await expect(later).rejects.toThrow('ENXIO');
    socket.failWith = undefined;
    await expect(detector.probe('198.51.100.9', { count: 0 })).rejects.toThrow(/count/);
    await expect(detector.probe('198.51.100.9', { intervalMs: 60_001 })).rejects.toThrow(/intervalMs/);
    await expect(detector.probe('198.51.100.9', { waitMs: -1 })).rejects.toThrow(/waitMs/);
    await expect(detector.probe('198.51.100.9', null as unknown as object)).rejects.toThrow(TypeError);
    await expect(detector.probe('fe80::1%eth0')).rejects.toThrow(RangeError);
    const pending = detector.probe('198.51.100.9');
    detector.close();
    await expect(pending).rejects.toThrow(/closed/);
    expect(clock.pending).toBe(0);
  });
});

describe('the MAC of a claim is the ARP sender hardware address', () => {
  it('not the Ethernet source (a proxy or bridge may relay)', () => {
    const relayed = decodeArp(garpFrom(MAC_C, '198.51.100.7'));
    relayed.ethSource = mac('02:00:00:00:00:ee');
    const c = claimOf({ kind: 'arp', packet: decodeArp(encodeArp(relayed)) });
    expect(formatMac(c!.mac)).toBe('02:00:00:00:00:0c');
  });
});
