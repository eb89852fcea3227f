/**
 * The announcement scheduler with a fake clock and fake interfaces: every
 * branch of the schedule (bursts, spacing, second burst, refresh, restart,
 * cancel) and of the pacing (token bucket, urgent first frames), without
 * root. The frames themselves are checked byte for byte in arp.test.ts and
 * ndp.test.ts; here they are decoded to tell which is which.
 */
import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseMac } from '../../../lib/ip.js';
import {
  Announcer,
  DEFAULT_ANNOUNCE_SCHEDULE,
  DEFAULT_PACING,
  resolveSchedule,
  systemClock,
  type AnnounceLink,
  type AnnouncerOptions,
} from '../../../lib/packets/announcer.js';
import { decodeArp, decodeNdp, encodeGratuitousArp, encodeUnsolicitedNeighborAdvertisement } from '../../../lib/packets/index.js';
import { parseIp } from '../../../lib/ip.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const MAC = '02:00:00:00:00:0a';

class FakeLink implements AnnounceLink {
  readonly mac = parseMac(MAC)!;
  readonly sent: { at: number; frame: Buffer }[] = [];
  closed = 0;
  failWith: Error | undefined;
  constructor(
    readonly ifindex: number,
    readonly name: string,
    readonly forwarding = { ipv4: false, ipv6: false },
    private readonly clock?: FakeClock,
  ) {}
  send(frame: Uint8Array): void {
    if (this.failWith) throw this.failWith;
    this.sent.push({ at: this.clock?.now() ?? 0, frame: Buffer.from(frame) });
  }
  close(): void {
    this.closed++;
  }
}

/** What a frame is, in a few words: 'req 198.51.100.7', 'rep ...', 'na ... R' . */
function describe1(frame: Buffer): string {
  if (frame.readUInt16BE(12) === 0x0806) {
    const p = decodeArp(frame);
    return `${p.operation === 'request' ? 'req' : 'rep'} ${formatIp(p.senderIp)}`;
  }
  const p = decodeNdp(frame);
  return `na ${formatIp(p.target)}${p.flags.router ? ' R' : ''}${p.flags.override ? ' O' : ''}${p.flags.solicited ? ' S' : ''}`;
}

function setup(options: Omit<AnnouncerOptions, 'clock' | 'openLink'> = {}) {
  const clock = new FakeClock();
  const links = new Map<string | number, FakeLink>();
  const opened: FakeLink[] = [];
  const openLink = (ref: string | number): FakeLink => {
    const name = typeof ref === 'number' ? (ref === 2 ? 'eth0' : `if${ref}`) : ref;
    // 'lan0' stands for eth0 after a rename: same index, new name.
    const index = typeof ref === 'number' ? ref : ref === 'eth0' || ref === 'lan0' ? 2 : 3;
    const l = new FakeLink(index, name, { ipv4: false, ipv6: name === 'router0' }, clock);
    opened.push(l);
    links.set(ref, l);
    return l;
  };
  const announcer = new Announcer({ pacing: false, ...options, clock, openLink });
  const log = (l: FakeLink = opened[0]!) => l.sent.map((s) => `${s.at} ${describe1(s.frame)}`);
  return { clock, announcer, opened, log };
}

describe('Announcer schedule', () => {
  it('defaults: 5 request+reply rounds inside announce(), 5 more at 5 s, then nothing', () => {
    const { clock, announcer, log } = setup();
    expect(announcer.announce('eth0', '198.51.100.7')).toBe(10);
    expect(log()).toEqual(Array.from({ length: 5 }, () => ['0 req 198.51.100.7', '0 rep 198.51.100.7']).flat());
    expect(clock.dueIn()).toEqual([5000]);
    clock.advance(4999);
    expect(log()).toHaveLength(10);
    clock.advance(1);
    expect(log().slice(10)).toEqual(Array.from({ length: 5 }, () => ['5000 req 198.51.100.7', '5000 rep 198.51.100.7']).flat());
    expect(clock.pending).toBe(0);
    expect(announcer.isAnnouncing('eth0', '198.51.100.7')).toBe(false);
    clock.advance(3_600_000);
    expect(log()).toHaveLength(20);
    expect(announcer.stats()).toEqual([{ name: 'eth0', ifindex: 2, framesSent: 20, sendErrors: 0, queued: 0, announcing: 0 }]);
  });

  it('the frames are the codecs\' gratuitous request and reply, and an unsolicited NA with the Router flag from forwarding', () => {
    const { announcer, opened } = setup({ schedule: { burst: 1, secondBurst: 0 } });
    announcer.announce('eth0', '198.51.100.7');
    const mac = parseMac(MAC)!;
    const v4 = parseIp('198.51.100.7')!.bytes;
    expect(opened[0]!.sent.map((s) => s.frame)).toEqual([
      encodeGratuitousArp({ mac, address: v4, operation: 'request' }),
      encodeGratuitousArp({ mac, address: v4, operation: 'reply' }),
    ]);
    announcer.announce('eth0', '2001:db8::7');
    expect(opened[0]!.sent[2]!.frame).toEqual(encodeUnsolicitedNeighborAdvertisement({ mac, address: parseIp('2001:db8::7')!.bytes, router: false }));
    announcer.announce('router0', '2001:db8::8'); // forwarding.ipv6 = true on this fake interface
    expect(describe1(opened[1]!.sent[0]!.frame)).toBe('na 2001:db8::8 R O');
    announcer.announce('eth0', '2001:db8::9', { router: true });
    expect(describe1(opened[0]!.sent[3]!.frame)).toBe('na 2001:db8::9 R O');
    announcer.announce('router0', '2001:db8::a', { router: false });
    expect(describe1(opened[1]!.sent[1]!.frame)).toBe('na 2001:db8::a O');
  });

  it("arpMode 'request' and 'reply' send one form only; IPv6 ignores arpMode", () => {
    const { announcer, log } = setup({ schedule: { burst: 2, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    announcer.announce('eth0', '203.0.113.7', { schedule: { arpMode: 'reply', burst: 1 } });
    announcer.announce('eth0', '2001:db8::7', { schedule: { arpMode: 'reply', burst: 1 } });
    expect(log()).toEqual(['0 req 198.51.100.7', '0 req 198.51.100.7', '0 rep 203.0.113.7', '0 na 2001:db8::7 O']);
  });

  it('burstSpacingMs spaces the rounds of both bursts; the second burst counts from announce()', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 3, burstSpacingMs: 100, secondBurst: 2, secondBurstDelayMs: 1000, arpMode: 'request' } });
    expect(announcer.announce('eth0', '198.51.100.7')).toBe(1);
    clock.advance(10_000);
    expect(log()).toEqual(['0 req 198.51.100.7', '100 req 198.51.100.7', '200 req 198.51.100.7', '1000 req 198.51.100.7', '1100 req 198.51.100.7']);
  });

  it('a second burst due before the first one ends starts right after it', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 3, burstSpacingMs: 400, secondBurst: 1, secondBurstDelayMs: 500, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(10_000);
    expect(log()).toEqual(['0 req 198.51.100.7', '400 req 198.51.100.7', '800 req 198.51.100.7', '800 req 198.51.100.7']);
  });

  it('refreshIntervalMs repeats one round after the bursts until cancelled', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000, refreshIntervalMs: 30_000, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(100_000);
    expect(log()).toEqual(['0 req 198.51.100.7', '1000 req 198.51.100.7', '31000 req 198.51.100.7', '61000 req 198.51.100.7', '91000 req 198.51.100.7']);
    expect(announcer.isAnnouncing('eth0', '198.51.100.7')).toBe(true);
    expect(announcer.cancel('eth0', '198.51.100.7')).toBe(true);
    expect(clock.pending).toBe(0);
    clock.advance(100_000);
    expect(log()).toHaveLength(5);
  });

  it('refresh without a second burst starts after the first', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 2, secondBurst: 0, refreshIntervalMs: 1000, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(2500);
    expect(log()).toEqual(['0 req 198.51.100.7', '0 req 198.51.100.7', '1000 req 198.51.100.7', '2000 req 198.51.100.7']);
  });

  it('announcing an address again restarts its schedule', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(600);
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(5000);
    expect(log()).toEqual(['0 req 198.51.100.7', '600 req 198.51.100.7', '1600 req 198.51.100.7']);
  });

  it('announceNow sends one round at once and leaves the schedule alone', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000 } });
    expect(announcer.announceNow('eth0', '198.51.100.9')).toBe(2); // no schedule needed
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(300);
    expect(announcer.announceNow('eth0', '198.51.100.7', { arpMode: 'reply' })).toBe(1);
    clock.advance(5000);
    expect(log()).toEqual([
      '0 req 198.51.100.9',
      '0 rep 198.51.100.9',
      '0 req 198.51.100.7',
      '0 rep 198.51.100.7',
      '300 rep 198.51.100.7',
      '1000 req 198.51.100.7',
      '1000 rep 198.51.100.7',
    ]);
    expect(announcer.isAnnouncing('eth0', '198.51.100.9')).toBe(false);
  });

  it('cancel, cancelAll, and addresses in any text form', () => {
    const { clock, announcer, log } = setup({ schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000, arpMode: 'request' } });
    announcer.announce('eth0', '2001:DB8:0::7');
    announcer.announce('eth0', '198.51.100.7');
    announcer.announce('eth0', '198.51.100.8');
    expect(announcer.cancel('eth0', '2001:db8::7')).toBe(true);
    expect(announcer.cancel('eth0', '2001:db8::7')).toBe(false);
    expect(announcer.cancel('eth1', '198.51.100.7')).toBe(false); // never opened
    expect(announcer.cancel('eth0', 'not an address')).toBe(false);
    expect(announcer.stats()[0]!.announcing).toBe(2);
    announcer.cancelAll();
    expect(announcer.stats()[0]!.announcing).toBe(0);
    clock.advance(5000);
    expect(log()).toEqual(['0 na 2001:db8::7 O', '0 req 198.51.100.7', '0 req 198.51.100.8']);
  });

  it("announceAll sends every address's first frame, then the rest of the first rounds, the burst's repeats from the next timer turn, then the schedules run as announce's", () => {
    const { announcer, clock, log } = setup({ schedule: { burst: 3, secondBurst: 1, secondBurstDelayMs: 100 } });
    expect(announcer.announceAll([{ link: 'eth0', address: '198.51.100.7' }, { link: 'eth0', address: '2001:db8::7' }])).toBe(3);
    expect(log()).toEqual(['0 req 198.51.100.7', '0 na 2001:db8::7 O', '0 rep 198.51.100.7']);
    clock.advance(0);
    expect(log()).toEqual(['0 req 198.51.100.7', '0 na 2001:db8::7 O', '0 rep 198.51.100.7', '0 req 198.51.100.7', '0 rep 198.51.100.7', '0 req 198.51.100.7', '0 rep 198.51.100.7', '0 na 2001:db8::7 O', '0 na 2001:db8::7 O']);
    clock.advance(100);
    expect(log().slice(9)).toEqual(['100 req 198.51.100.7', '100 rep 198.51.100.7', '100 na 2001:db8::7 O']);
    expect(() => announcer.announceAll([{ link: 'eth0', address: '198.51.100.8' }, { link: 'eth0', address: 'nope' }])).toThrow(RangeError);
    expect(log()).toHaveLength(12); // nothing sent for the valid one either
  });

  it("announceAll with pacing spends the burst's tokens on every address's first frame before any second frame", () => {
    const { announcer, clock, log } = setup({ schedule: { burst: 1, secondBurst: 0 }, pacing: { burstFrames: 2, framesPerSecond: 1000 } });
    const addresses = ['198.51.100.7', '198.51.100.8', '198.51.100.9'];
    expect(announcer.announceAll(addresses.map((address) => ({ link: 'eth0', address })))).toBe(2);
    expect(log()).toEqual(['0 req 198.51.100.7', '0 req 198.51.100.8']);
    clock.advance(10);
    // The third address's first frame ahead of every reply, then the replies in order.
    expect(log()).toEqual(['0 req 198.51.100.7', '0 req 198.51.100.8', '1 req 198.51.100.9', '2 rep 198.51.100.7', '3 rep 198.51.100.8', '4 rep 198.51.100.9']);
  });

  it('prepareAll opens the socket and encodes the frames ahead; announce and announceNow then send those same frames', () => {
    const { announcer, opened, log } = setup({ schedule: { burst: 1, secondBurst: 0 } });
    announcer.prepareAll([{ link: 'eth0', address: '198.51.100.7' }, { link: 'eth0', address: '2001:db8::7' }]);
    expect(opened.map((l) => l.name)).toEqual(['eth0']);
    expect(opened[0]!.sent).toEqual([]); // nothing sent yet
    announcer.announce('eth0', '198.51.100.7');
    announcer.announceNow('eth0', '2001:db8::7');
    announcer.announce('eth0', '198.51.100.7'); // again: the same cached frames
    expect(log()).toEqual(['0 req 198.51.100.7', '0 rep 198.51.100.7', '0 na 2001:db8::7 O', '0 req 198.51.100.7', '0 rep 198.51.100.7']);
    expect(() => announcer.prepareAll([{ link: 'eth0', address: 'nope' }])).toThrow(RangeError);
    expect(() => announcer.prepareAll([{ link: 'eth0', address: '198.51.100.7' }], { schedule: { arpMode: 'x' as never } })).toThrow(/arpMode/);
  });

  it("prepareAll does announceAll's checks, socket opening and encoding once; announceAll(prepared) then only sends, as often as asked", () => {
    const { announcer, opened, log, clock } = setup({ schedule: { burst: 1, secondBurst: 0 } });
    const prepared = announcer.prepareAll([{ link: 'eth0', address: '198.51.100.7' }, { link: 'eth0', address: '2001:db8::7' }], { schedule: { arpMode: 'request' } });
    expect(prepared.targets).toEqual([{ link: 'eth0', address: '198.51.100.7' }, { link: 'eth0', address: '2001:db8::7' }]);
    expect(opened.map((l) => l.name)).toEqual(['eth0']);
    expect(opened[0]!.sent).toEqual([]); // nothing sent yet
    // The options given to prepareAll hold (arpMode 'request'), whatever announceAll is given.
    expect(announcer.announceAll(prepared, { schedule: { arpMode: 'reply' } })).toBe(2);
    expect(announcer.announceAll(prepared)).toBe(2); // again: a restart
    expect(log()).toEqual(['0 req 198.51.100.7', '0 na 2001:db8::7 O', '0 req 198.51.100.7', '0 na 2001:db8::7 O']);
    // Its socket closed meanwhile (forget): resolved again, on a new socket.
    announcer.forget('eth0');
    expect(opened[0]!.closed).toBe(1);
    clock.advance(1);
    expect(announcer.announceAll(prepared)).toBe(2);
    expect(opened).toHaveLength(2);
    expect(log(opened[1])).toEqual(['1 req 198.51.100.7', '1 na 2001:db8::7 O']);
    expect(announcer.announceAll(prepared)).toBe(2); // again: on the same new socket
    expect(opened).toHaveLength(2);
    expect(() => announcer.prepareAll([{ link: 'eth0', address: '198.51.100.8' }, { link: 'eth0', address: 'nope' }])).toThrow(RangeError);
    expect(() => announcer.prepareAll('eth0' as never)).toThrow(/targets must be an array/);
  });

  it('announceAll with what another announcer prepared resolves it on its own interfaces', () => {
    const first = setup({ schedule: { burst: 1, secondBurst: 0 } });
    const second = setup({ schedule: { burst: 1, secondBurst: 0 } });
    const prepared = first.announcer.prepareAll([{ link: 'eth0', address: '198.51.100.7' }]);
    expect(second.announcer.announceAll(prepared)).toBe(2);
    expect(first.opened[0]!.sent).toEqual([]);
    expect(second.log()).toEqual(['0 req 198.51.100.7', '0 rep 198.51.100.7']);
  });

  it('one socket per interface, shared between its name and its index', () => {
    const { announcer, opened } = setup({ schedule: { burst: 1, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    announcer.announce('eth0', '198.51.100.8');
    announcer.announce(2, '198.51.100.9'); // index 2 is eth0: known, not opened again
    announcer.announce('lan0', '198.51.100.10'); // eth0 renamed: opened, found to be index 2, closed, shared
    announcer.announce('lan0', '198.51.100.11'); // now known under that name too
    announcer.announce('eth1', '198.51.100.12');
    expect(opened.map((l) => [l.name, l.closed])).toEqual([['eth0', 0], ['lan0', 1], ['eth1', 0]]);
    expect(opened[0]!.sent).toHaveLength(5);
    expect(announcer.stats().map((s) => [s.name, s.framesSent])).toEqual([['eth0', 5], ['eth1', 1]]);
  });

  it('forget closes an interface\'s socket and cancels its announcements; close closes everything', () => {
    const { clock, announcer, opened } = setup({ schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    announcer.announce('eth1', '198.51.100.8');
    expect(announcer.forget('eth0')).toBe(true);
    expect(announcer.forget('eth0')).toBe(false);
    expect(opened[0]!.closed).toBe(1);
    announcer.announce(2, '198.51.100.7'); // reopened
    expect(opened).toHaveLength(3);
    announcer.close();
    announcer.close();
    expect(opened.map((l) => l.closed)).toEqual([1, 1, 1]);
    expect(clock.pending).toBe(0);
    expect(() => announcer.announce('eth0', '198.51.100.7')).toThrow(/closed/);
  });

  it('send errors are counted and reported, never thrown', () => {
    const errors: [string, string, string][] = [];
    const { clock, announcer, opened } = setup({
      schedule: { burst: 1, secondBurst: 1, secondBurstDelayMs: 1000, arpMode: 'request' },
      onSendError: (e, c) => errors.push([(e as Error).message, c.link, c.address]),
    });
    announcer.announce('eth0', '198.51.100.7');
    opened[0]!.failWith = new Error('ENETDOWN');
    expect(announcer.announce('eth0', '198.51.100.8')).toBe(1);
    clock.advance(1000);
    announcer.announceNow('eth0', '198.51.100.9');
    opened[0]!.failWith = undefined;
    announcer.announceNow('eth0', '198.51.100.9');
    expect(errors).toEqual([
      ['ENETDOWN', 'eth0', '198.51.100.8'],
      ['ENETDOWN', 'eth0', '198.51.100.7'],
      ['ENETDOWN', 'eth0', '198.51.100.8'],
      ['ENETDOWN', 'eth0', '198.51.100.9'],
    ]);
    expect(announcer.stats()[0]).toMatchObject({ framesSent: 2, sendErrors: 4 });
    // Without a callback, still counted.
    const quiet = setup({ schedule: { burst: 1, secondBurst: 0 } });
    quiet.announcer.announce('eth0', '198.51.100.7');
    quiet.opened[0]!.failWith = new Error('ENOBUFS');
    expect(() => quiet.announcer.announce('eth0', '198.51.100.7')).not.toThrow();
    expect(quiet.announcer.stats()[0]).toMatchObject({ framesSent: 2, sendErrors: 2 });
  });

  it('validates its arguments before sending anything', () => {
    const { announcer, opened } = setup();
    expect(() => announcer.announce('eth0', '198.51.100.300')).toThrow(RangeError);
    expect(() => announcer.announce('eth0', 42 as unknown as string)).toThrow(RangeError);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { burst: 0 } })).toThrow(/burst must be an integer in \[1, 100\]/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { secondBurst: 101 } })).toThrow(/secondBurst/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { burstSpacingMs: -1 } })).toThrow(/burstSpacingMs/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { refreshIntervalMs: 0.5 } })).toThrow(/refreshIntervalMs/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { arpMode: 'garp' as 'both' } })).toThrow(/arpMode/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { schedule: { brust: 5 } as object })).toThrow(/unknown schedule field brust/);
    expect(() => announcer.announce('eth0', '198.51.100.7', { router: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => announcer.announce(0, '198.51.100.7')).toThrow(TypeError);
    expect(() => announcer.announceNow('eth0', '198.51.100.7', { arpMode: 'x' as 'both' })).toThrow(/arpMode/);
    expect(opened.every((l) => l.sent.length === 0)).toBe(true);
    expect(() => new Announcer({ pacing: { framesPerSecond: 0 } })).toThrow(/framesPerSecond/);
    expect(() => new Announcer({ pacing: { burstFrames: 0 } })).toThrow(/burstFrames/);
    expect(() => new Announcer({ pacing: 'fast' as unknown as false })).toThrow(TypeError);
    expect(() => new Announcer({ schedule: { secondBurstDelayMs: Infinity } })).toThrow(/secondBurstDelayMs/);
    expect(resolveSchedule(DEFAULT_ANNOUNCE_SCHEDULE, undefined)).toEqual({
      burst: 5,
      burstSpacingMs: 0,
      secondBurstDelayMs: 5000,
      secondBurst: 5,
      refreshIntervalMs: 0,
      arpMode: 'both',
    });
  });
});

describe('Announcer pacing', () => {
  it('default pacing never delays one address with the default schedule', () => {
    expect(DEFAULT_PACING).toEqual({ framesPerSecond: 2000, burstFrames: 100 });
    const { announcer, log } = setup({ pacing: undefined });
    expect(announcer.announce('eth0', '198.51.100.7')).toBe(10);
    expect(log()).toHaveLength(10);
  });

  it('a token bucket: a burst of burstFrames, then framesPerSecond', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 1000, burstFrames: 3 }, schedule: { burst: 6, secondBurst: 0, arpMode: 'request' } });
    expect(announcer.announce('eth0', '198.51.100.7')).toBe(3);
    expect(announcer.stats()[0]!.queued).toBe(3);
    clock.advance(100);
    expect(log().map((l) => Number(l.split(' ')[0]))).toEqual([0, 0, 0, 1, 2, 3]);
    expect(announcer.isAnnouncing('eth0', '198.51.100.7')).toBe(false);
    // The bucket refills while idle, up to burstFrames.
    clock.advance(1000);
    announcer.announce('eth0', '198.51.100.8');
    expect(log().slice(6).map((l) => Number(l.split(' ')[0]))).toEqual([1100, 1100, 1100]);
  });

  it('fractional rates wait for a whole token', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 3, burstFrames: 1 }, schedule: { burst: 3, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    clock.advance(2000);
    expect(log().map((l) => Number(l.split(' ')[0]))).toEqual([0, 334, 668]);
  });

  it('the first frame of each new announcement goes ahead of queued repeats', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 1000, burstFrames: 2 }, schedule: { burst: 3, secondBurst: 0, arpMode: 'request' } });
    expect(announcer.announce('eth0', '198.51.100.1')).toBe(2);
    expect(announcer.announce('eth0', '198.51.100.2')).toBe(0); // bucket empty: queued, but ahead of .1's repeat
    expect(announcer.announce('eth0', '198.51.100.3')).toBe(0);
    clock.advance(100);
    expect(log()).toEqual([
      '0 req 198.51.100.1',
      '0 req 198.51.100.1',
      '1 req 198.51.100.2',
      '2 req 198.51.100.3',
      '3 req 198.51.100.1',
      '4 req 198.51.100.2',
      '5 req 198.51.100.2',
      '6 req 198.51.100.3',
      '7 req 198.51.100.3',
    ]);
  });

  it('an urgent frame is sent at once when only repeats are queued', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 1000, burstFrames: 2 }, schedule: { burst: 4, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.1'); // 2 sent, 2 repeats queued
    clock.advance(1); // one repeat drained; the bucket is empty again
    clock.advance(0.5); // half a token
    expect(announcer.announceNow('eth0', '198.51.100.9', { arpMode: 'request' })).toBe(0);
    clock.advance(0.5);
    expect(log()).toEqual(['0 req 198.51.100.1', '0 req 198.51.100.1', '1 req 198.51.100.1', '2 req 198.51.100.9']);
    clock.advance(10);
    expect(log()).toHaveLength(5);
  });

  it('cancel drops queued frames; stop of a finished announcement with queued frames too', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 100, burstFrames: 1 }, schedule: { burst: 5, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.1');
    announcer.announce('eth0', '198.51.100.2');
    expect(announcer.isAnnouncing('eth0', '198.51.100.1')).toBe(true); // schedule done, frames still queued
    expect(announcer.stats()[0]!.queued).toBe(9);
    expect(announcer.cancel('eth0', '198.51.100.1')).toBe(true);
    expect(announcer.stats()[0]!.queued).toBe(5);
    announcer.announce('eth0', '198.51.100.2'); // restart: its old queued frames go, new ones come
    expect(announcer.stats()[0]!.queued).toBe(5);
    clock.advance(1000);
    expect(log().map((l) => l.split(' ')[2])).toEqual(['198.51.100.1', ...new Array(5).fill('198.51.100.2')]);
    expect(clock.pending).toBe(0);
  });

  it('a long queue (thousands of frames) drains completely and in order', () => {
    const { clock, announcer, log } = setup({ pacing: { framesPerSecond: 1000, burstFrames: 1 }, schedule: { burst: 1, secondBurst: 0, arpMode: 'both' } });
    const addresses = Array.from({ length: 500 }, (_, i) => `${i < 250 ? '198.51.100' : '203.0.113'}.${(i % 250) + 1}`);
    for (const a of addresses) announcer.announce('eth0', a);
    expect(announcer.stats()[0]!.queued).toBe(999);
    clock.advance(2000);
    // Every address's request (urgent) first, in order; then every reply.
    expect(log().map((l) => l.split(' ').slice(1).join(' '))).toEqual([
      ...addresses.map((a) => `req ${a}`),
      ...addresses.map((a) => `rep ${a}`),
    ]);
    expect(announcer.stats()[0]).toMatchObject({ queued: 0, announcing: 0, framesSent: 1000 });
  });

  it('a queued frame that fails to send is reported with its address', () => {
    const errors: string[] = [];
    const { clock, announcer, opened } = setup({
      pacing: { framesPerSecond: 1000, burstFrames: 1 },
      schedule: { burst: 2, secondBurst: 0, arpMode: 'request' },
      onSendError: (e, c) => errors.push(`${(e as Error).message} ${c.address}`),
    });
    announcer.announce('eth0', '2001:DB8::7');
    announcer.announceNow('eth0', '198.51.100.9');
    opened[0]!.failWith = new Error('ENOBUFS');
    clock.advance(10);
    expect(errors).toEqual(['ENOBUFS 198.51.100.9', 'ENOBUFS 2001:DB8::7']); // the urgent announceNow frame first
    expect(announcer.stats()[0]).toMatchObject({ framesSent: 1, sendErrors: 2, queued: 0, announcing: 0 });
  });

  it('pacing is per interface', () => {
    const { announcer, opened } = setup({ pacing: { framesPerSecond: 10, burstFrames: 1 }, schedule: { burst: 1, secondBurst: 0, arpMode: 'request' } });
    expect(announcer.announce('eth0', '198.51.100.1')).toBe(1);
    expect(announcer.announce('eth1', '198.51.100.2')).toBe(1);
    expect(announcer.announce('eth0', '198.51.100.3')).toBe(0);
    expect(opened.map((l) => l.sent.length)).toEqual([1, 1]);
  });

  it('close clears the drain timer', () => {
    const { clock, announcer } = setup({ pacing: { framesPerSecond: 10, burstFrames: 1 }, schedule: { burst: 3, secondBurst: 0 } });
    announcer.announce('eth0', '198.51.100.1');
    expect(clock.pending).toBe(1);
    announcer.close();
    expect(clock.pending).toBe(0);
  });
});

describe('systemClock', () => {
  it('unrefs its timers so an announcer never keeps the process alive', () => {
    const t = systemClock.setTimeout(() => {}, 60_000) as NodeJS.Timeout;
    try {
      expect(t.hasRef()).toBe(false);
    } finally {
      systemClock.clearTimeout(t);
    }
    const a = systemClock.now();
    expect(systemClock.now()).toBeGreaterThanOrEqual(a);
  });
});

// Keep the MAC helper honest: the fake interface's MAC is what goes out.
describe('FakeLink', () => {
  it('announces with the interface MAC', () => {
    const { announcer, opened } = setup({ schedule: { burst: 1, secondBurst: 0, arpMode: 'request' } });
    announcer.announce('eth0', '198.51.100.7');
    expect(formatMac(decodeArp(opened[0]!.sent[0]!.frame).senderMac)).toBe(MAC);
  });
});
