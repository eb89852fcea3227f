/**
 * Links, change events, privileges and handle lifecycle against the real
 * kernel, in throwaway namespaces. Changes are made from outside with ip(8).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netlink, NetlinkMonitor, VipaError, type NetlinkEvent } from '../../lib/index.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const dist = join(__dirname, '../../dist/index.js');

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Waits (bounded) until `predicate` holds for the collected events. */
async function waitFor(events: NetlinkEvent[], predicate: (e: NetlinkEvent) => boolean, ms = 3000): Promise<NetlinkEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = events.find(predicate);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(events.map((e) => [e.type, 'action' in e ? e.action : '']))}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(skipKernelTests())('links', () => {
  let lan: TestLan;
  let a: TestHost;
  let nl: Netlink;
  beforeAll(async () => {
    lan = await createLan(['a']);
    a = lan.host('a');
    a.ip('link', 'set', 'eth0', 'address', '02:00:5e:10:00:01', 'mtu', '1400');
    nl = new Netlink({ netns: a.netns });
  });
  afterAll(async () => {
    nl?.close();
    await lan?.destroy();
  });

  it('lists links and looks them up by name and index', async () => {
    const links = nl.linkListSync();
    expect(links.map((l) => l.name).sort()).toEqual(['eth0', 'lo']);
    const eth0 = nl.linkGetSync('eth0');
    expect(eth0).toMatchObject({ name: 'eth0', mac: '02:00:5e:10:00:01', mtu: 1400, kind: 'veth', type: 1, operstate: 'up' });
    expect(eth0.flags).toMatchObject({ up: true, running: true, lowerUp: true, noarp: false, broadcast: true, multicast: true });
    expect(nl.linkGetSync(eth0.index)).toEqual(eth0);
    expect(await nl.linkGet('eth0')).toEqual(eth0);
    expect((await nl.linkList()).length).toBe(2);
    const lo = links.find((l) => l.name === 'lo')!;
    expect(lo.flags.loopback).toBe(true);
    expect(lo.index).toBe(1);
  });

  it('reports noarp, down and per-interface forwarding', () => {
    a.ip('link', 'set', 'eth0', 'arp', 'off');
    expect(nl.linkGetSync('eth0').flags.noarp).toBe(true);
    a.ip('link', 'set', 'eth0', 'arp', 'on', 'down');
    const down = nl.linkGetSync('eth0');
    expect(down.flags).toMatchObject({ noarp: false, up: false, running: false });
    expect(down.operstate).toBe('down');
    a.ip('link', 'set', 'eth0', 'up');
    expect(nl.linkGetSync('eth0').forwarding).toEqual({ ipv4: false, ipv6: false });
    a.run('sysctl', '-q', '-w', 'net.ipv4.conf.eth0.forwarding=1', 'net.ipv6.conf.eth0.forwarding=1');
    expect(nl.linkGetSync('eth0').forwarding).toEqual({ ipv4: true, ipv6: true });
    a.run('sysctl', '-q', '-w', 'net.ipv6.conf.eth0.forwarding=0');
    expect(nl.linkGetSync('eth0').forwarding).toEqual({ ipv4: true, ipv6: false });
  });
});

describe.skipIf(skipKernelTests())('events', () => {
  let lan: TestLan;
  let a: TestHost;
  beforeAll(async () => {
    lan = await createLan(['a']);
    a = lan.host('a');
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('sees address and link changes made by ip(8) as typed events', async () => {
    using monitor = new NetlinkMonitor({ netns: a.netns });
    const events: NetlinkEvent[] = [];
    monitor.on('address', (e) => events.push(e));
    monitor.on('link', (e) => events.push(e));
    a.ip('addr', 'add', '198.51.100.5/24', 'dev', 'eth0');
    const added = await waitFor(events, (e) => e.type === 'address' && e.action === 'new' && e.address.address === '198.51.100.5');
    expect(added).toMatchObject({ type: 'address', action: 'new', address: { family: 4, prefixLength: 24 } });
    a.ip('addr', 'add', '2001:db8::5/64', 'dev', 'eth0', 'nodad');
    await waitFor(events, (e) => e.type === 'address' && e.action === 'new' && e.address.address === '2001:db8::5');
    a.ip('addr', 'del', '198.51.100.5/24', 'dev', 'eth0');
    await waitFor(events, (e) => e.type === 'address' && e.action === 'del' && e.address.address === '198.51.100.5');
    a.ip('link', 'set', 'eth0', 'down');
    const down = await waitFor(events, (e) => e.type === 'link' && e.link.name === 'eth0' && !e.link.flags.up);
    expect(down).toMatchObject({ type: 'link', action: 'new', link: { operstate: 'down' } });
    a.ip('link', 'set', 'eth0', 'up');
  });

  it('is an async iterator that ends on close', async () => {
    const monitor = new NetlinkMonitor({ netns: a.netns, links: false });
    const seen: NetlinkEvent[] = [];
    const consumer = (async () => {
      for await (const e of monitor) {
        // Only this test's address: the kernel's addrconf work may still notify an IPv6 address an earlier test added.
        if (e.type !== 'address' || e.address.address !== '203.0.113.7') continue;
        seen.push(e);
        if (e.action === 'del') monitor.close();
      }
    })();
    a.ip('addr', 'add', '203.0.113.7/32', 'dev', 'eth0');
    a.ip('addr', 'del', '203.0.113.7/32', 'dev', 'eth0');
    await consumer;
    expect(seen.map((e) => (e.type === 'address' ? `${e.action} ${e.address.address}` : e.type))).toEqual(['new 203.0.113.7', 'del 203.0.113.7']);
  });

  it('recovers from receive-buffer overflow with a resync carrying the final state', async () => {
    // A small buffer and a blocked event loop: the kernel must drop notifications.
    using monitor = new NetlinkMonitor({ netns: a.netns, receiveBufferSize: 4096 });
    const resyncs: NetlinkEvent[] = [];
    monitor.on('resync', (e) => resyncs.push(e));
    const batch = Array.from({ length: 400 }, (_, i) => `addr add 2001:db8:2::${(i + 1).toString(16)}/128 dev eth0 nodad`).join('\n');
    execFileSync('nsenter', [`--net=${a.netns}`, '--', '/usr/sbin/ip', '-batch', '-'], { input: `${batch}\n` });
    a.ip('link', 'set', 'eth0', 'mtu', '1300');
    const resync = await waitFor(resyncs, () => true);
    expect(monitor.overflows).toBeGreaterThan(0);
    if (resync.type !== 'resync') throw new Error('unreachable');
    const ours = resync.addresses.filter((x) => x.address.startsWith('2001:db8:2::'));
    expect(ours).toHaveLength(400);
    expect(resync.links.find((l) => l.name === 'eth0')?.mtu).toBe(1300);
    // And it keeps listening after the overflow.
    const later: NetlinkEvent[] = [];
    monitor.on('address', (e) => later.push(e));
    a.ip('addr', 'add', '203.0.113.77/32', 'dev', 'eth0');
    await waitFor(later, (e) => e.type === 'address' && e.address.address === '203.0.113.77');
    a.ip('addr', 'flush', 'dev', 'eth0', 'scope', 'global');
  });
});

describe.skipIf(skipKernelTests())('privileges and lifecycle', () => {
  let lan: TestLan;
  let a: TestHost;
  beforeAll(async () => {
    lan = await createLan(['a']);
    a = lan.host('a');
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('without CAP_NET_ADMIN the error names it', () => {
    const script = `
      const { Netlink } = require(${JSON.stringify(dist)});
      const nl = new Netlink();
      try { nl.addrAddSync({ link: 'eth0', address: '198.51.100.9/24' }); console.log('added'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, syscall: e.syscall, message: e.message })); }`;
    // Enter the namespace, then drop CAP_NET_ADMIN from the bounding set so the exec'd node lacks it.
    const r = spawnSync('nsenter', [`--net=${a.netns}`, '--', 'setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ name: 'VipaError', code: 'EPERM', syscall: 'netlink' });
    expect(out.message).toMatch(/CAP_NET_ADMIN/);
    expect(a.ip('addr', 'show', 'dev', 'eth0')).not.toMatch(/198\.51\.100\.9/);
  });

  it('a bad namespace path is a clear error', () => {
    expect(() => new Netlink({ netns: '/nonexistent/ns' })).toThrow(VipaError);
    expect(() => new Netlink({ netns: '/nonexistent/ns' })).toThrow(/open failed: ENOENT/);
    expect(() => new Netlink({ netns: '/etc/hostname' })).toThrow(/setns failed: EINVAL/);
  });

  it('close() and using release the socket; a closed handle refuses work', async () => {
    const before = openFds();
    const nl = new Netlink({ netns: a.netns });
    {
      using scoped = new Netlink({ netns: a.netns });
      using monitor = new NetlinkMonitor({ netns: a.netns });
      expect(scoped.linkListSync().length).toBe(2);
      expect(monitor.overflows).toBe(0);
      expect(openFds()).toBe(before + 3);
    }
    expect(openFds()).toBe(before + 1);
    nl.close();
    nl.close(); // idempotent
    expect(openFds()).toBe(before);
    expect(() => nl.linkListSync()).toThrow(/EBADF/);
    await expect(nl.addrAdd({ link: 1, address: '198.51.100.1' })).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('a worker that exits without closing leaks no socket', async () => {
    const before = openFds();
    const worker = new Worker(
      `const { Netlink, NetlinkMonitor } = require(${JSON.stringify(dist)});
       const { parentPort, workerData } = require('node:worker_threads');
       const handles = [new Netlink({ netns: workerData }), new Netlink({ netns: workerData }), new NetlinkMonitor({ netns: workerData })];
       parentPort.postMessage(handles[0].linkListSync().length);`,
      { eval: true, workerData: a.netns },
    );
    const [links] = await Promise.race([
      new Promise<unknown[]>((resolve) => worker.once('message', (m) => resolve([m]))),
      new Promise<never>((_, reject) => worker.once('error', reject)),
    ]);
    expect(links).toBe(2);
    expect(openFds()).toBeGreaterThan(before);
    await worker.terminate();
    expect(openFds()).toBe(before);
  });
});
