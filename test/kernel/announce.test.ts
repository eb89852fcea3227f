/**
 * Announcements and conflict detection against the real kernel, in
 * throwaway namespaces (test/helpers/netns.ts): hosts a, b, c with eth0 on
 * one bridge. a runs vipa; b is a Linux peer whose neighbour table must
 * follow the announcements (read with `ip -json neigh`); c is another host
 * that holds addresses with plain ip(8) and never announces them.
 *
 * Addresses: 198.51.100.0/24 and 2001:db8::/64 only.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VipaError } from '../../lib/errors.js';
import { Netlink } from '../../lib/netlink/netlink.js';
import { Announcer } from '../../lib/packets/announcer.js';
import { ConflictDetector, type ConflictEvent } from '../../lib/packets/conflict.js';
import { LinkSocket, type LinkFrame } from '../../lib/packets/link-socket.js';
import { formatIp, formatMac, parseIp } from '../../lib/ip.js';
import { encodeGratuitousArp } from '../../lib/packets/arp.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const dist = join(__dirname, '../../dist');

const MAC = { a: '02:00:00:00:01:0a', b: '02:00:00:00:01:0b', c: '02:00:00:00:01:0c', old: '02:00:00:00:01:ee' };

/** b's neighbour entry for `address` on eth0: its MAC and state, or undefined when there is none. */
function neighbour(host: TestHost, address: string): { lladdr: string | undefined; state: string[] } | undefined {
  const entries = host.ipJson<{ dst: string; lladdr?: string; state: string[] }[]>('neigh', 'show', address, 'dev', 'eth0');
  const e = entries.find((x) => x.dst === address);
  return e && { lladdr: e.lladdr, state: e.state };
}

/** Polls `read` until `done` holds (bounded); returns the last value. Frames cross namespaces in softirq, not inside sendto(2). */
async function until<T>(read: () => T, done: (v: T) => boolean, what: string, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

async function setupLan(names: string[]): Promise<TestLan> {
  const lan = await createLan(names);
  for (const [i, name] of names.entries()) {
    const h = lan.host(name);
    h.ip('link', 'set', 'eth0', 'address', MAC[name as 'a' | 'b' | 'c']);
    h.ip('addr', 'add', `198.51.100.${i + 1}/24`, 'dev', 'eth0');
    h.ip('addr', 'add', `2001:db8::${i + 1}/64`, 'dev', 'eth0', 'nodad');
  }
  return lan;
}

describe.skipIf(skipKernelTests())('a peer\'s neighbour table follows the announcements', () => {
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  let c: TestHost;
  let nl: Netlink;
  let announcer: Announcer;
  const once = { burst: 1, secondBurst: 0 };
  beforeAll(async () => {
    lan = await setupLan(['a', 'b', 'c']);
    [a, b, c] = [lan.host('a'), lan.host('b'), lan.host('c')];
    nl = new Netlink({ netns: a.netns });
    announcer = new Announcer({ netns: a.netns, pacing: false });
  });
  afterAll(async () => {
    announcer?.close();
    nl?.close();
    await lan?.destroy();
  });

  it('IPv4 takeover from c: b, which just talked to c, maps the address to a after one gratuitous ARP request', async () => {
    const address = '198.51.100.50';
    c.ip('addr', 'add', `${address}/24`, 'dev', 'eth0');
    b.run('ping', '-c', '1', '-W', '2', address);
    expect(neighbour(b, address)).toMatchObject({ lladdr: MAC.c, state: ['REACHABLE'] });
    c.ip('addr', 'del', `${address}/24`, 'dev', 'eth0');
    nl.addrAddSync({ link: 'eth0', address: `${address}/24` });
    // The kernel itself announces nothing on an address add (DESIGN.md): still c.
    expect(neighbour(b, address)?.lladdr).toBe(MAC.c);
    expect(announcer.announce('eth0', address, { schedule: { ...once, arpMode: 'request' } })).toBe(1);
    await until(() => neighbour(b, address)?.lladdr, (m) => m === MAC.a, 'b maps the address to a');
    b.run('ping', '-c', '1', '-W', '2', address); // and b really reaches a there
    nl.addrDelSync({ link: 'eth0', address: `${address}/24` });
  });

  for (const arpMode of ['request', 'reply'] as const) {
    for (const nud of ['stale', 'reachable'] as const) {
      it(`IPv4, gratuitous ARP ${arpMode} alone, entry ${nud}`, async () => {
        const target = `198.51.100.${arpMode === 'request' ? 6 : 7}${nud === 'stale' ? 1 : 2}`;
        b.ip('neigh', 'replace', target, 'lladdr', MAC.old, 'dev', 'eth0', 'nud', nud);
        expect(neighbour(b, target)).toEqual({ lladdr: MAC.old, state: [nud.toUpperCase()] });
        nl.addrAddSync({ link: 'eth0', address: `${target}/24` });
        announcer.announce('eth0', target, { schedule: { ...once, arpMode } });
        await until(() => neighbour(b, target)?.lladdr, (m) => m === MAC.a, `b maps ${target} to a`);
        nl.addrDelSync({ link: 'eth0', address: `${target}/24` });
      });
    }
  }

  it('IPv4: a Linux peer with arp_accept=0 creates no entry from a gratuitous ARP', async () => {
    expect(b.run('sysctl', '-n', 'net.ipv4.conf.eth0.arp_accept').trim()).toBe('0');
    const target = '198.51.100.80';
    announcer.announce('eth0', target, { schedule: once });
    // Prove the frames arrived (b's own receive socket sees them), then that no entry appeared.
    using rx = LinkSocket.open({ link: 'eth0', netns: b.netns, receive: true });
    const seen: string[] = [];
    rx.onFrame((f) => f.kind === 'arp' && seen.push(`${f.packet.operation} ${formatIp(f.packet.senderIp)}`));
    announcer.announceNow('eth0', target);
    await until(() => seen, (s) => s.length >= 2, 'b receives the request and the reply');
    expect(seen).toEqual([`request ${target}`, `reply ${target}`]);
    expect(neighbour(b, target)).toBeUndefined();
  });

  it('IPv6 takeover from c: b maps the address to a after one unsolicited NA', async () => {
    const address = '2001:db8::50';
    c.ip('addr', 'add', `${address}/64`, 'dev', 'eth0', 'nodad');
    b.run('ping', '-6', '-c', '1', '-W', '2', address);
    expect(neighbour(b, address)).toMatchObject({ lladdr: MAC.c, state: ['REACHABLE'] });
    c.ip('addr', 'del', `${address}/64`, 'dev', 'eth0');
    nl.addrAddSync({ link: 'eth0', address: `${address}/64`, nodad: true });
    expect(neighbour(b, address)?.lladdr).toBe(MAC.c);
    expect(announcer.announce('eth0', address, { schedule: once })).toBe(1);
    await until(() => neighbour(b, address)?.lladdr, (m) => m === MAC.a, 'b maps the address to a');
    b.run('ping', '-6', '-c', '1', '-W', '2', address);
    nl.addrDelSync({ link: 'eth0', address: `${address}/64` });
  });

  for (const nud of ['stale', 'reachable'] as const) {
    it(`IPv6, entry ${nud}`, async () => {
      const target = nud === 'stale' ? '2001:db8::61' : '2001:db8::62';
      b.ip('-6', 'neigh', 'replace', target, 'lladdr', MAC.old, 'dev', 'eth0', 'nud', nud);
      expect(neighbour(b, target)).toEqual({ lladdr: MAC.old, state: [nud.toUpperCase()] });
      nl.addrAddSync({ link: 'eth0', address: `${target}/64`, nodad: true });
      announcer.announce('eth0', target, { schedule: once });
      await until(() => neighbour(b, target)?.lladdr, (m) => m === MAC.a, `b maps ${target} to a`);
      nl.addrDelSync({ link: 'eth0', address: `${target}/64` });
    });
  }

  it('the NA carries the Router flag when a forwards IPv6, and b marks a as a router', async () => {
    a.run('sysctl', '-q', '-w', 'net.ipv6.conf.eth0.forwarding=1');
    try {
      using routerAnnouncer = new Announcer({ netns: a.netns, pacing: false });
      const target = '2001:db8::63';
      b.ip('-6', 'neigh', 'replace', target, 'lladdr', MAC.old, 'dev', 'eth0', 'nud', 'stale');
      routerAnnouncer.announce('eth0', target, { schedule: once });
      const entry = await until(
        () => b.ipJson<{ dst: string; lladdr?: string; router?: null }[]>('neigh', 'show', target, 'dev', 'eth0')[0],
        (e) => e?.lladdr === MAC.a,
        'b maps the address to a',
      );
      expect(entry).toHaveProperty('router'); // `ip -json` prints "router": null for NTF_ROUTER
    } finally {
      a.run('sysctl', '-q', '-w', 'net.ipv6.conf.eth0.forwarding=0');
    }
  });
});

describe.skipIf(skipKernelTests())('receive sockets: kernel filter, own frames, schedule on the wire', () => {
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  beforeAll(async () => {
    lan = await setupLan(['a', 'b']);
    [a, b] = [lan.host('a'), lan.host('b')];
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('the default first burst (5 × request+reply) is on the wire when announce() returns; only ARP/NDP wakes the reader', async () => {
    using rxB = LinkSocket.open({ link: 'eth0', netns: b.netns, receive: true });
    using rxA = LinkSocket.open({ link: 'eth0', netns: a.netns, receive: true });
    const atB: LinkFrame[] = [];
    const atA: LinkFrame[] = [];
    rxB.onFrame((f) => atB.push(f));
    rxA.onFrame((f) => atA.push(f));
    // Traffic the filter must drop in the kernel: ICMP and ICMPv6 echo between a and b.
    a.run('ping', '-c', '3', '-i', '0.01', '-W', '2', '198.51.100.2');
    a.run('ping', '-6', '-c', '3', '-i', '0.01', '-W', '2', '2001:db8::2');
    using announcer = new Announcer({ netns: a.netns });
    expect(announcer.announce('eth0', '198.51.100.90')).toBe(10);
    const garps = () => atB.filter((f) => f.kind === 'arp' && formatIp(f.packet.senderIp) === '198.51.100.90');
    await until(garps, (g) => g.length >= 10, 'b receives the first burst');
    expect(garps().map((f) => (f.kind === 'arp' ? `${f.packet.operation} ${formatMac(f.packet.senderMac)}` : ''))).toEqual(
      Array.from({ length: 5 }, () => [`request ${MAC.a}`, `reply ${MAC.a}`]).flat(),
    );
    expect(announcer.stats()).toEqual([{ name: 'eth0', ifindex: rxA.ifindex, framesSent: 10, sendErrors: 0, queued: 0, announcing: 1 }]);
    expect(announcer.cancel('eth0', '198.51.100.90')).toBe(true);
    // Nothing but ARP and NS/NA reached JavaScript, though echo traffic crossed both interfaces.
    for (const s of [rxA.stats, rxB.stats]) expect(s).toMatchObject({ ignored: 0, decodeErrors: 0, receiveErrors: 0 });
    expect(rxB.stats.framesReceived).toBe(atB.length);
    expect(atB.every((f) => f.kind === 'arp' || f.packet.type === 'ns' || f.packet.type === 'na')).toBe(true);
    // PACKET_IGNORE_OUTGOING: a's reader never sees a's own announcements.
    expect(atA.filter((f) => f.kind === 'arp' && formatMac(f.packet.senderMac) === MAC.a)).toEqual([]);
  });

  it('malformed ARP/NDP frames that pass the filter are counted and dropped, never thrown', async () => {
    using rxB = LinkSocket.open({ link: 'eth0', netns: b.netns, receive: true });
    using tx = LinkSocket.open({ link: 'eth0', netns: a.netns });
    const good: LinkFrame[] = [];
    rxB.onFrame((f) => good.push(f));
    const bad = Buffer.from('ffffffffffff' + '02000000010a' + '0806' + '0001' + '0800' + '0604' + '0003' + '00'.repeat(20), 'hex'); // ar$op 3
    const badNs = Buffer.alloc(78); // NS type at 54, but nothing else right
    Buffer.from('333300000001' + '02000000010a' + '86dd' + '60000000' + '0018' + '3aff', 'hex').copy(badNs);
    badNs[54] = 135;
    tx.send(bad);
    tx.send(badNs);
    tx.send(Buffer.from('ffffffffffff02000000010a0806000108000604000102000000010ac6336401000000000000c6336401', 'hex')); // a valid GARP after them
    await until(() => good.length, (n) => n >= 1, 'the valid frame arrives');
    expect(rxB.stats.decodeErrors).toBe(2);
    expect(rxB.lastDecodeError?.name).toBe('DecodeError');
    expect(tx.stats.framesSent).toBe(3);
  });

  it('a paused receive socket gets nothing until resumed; bad pause/resume calls are refused', async () => {
    using rxB = LinkSocket.open({ link: 'eth0', netns: b.netns, receive: true, paused: true });
    using tx = LinkSocket.open({ link: 'eth0', netns: a.netns });
    const seen: string[] = [];
    rxB.onFrame((f) => {
      if (f.kind === 'arp') seen.push(formatIp(f.packet.senderIp));
    });
    const garp = (address: string) => tx.send(encodeGratuitousArp({ mac: tx.mac, address: parseIp(address)!.bytes, operation: 'request' }));
    expect(rxB.paused).toBe(true);
    garp('198.51.100.93'); // dropped in b's kernel by the drop-all filter
    rxB.resume();
    expect(rxB.paused).toBe(false);
    garp('198.51.100.94');
    await until(() => seen.length, (n) => n >= 1, 'b receives the frame sent while resumed');
    rxB.pause();
    garp('198.51.100.95');
    rxB.resume();
    garp('198.51.100.96');
    await until(() => seen.length, (n) => n >= 2, 'b receives the frame sent after resuming again');
    expect(seen).toEqual(['198.51.100.94', '198.51.100.96']);
    expect(() => tx.pause()).toThrow(/send-only/);
    expect(() => LinkSocket.open({ link: 'eth0', netns: a.netns, paused: true })).toThrow(TypeError);
    expect(() => LinkSocket.open({ link: 'eth0', netns: a.netns, receive: true, paused: 'yes' as unknown as boolean })).toThrow(/paused must be a boolean/);
    rxB.close();
    expect(() => rxB.resume()).toThrow(VipaError);
  });

  it('sockets are released by close() and using; a closed socket refuses to send', () => {
    const before = openFds();
    const s = LinkSocket.open({ link: 'eth0', netns: a.netns, receive: true });
    {
      using t = LinkSocket.open({ link: 2, netns: a.netns });
      expect(t.name).toBe('eth0');
      expect(openFds()).toBe(before + 2);
    }
    expect(openFds()).toBe(before + 1);
    s.close();
    s.close();
    expect(openFds()).toBe(before);
    expect(s.open).toBe(false);
    expect(() => s.send(Buffer.alloc(42))).toThrow(VipaError);
    expect(() => s.send(Buffer.alloc(42))).toThrow(/EBADF/);
    const announcer = new Announcer({ netns: a.netns, pacing: false });
    announcer.announce('eth0', '198.51.100.91', { schedule: { burst: 1, secondBurst: 0 } });
    announcer.announce(s.ifindex, '198.51.100.92', { schedule: { burst: 1, secondBurst: 0 } });
    expect(openFds()).toBe(before + 1); // one socket for the interface, by name or index
    announcer.close();
    expect(openFds()).toBe(before);
  });
});

describe.skipIf(skipKernelTests())('conflict detection', () => {
  let lan: TestLan;
  let a: TestHost;
  let c: TestHost;
  let nl: Netlink;
  beforeAll(async () => {
    lan = await setupLan(['a', 'b', 'c']);
    [a, c] = [lan.host('a'), lan.host('c')];
    nl = new Netlink({ netns: a.netns });
  });
  afterAll(async () => {
    nl?.close();
    await lan?.destroy();
  });

  for (const family of ['IPv4', 'IPv6'] as const) {
    it(`${family}: c holds a watched address too, silently: reported with c's MAC after the first probe, then released`, async () => {
      const address = family === 'IPv4' ? '198.51.100.100' : '2001:db8::100';
      const prefix = family === 'IPv4' ? 24 : 64;
      nl.addrAddSync({ link: 'eth0', address: `${address}/${prefix}`, nodad: family === 'IPv6' ? true : undefined });
      c.ip('addr', 'add', `${address}/${prefix}`, 'dev', 'eth0', ...(family === 'IPv6' ? ['nodad'] : []));
      try {
        using detector = new ConflictDetector({ link: 'eth0', netns: a.netns, probeIntervalMs: 1000 });
        const events: (ConflictEvent & { probesSent: number })[] = [];
        detector.on('conflict', (e) => events.push({ ...e, probesSent: detector.stats.probesSent }));
        detector.watch(address);
        await until(() => events.length, (n) => n >= 2, 'two conflicts');
        const via = family === 'IPv4' ? 'arp' : 'na';
        // The first answer, to the first probe (sent inside watch()), is reported before the second probe: within one interval.
        expect(events[0]).toEqual({ address, mac: MAC.c, via, action: 'defended', probesSent: 1 });
        expect(events[1]).toMatchObject({ address, mac: MAC.c, via, action: 'release' });
        expect(detector.watching()).toEqual([]);
        expect(detector.stats.defenses).toBe(1);
      } finally {
        c.ip('addr', 'del', `${address}/${prefix}`, 'dev', 'eth0');
        nl.addrDelSync({ link: 'eth0', address: `${address}/${prefix}` });
      }
    });
  }

  it('an address nobody else holds raises no conflict over several probes', async () => {
    nl.addrAddSync({ link: 'eth0', address: '198.51.100.101/24' });
    nl.addrAddSync({ link: 'eth0', address: '2001:db8::101/64', nodad: true });
    try {
      using detector = new ConflictDetector({ link: 'eth0', netns: a.netns, probeIntervalMs: 50 });
      const events: ConflictEvent[] = [];
      detector.on('conflict', (e) => events.push(e));
      detector.watch('198.51.100.101');
      detector.watch('2001:db8::101');
      // b and c resolve a's addresses meanwhile: their requests and a's kernel's replies are not conflicts.
      lan.host('b').run('ping', '-c', '1', '-W', '2', '198.51.100.101');
      c.run('ping', '-6', '-c', '1', '-W', '2', '2001:db8::101');
      await until(() => detector.stats.probesSent, (n) => n >= 8, 'eight probes');
      expect(events).toEqual([]);
      expect(detector.watching().sort()).toEqual(['198.51.100.101', '2001:db8::101']);
    } finally {
      nl.addrDelSync({ link: 'eth0', address: '198.51.100.101/24' });
      nl.addrDelSync({ link: 'eth0', address: '2001:db8::101/64' });
    }
  });

  it('probe() before claiming: in use by c (IPv4 and IPv6), free otherwise', async () => {
    using detector = new ConflictDetector({ link: 'eth0', netns: a.netns });
    c.ip('addr', 'add', '198.51.100.110/24', 'dev', 'eth0');
    c.ip('addr', 'add', '2001:db8::110/64', 'dev', 'eth0', 'nodad');
    try {
      expect(await detector.probe('198.51.100.110')).toEqual({ inUse: true, mac: MAC.c });
      expect(await detector.probe('2001:db8::110')).toEqual({ inUse: true, mac: MAC.c });
      expect(await detector.probe('198.51.100.111')).toEqual({ inUse: false });
      expect(await detector.probe('2001:db8::111')).toEqual({ inUse: false });
      // The probes themselves leave no trace in c's neighbour table (sender 0.0.0.0 / ::).
      expect(neighbour(c, '198.51.100.1')).toBeUndefined();
      expect(detector.stats.probesSent).toBe(2 + 3 + 3); // answered after the first probe each; 3 each when free
    } finally {
      c.ip('addr', 'del', '198.51.100.110/24', 'dev', 'eth0');
      c.ip('addr', 'del', '2001:db8::110/64', 'dev', 'eth0');
    }
  });
});

describe.skipIf(skipKernelTests())('interfaces: refusals, macvlan, bridge port, privileges', () => {
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  let c: TestHost;
  beforeAll(async () => {
    lan = await setupLan(['a', 'b', 'c']);
    [a, b, c] = [lan.host('a'), lan.host('b'), lan.host('c')];
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('refuses a down interface, NOARP, loopback, an interface without a MAC, and an unknown one', () => {
    a.ip('link', 'add', 'v-down', 'type', 'veth', 'peer', 'name', 'v-down-peer');
    expect(() => LinkSocket.open({ link: 'v-down', netns: a.netns })).toThrow(/interface v-down \(index \d+\) cannot send ARP\/NDP announcements: it is down/);
    a.ip('link', 'set', 'v-down', 'up', 'arp', 'off');
    expect(() => LinkSocket.open({ link: 'v-down', netns: a.netns })).toThrow(/v-down .*: it has NOARP set/);
    a.ip('link', 'set', 'v-down', 'arp', 'on');
    LinkSocket.open({ link: 'v-down', netns: a.netns }).close(); // and accepted once fixed
    expect(() => LinkSocket.open({ link: 'lo', netns: a.netns })).toThrow(/interface lo .*loopback/);
    // A tun device has no MAC. Creating one needs /dev/net/tun, which some
    // machines give to root only: then (outside CI) this case says why it is left out.
    let tun = true;
    try {
      a.ip('tuntap', 'add', 'dev', 'tun0', 'mode', 'tun');
    } catch (e) {
      if (process.env.CI) throw e;
      console.warn(`not testing an interface without a MAC: ${(e as Error).message}`);
      tun = false;
    }
    if (tun) {
      a.ip('link', 'set', 'tun0', 'up');
      expect(() => LinkSocket.open({ link: 'tun0', netns: a.netns })).toThrow(/tun0 .*not an Ethernet interface.*NOARP.*no 6-byte MAC/);
    }
    expect(() => LinkSocket.open({ link: 'nonexistent0', netns: a.netns })).toThrow(/unknown interface "nonexistent0"/);
    for (const bad of ['v-down-peer', 'lo', ...(tun ? ['tun0'] : [])]) {
      expect(() => LinkSocket.open({ link: bad, netns: a.netns })).toThrow(RangeError);
      using announcer = new Announcer({ netns: a.netns });
      expect(() => announcer.announce(bad, '198.51.100.7')).toThrow(RangeError);
      expect(() => new ConflictDetector({ link: bad, netns: a.netns })).toThrow(RangeError);
    }
    a.ip('link', 'del', 'v-down');
    if (tun) a.ip('link', 'del', 'tun0');
  });

  it('an interface that goes down after opening: sends fail with ENETDOWN, counted, not thrown', () => {
    a.ip('link', 'add', 'v-flap', 'type', 'veth', 'peer', 'name', 'v-flap-peer');
    a.ip('link', 'set', 'v-flap', 'up');
    const errors: string[] = [];
    using announcer = new Announcer({ netns: a.netns, onSendError: (e) => errors.push((e as VipaError).code) });
    expect(announcer.announceNow('v-flap', '198.51.100.7')).toBe(2);
    a.ip('link', 'set', 'v-flap', 'down');
    expect(() => announcer.announceNow('v-flap', '198.51.100.7')).not.toThrow();
    expect(errors).toEqual(['ENETDOWN', 'ENETDOWN']);
    expect(announcer.stats()[0]).toMatchObject({ framesSent: 2, sendErrors: 2 });
    a.ip('link', 'del', 'v-flap');
  });

  it('works on a macvlan on eth0: b learns the macvlan\'s MAC, and probes through it see c', async () => {
    a.ip('link', 'add', 'mv0', 'link', 'eth0', 'type', 'macvlan', 'mode', 'bridge');
    a.ip('link', 'set', 'mv0', 'address', '02:00:00:00:01:1a', 'up');
    try {
      const target = '198.51.100.120';
      b.ip('neigh', 'replace', target, 'lladdr', MAC.old, 'dev', 'eth0', 'nud', 'stale');
      using announcer = new Announcer({ netns: a.netns, pacing: false });
      announcer.announce('mv0', target, { schedule: { burst: 1, secondBurst: 0, arpMode: 'request' } });
      await until(() => neighbour(b, target)?.lladdr, (m) => m === '02:00:00:00:01:1a', 'b maps the address to mv0');
      c.ip('addr', 'add', '198.51.100.121/24', 'dev', 'eth0');
      using detector = new ConflictDetector({ link: 'mv0', netns: a.netns });
      expect(await detector.probe('198.51.100.121')).toEqual({ inUse: true, mac: MAC.c });
      c.ip('addr', 'del', '198.51.100.121/24', 'dev', 'eth0');
    } finally {
      a.ip('link', 'del', 'mv0');
    }
  });

  it('works on a bridge port and on the bridge: b learns the announced MAC, probes through the port see c', async () => {
    // a's eth0 becomes a port of a bridge in a (as in a host whose uplink is bridged for VMs).
    a.ip('addr', 'flush', 'dev', 'eth0');
    a.ip('link', 'add', 'br0', 'address', '02:00:00:00:01:2a', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    a.ip('link', 'set', 'eth0', 'master', 'br0');
    a.ip('link', 'set', 'br0', 'up');
    try {
      using announcer = new Announcer({ netns: a.netns, pacing: false });
      const once = { schedule: { burst: 1, secondBurst: 0, arpMode: 'reply' as const } };
      b.ip('neigh', 'replace', '198.51.100.130', 'lladdr', MAC.old, 'dev', 'eth0', 'nud', 'stale');
      announcer.announce('eth0', '198.51.100.130', once); // on the port: eth0's MAC
      await until(() => neighbour(b, '198.51.100.130')?.lladdr, (m) => m === MAC.a, 'b maps the address to the port');
      b.ip('-6', 'neigh', 'replace', '2001:db8::130', 'lladdr', MAC.old, 'dev', 'eth0', 'nud', 'stale');
      announcer.announce('br0', '2001:db8::130', once); // on the bridge: br0's MAC
      await until(() => neighbour(b, '2001:db8::130')?.lladdr, (m) => m === '02:00:00:00:01:2a', 'b maps the address to the bridge');
      c.ip('addr', 'add', '2001:db8::131/64', 'dev', 'eth0', 'nodad');
      using detector = new ConflictDetector({ link: 'eth0', netns: a.netns });
      expect(await detector.probe('2001:db8::131')).toEqual({ inUse: true, mac: MAC.c });
      c.ip('addr', 'del', '2001:db8::131/64', 'dev', 'eth0');
    } finally {
      a.ip('link', 'del', 'br0');
    }
  });

  it('without CAP_NET_RAW the error names it', () => {
    const script = `
      const { LinkSocket } = require(${JSON.stringify(join(dist, 'packets/link-socket.js'))});
      try { LinkSocket.open({ link: 'eth0' }); console.log('opened'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, syscall: e.syscall, message: e.message })); }`;
    // Enter the namespace, then drop CAP_NET_RAW from the bounding and inheritable sets so the exec'd node lacks it.
    const r = spawnSync('nsenter', [`--net=${b.netns}`, '--', 'setpriv', '--bounding-set=-net_raw', '--inh-caps=-net_raw', process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { name: string; code: string; syscall: string; message: string };
    expect(out).toMatchObject({ name: 'VipaError', code: 'EPERM', syscall: 'socket' });
    expect(out.message).toMatch(/^packet open \(send\) dev eth0: socket failed: EPERM/);
    expect(out.message).toMatch(/CAP_NET_RAW/);
  });
});
