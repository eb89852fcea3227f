/**
 * The rtnetlink engine against the real kernel, in throwaway namespaces.
 * Every effect is checked through ip(8) — an independent reader — not only
 * through our own listing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Netlink, VIPA_PROTO, VipaError } from '../../lib/index.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  label?: string;
  broadcast?: string;
  valid_life_time?: number;
  preferred_life_time?: number;
  nodad?: boolean;
  noprefixroute?: boolean;
  protocol?: string;
  address?: string;
}

function ipAddrs(host: TestHost, dev = 'eth0'): IpAddrInfo[] {
  const [link] = host.ipJson<{ addr_info: IpAddrInfo[] }[]>('addr', 'show', 'dev', dev);
  return link!.addr_info.filter((a) => a.local.startsWith('198.51.100.') || a.local.startsWith('203.0.113.') || a.local.startsWith('2001:db8:'));
}

describe.skipIf(skipKernelTests())('addresses against the kernel', () => {
  let lan: TestLan;
  let a: TestHost;
  let nl: Netlink;
  let eth0: number;

  beforeAll(async () => {
    lan = await createLan(['a', 'b']);
    a = lan.host('a');
    nl = new Netlink({ netns: a.netns });
    eth0 = nl.linkGetSync('eth0').index;
  });
  afterAll(async () => {
    nl?.close();
    await lan?.destroy();
  });
  // One failing test must not leave addresses that make the next one fail.
  afterEach(() => {
    a.ip('addr', 'flush', 'dev', 'eth0', 'scope', 'global');
  });

  it('adds, lists and deletes IPv4 with label, broadcast, lifetimes and owner tag', () => {
    expect(nl.addrAddSync({ link: 'eth0', address: '198.51.100.10/24', label: 'eth0:vip', broadcast: true, validLifetime: 300, preferredLifetime: 200, proto: VIPA_PROTO })).toBe(true);
    const [seen] = ipAddrs(a);
    expect(seen).toMatchObject({ family: 'inet', local: '198.51.100.10', prefixlen: 24, label: 'eth0:vip', broadcast: '198.51.100.255', valid_life_time: 300, preferred_life_time: 200 });
    // Debian 12's ip(8) predates address protocols; the tag is read back through our own dump below.
    const ours = nl.addrListSync({ link: eth0, proto: VIPA_PROTO });
    expect(ours.map((x) => x.address)).toEqual(['198.51.100.10']);
    expect(ours[0]).toMatchObject({ label: 'eth0:vip', broadcast: '198.51.100.255', prefixLength: 24, validLifetime: 300, preferredLifetime: 200 });
    expect(nl.addrDelSync({ link: eth0, address: '198.51.100.10/24' })).toBe(true);
    expect(ipAddrs(a)).toEqual([]);
  });

  it('adds IPv6 with nodad (never tentative) and noprefixroute', () => {
    nl.addrAddSync({ link: eth0, address: '2001:db8::10/64', nodad: true, noprefixroute: true, proto: VIPA_PROTO });
    const [seen] = ipAddrs(a);
    expect(seen).toMatchObject({ family: 'inet6', local: '2001:db8::10', prefixlen: 64, nodad: true, noprefixroute: true });
    expect(JSON.stringify(seen)).not.toMatch(/tentative/);
    expect(a.ip('-6', 'route', 'show', 'dev', 'eth0')).not.toMatch(/2001:db8::\/64/);
    const [ours] = nl.addrListSync({ family: 6, proto: VIPA_PROTO });
    expect(ours!.flags).toMatchObject({ nodad: true, noprefixroute: true, tentative: false });
    nl.addrDelSync({ link: eth0, address: '2001:db8::10/64' });
    expect(ipAddrs(a)).toEqual([]);
  });

  it('replace updates lifetimes in place; add of an existing address is EEXIST unless allowed', () => {
    nl.addrAddSync({ link: eth0, address: '203.0.113.5/32', validLifetime: 100 });
    nl.addrReplaceSync({ link: eth0, address: '203.0.113.5/32', validLifetime: 500 });
    expect(ipAddrs(a)[0]!.valid_life_time).toBe(500);
    let err: VipaError | undefined;
    try {
      nl.addrAddSync({ link: eth0, address: '203.0.113.5/32' });
    } catch (e) {
      err = e as VipaError;
    }
    expect(err).toBeInstanceOf(VipaError);
    expect(err).toMatchObject({ code: 'EEXIST', errno: 17, syscall: 'netlink', op: 'addr add' });
    expect(err!.extack).toMatch(/already/i);
    expect(nl.addrAddSync({ link: eth0, address: '203.0.113.5/32' }, { allowExisting: true })).toBe(false);
    nl.addrDelSync({ link: eth0, address: '203.0.113.5/32' });
    const missing = (() => {
      try {
        nl.addrDelSync({ link: eth0, address: '203.0.113.5/32' });
      } catch (e) {
        return e as VipaError;
      }
      return undefined;
    })();
    expect(missing).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'netlink' });
    expect(nl.addrDelSync({ link: eth0, address: '203.0.113.5/32' }, { allowMissing: true })).toBe(false);
  });

  it('the Promise API does the same', async () => {
    expect(await nl.addrAdd({ link: 'eth0', address: '2001:db8::20/128', nodad: true })).toBe(true);
    await expect(nl.addrAdd({ link: eth0, address: '2001:db8::20/128', nodad: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect((await nl.addrList({ link: 'eth0', family: 6 })).map((x) => x.address)).toContain('2001:db8::20');
    await nl.addrReplace({ link: eth0, address: '2001:db8::20/128', nodad: true, validLifetime: 60 });
    expect(ipAddrs(a)[0]!.valid_life_time).toBe(60);
    expect(await nl.addrDel({ link: eth0, address: '2001:db8::20/128' })).toBe(true);
    expect(await nl.addrDel({ link: eth0, address: '2001:db8::20/128' }, { allowMissing: true })).toBe(false);
    expect(ipAddrs(a)).toEqual([]);
  });

  it('the kernel removes an address whose valid lifetime ends (dead-man switch)', async () => {
    nl.addrAddSync({ link: eth0, address: '198.51.100.99/32', validLifetime: 1 });
    expect(ipAddrs(a)).toHaveLength(1);
    const deadline = Date.now() + 5000;
    while (ipAddrs(a).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(ipAddrs(a)).toEqual([]);
  });

  it('a batch applies many changes with one result per item', () => {
    const items = [] as Parameters<Netlink['addrBatchSync']>[0][number][];
    for (let i = 1; i <= 300; i++) items.push({ op: 'add', link: eth0, address: `203.0.113.${i % 250}/32`, proto: VIPA_PROTO });
    // i and i+250 collide for i < 50: those 50 adds must fail with EEXIST, in place.
    const results = nl.addrBatchSync(items);
    expect(results).toHaveLength(300);
    const failed = results.flatMap((r, i) => (r.ok ? [] : [i]));
    expect(failed).toEqual(Array.from({ length: 50 }, (_, k) => 250 + k));
    for (const i of failed) expect(results[i]).toMatchObject({ ok: false, error: { code: 'EEXIST' } });
    expect(ipAddrs(a)).toHaveLength(250);
    const del = nl.addrBatchSync(Array.from({ length: 250 }, (_, i) => ({ op: 'delete' as const, link: eth0, address: `203.0.113.${i}/32` })));
    expect(del.every((r) => r.ok && r.changed)).toBe(true);
    expect(ipAddrs(a)).toEqual([]);
  });

  it('the async batch, with tolerated duplicates', async () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ op: 'add' as const, link: 'eth0', address: `2001:db8:1::${(i + 1).toString(16)}/128`, nodad: true, allowExisting: true }));
    items.push(items[0]!);
    const results = await nl.addrBatch(items);
    expect(results.filter((r) => r.ok && r.changed)).toHaveLength(200);
    expect(results[200]).toEqual({ ok: true, changed: false });
    expect(ipAddrs(a)).toHaveLength(200);
    await nl.addrBatch(items.slice(0, 200).map((x) => ({ ...x, op: 'delete' as const, allowExisting: undefined })));
    expect(ipAddrs(a)).toEqual([]);
  });

  /** 300 IPv4 /32s: 203.0.113.1-250 and 198.51.100.1-50 (three sendto chunks). */
  const many4 = (link: number | string) => Array.from({ length: 300 }, (_, i) => ({ link, address: i < 250 ? `203.0.113.${i + 1}` : `198.51.100.${i - 249}`, prefixLength: 32 }));

  it('a prepared batch replaces many addresses with a lease and the owner tag, run again and again', () => {
    const specs = many4(eth0).map((s) => ({ ...s, proto: VIPA_PROTO, validLifetime: 30, preferredLifetime: 20 }));
    const write = nl.prepareAddrBatch('replace', specs);
    const remove = nl.prepareAddrBatch('delete', many4(eth0), { allowMissing: true });
    expect(ipAddrs(a)).toEqual([]); // preparing sends nothing
    const first = write.runSync();
    expect(first).toEqual({ ok: true, changed: 300 });
    let seen = ipAddrs(a);
    expect(seen).toHaveLength(300);
    expect(new Set(seen.map((x) => x.local))).toEqual(new Set(specs.map((x) => x.address)));
    for (const x of seen) expect(x).toMatchObject({ prefixlen: 32, valid_life_time: 30, preferred_life_time: 20 });
    expect(nl.addrListSync({ link: eth0, proto: VIPA_PROTO })).toHaveLength(300);
    // Again on the addresses it made (a lease renewal): replace succeeds in place, the same summary object.
    a.ip('addr', 'change', '203.0.113.1/32', 'dev', 'eth0', 'valid_lft', '5', 'preferred_lft', '5');
    expect(ipAddrs(a).find((x) => x.local === '203.0.113.1')!.valid_life_time).toBeLessThanOrEqual(5);
    expect(write.runSync()).toBe(first);
    expect(ipAddrs(a).find((x) => x.local === '203.0.113.1')!.valid_life_time).toBe(30);
    // Taken away and written again, many times over: every run lands completely.
    for (let round = 0; round < 5; round++) {
      expect(remove.runSync()).toEqual({ ok: true, changed: 300 });
      expect(ipAddrs(a)).toEqual([]);
      expect(write.runSync()).toBe(first);
      expect(ipAddrs(a)).toHaveLength(300);
    }
    // Nothing left to delete: allowMissing absorbs every EADDRNOTAVAIL.
    expect(remove.runSync()).toEqual({ ok: true, changed: 300 });
    expect(remove.runSync()).toEqual({ ok: true, changed: 0 });
    seen = ipAddrs(a);
    expect(seen).toEqual([]);
  });

  it('a prepared IPv6 batch by interface name, and its Promise form', async () => {
    const specs = Array.from({ length: 150 }, (_, i) => ({ link: 'eth0', address: `2001:db8:2::${(i + 1).toString(16)}/128`, nodad: true, proto: VIPA_PROTO, validLifetime: 60 }));
    const write = nl.prepareAddrBatch('replace', specs);
    expect(await write.run()).toEqual({ ok: true, changed: 150 });
    const seen = ipAddrs(a);
    expect(seen).toHaveLength(150);
    for (const x of seen) expect(x).toMatchObject({ family: 'inet6', prefixlen: 128, nodad: true, valid_life_time: 60 });
    expect(JSON.stringify(seen)).not.toMatch(/tentative/);
    expect(await write.run()).toEqual({ ok: true, changed: 150 });
    expect(await nl.prepareAddrBatch('delete', specs.map(({ link, address, nodad }) => ({ link, address, nodad }))).run()).toEqual({ ok: true, changed: 150 });
    expect(ipAddrs(a)).toEqual([]);
  });

  it('a prepared batch reports per-item failures exactly as addrBatchSync does', () => {
    // i and i+250 collide for i < 50, as in the addrBatchSync test above: the same 50 adds fail with EEXIST, in place.
    const items = Array.from({ length: 300 }, (_, i) => ({ link: eth0, address: `203.0.113.${(i + 1) % 250}/32`, proto: VIPA_PROTO }));
    const add = nl.prepareAddrBatch('add', items);
    const outcome = add.runSync();
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.failed).toBe(50);
    expect(ipAddrs(a)).toHaveLength(250);
    a.ip('addr', 'flush', 'dev', 'eth0', 'scope', 'global');
    const reference = nl.addrBatchSync(items.map((x) => ({ op: 'add' as const, ...x })));
    const shape = (rs: typeof reference) => rs.map((r) => (r.ok ? r : { ok: false, type: r.error.constructor.name, code: (r.error as VipaError).code, message: r.error.message }));
    expect(shape(outcome.results)).toEqual(shape(reference));
    expect(outcome.results.flatMap((r, i) => (r.ok ? [] : [i]))).toEqual(Array.from({ length: 50 }, (_, k) => 250 + k));
    const e = (outcome.results[260] as { ok: false; error: VipaError }).error;
    expect(e).toBeInstanceOf(VipaError);
    expect(e).toMatchObject({ code: 'EEXIST', syscall: 'netlink', op: 'addr add' });
    expect(e.message).toContain(`203.0.113.11/32 dev ${eth0}`);
    // Everything there now: every item fails, and with allowExisting none does.
    expect(add.runSync()).toMatchObject({ ok: false, failed: 300 });
    expect(nl.prepareAddrBatch('add', items, { allowExisting: true }).runSync()).toEqual({ ok: true, changed: 0 });
  });

  it('a prepared batch whose interface went away fails per item with the index named; the rest still apply', () => {
    a.ip('link', 'add', 'vipa-gone', 'type', 'veth', 'peer', 'name', 'vipa-gone-p');
    try {
      const gone = nl.linkGetSync('vipa-gone').index;
      const batch = nl.prepareAddrBatch('replace', [
        { link: eth0, address: '198.51.100.70/32' },
        { link: gone, address: '198.51.100.71/32' },
        { link: eth0, address: '198.51.100.72/32' },
      ]);
      a.ip('link', 'del', 'vipa-gone');
      const outcome = batch.runSync();
      expect(outcome).toMatchObject({ ok: false, failed: 1 });
      if (outcome.ok) return;
      expect(outcome.results[1]).toEqual({ ok: false, error: new RangeError(`unknown interface index ${gone}`) });
      expect(ipAddrs(a).map((x) => x.local).sort()).toEqual(['198.51.100.70', '198.51.100.72']);
    } finally {
      try {
        a.ip('link', 'del', 'vipa-gone');
      } catch {
        // deleted above
      }
    }
  });

  it('a prepared batch of a closed handle throws EBADF and sends nothing', () => {
    const other = new Netlink({ netns: a.netns });
    const batch = other.prepareAddrBatch('replace', [{ link: eth0, address: '198.51.100.80/32' }]);
    other.close();
    expect(() => batch.runSync()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(ipAddrs(a)).toEqual([]);
  });

  it('handles in two namespaces at once, by path and by fd', async () => {
    const fs = await import('node:fs');
    const fd = fs.openSync(lan.host('b').netns, 'r');
    try {
      using nlb = new Netlink({ netns: fd });
      nlb.addrAddSync({ link: 'eth0', address: '198.51.100.2/24' });
      nl.addrAddSync({ link: 'eth0', address: '198.51.100.1/24' });
      expect(ipAddrs(lan.host('b')).map((x) => x.local)).toEqual(['198.51.100.2']);
      expect(ipAddrs(a).map((x) => x.local)).toEqual(['198.51.100.1']);
      // The two namespaces are joined by the bridge: a reaches b.
      a.run('ping', '-c', '1', '-W', '2', '198.51.100.2');
      nlb.addrDelSync({ link: 'eth0', address: '198.51.100.2/24' });
      nl.addrDelSync({ link: 'eth0', address: '198.51.100.1/24' });
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe.skipIf(skipKernelTests())('bad input changes nothing', () => {
  let lan: TestLan;
  let a: TestHost;
  let nl: Netlink;
  let before: string;

  beforeAll(async () => {
    lan = await createLan(['a']);
    a = lan.host('a');
    nl = new Netlink({ netns: a.netns });
    nl.addrAddSync({ link: 'eth0', address: '198.51.100.1/24' });
    before = a.ip('addr', 'show');
  });
  afterAll(async () => {
    nl?.close();
    await lan?.destroy();
  });

  const bad: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['malformed address', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.256/24' }), RangeError, /malformed IP address "198.51.100.256\/24"/],
    ['prefix out of range', () => nl.addrAddSync({ link: 'eth0', address: '2001:db8::1/129' }), RangeError, /prefix length 129 out of range/],
    ['family mismatch', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', peer: '2001:db8::1' }), RangeError, /is IPv6 but address 198.51.100.9 is IPv4/],
    ['IPv6-only flag on IPv4', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', nodad: true }), RangeError, /nodad is IPv6 only/],
    ['IPv4-only option on IPv6', () => nl.addrAddSync({ link: 'eth0', address: '2001:db8::9/64', label: 'eth0:x' }), RangeError, /label is IPv4 only/],
    ['unknown interface name', () => nl.addrAddSync({ link: 'eth9', address: '198.51.100.9/24' }), RangeError, /unknown interface "eth9"/],
    ['unknown interface index', () => nl.addrAddSync({ link: 999, address: '198.51.100.9/24' }), RangeError, /unknown interface index 999/],
    ['label too long', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', label: 'eth0:0123456789ab' }), RangeError, /must be 1..15 bytes/],
    ['label not prefixed by interface', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', label: 'lo:x' }), RangeError, /must start with the interface name "eth0"/],
    ['negative lifetime', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', validLifetime: -5 }), RangeError, /got -5/],
    ['inverted lifetimes', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24', validLifetime: 5, preferredLifetime: 9 }), RangeError, /preferredLifetime 9 exceeds validLifetime 5/],
    ['batch item of the wrong shape', () => nl.addrBatchSync([{ op: 'add', link: 'eth0', address: '198.51.100.9/24' }, { op: 'move', link: 'eth0', address: '198.51.100.10/24' } as never]), TypeError, /batch item 1: op must be 'add', 'replace' or 'delete', got "move"/],
    ['batch item with bad value', () => nl.addrBatchSync([{ op: 'add', link: 'eth0', address: '198.51.100.9/24' }, { op: 'add', link: 'eth0', address: 'x' }]), RangeError, /batch item 1: malformed IP address "x"/],
    ['batch not an array', () => nl.addrBatchSync('nope' as never), TypeError, /batch must be an array/],
    ['prepared batch item with bad value', () => nl.prepareAddrBatch('replace', [{ link: 'eth0', address: '198.51.100.9/32' }, { link: 'eth0', address: '198.51.100.300' }]), RangeError, /batch item 1: malformed IP address "198.51.100.300"/],
    ['prepared batch item with bad lifetime', () => nl.prepareAddrBatch('replace', [{ link: 'eth0', address: '198.51.100.9/32', validLifetime: 0 }]), RangeError, /batch item 0: validLifetime must be .* got 0/],
    ['prepared batch item carrying an op', () => nl.prepareAddrBatch('add', [{ op: 'add', link: 'eth0', address: '198.51.100.9/32' } as never]), TypeError, /batch item 0: unknown address option "op"/],
    ['prepared batch with unknown op', () => nl.prepareAddrBatch('move' as never, [{ link: 'eth0', address: '198.51.100.9/32' }]), TypeError, /op must be 'add', 'replace' or 'delete', got "move"/],
    ['prepared batch not an array', () => nl.prepareAddrBatch('replace', 'nope' as never), TypeError, /batch must be an array, got nope/],
    ['prepared batch options of the wrong type', () => nl.prepareAddrBatch('add', [], { allowExisting: 1 as never }), TypeError, /allowExisting must be a boolean, got 1/],
    ['prepared batch on an unknown interface name', () => nl.prepareAddrBatch('replace', [{ link: 'eth0', address: '198.51.100.9/32' }, { link: 'eth9', address: '198.51.100.10/32' }]), RangeError, /unknown interface "eth9"/],
    ['options of the wrong type', () => nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24' }, { allowExisting: 'yes' as never }), TypeError, /allowExisting must be a boolean, got yes/],
    ['unknown link for a lookup', () => nl.linkGetSync('nosuch0'), RangeError, /unknown interface "nosuch0"/],
    ['bad filter family', () => nl.addrListSync({ family: 5 as never }), RangeError, /family must be 4 or 6, got 5/],
  ];

  it.each(bad)('%s', (_name, call, Ctor, message) => {
    let caught: unknown;
    try {
      call();
    } catch (e) {
      caught = e;
    }
    expect((caught as Error)?.constructor).toBe(Ctor);
    expect((caught as Error).message).toMatch(message);
    expect(a.ip('addr', 'show')).toBe(before);
  });

  it('the Promise API rejects the same way', async () => {
    await expect(nl.addrAdd({ link: 'eth9', address: '198.51.100.9/24' })).rejects.toThrow(/unknown interface "eth9"/);
    await expect(nl.addrAdd({ link: 999, address: '198.51.100.9/24' })).rejects.toThrow(RangeError);
    await expect(nl.addrBatch([{ op: 'add', link: 'eth0', address: '1.2.3' }])).rejects.toThrow(/batch item 0/);
    expect(a.ip('addr', 'show')).toBe(before);
  });

  it('a batch with one bad item sends nothing', () => {
    expect(() =>
      nl.addrBatchSync([
        { op: 'add', link: 'eth0', address: '198.51.100.20/24' },
        { op: 'add', link: 'eth0', address: '198.51.100.21/24', validLifetime: 0 },
      ]),
    ).toThrow(/batch item 1/);
    expect(a.ip('addr', 'show')).toBe(before);
  });
});
