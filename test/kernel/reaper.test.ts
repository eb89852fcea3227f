/**
 * The reaper deletes a dead process's addresses: the daemon is killed with
 * SIGKILL while holding addresses, and they must vanish from the kernel
 * without any restart and well before any lease would end.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/cluster.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const dist = join(__dirname, '../../dist/index.js');

/** A process holding addresses in `host`, armed with its reaper; prints the reaper pid when ready. */
function holder(host: TestHost, addresses: string[], mode: 'wait' | 'quit'): Promise<{ child: ReturnType<typeof spawn>; reaperPid: number }> {
  const script = `
    const { Netlink, AddressReaper } = require(${JSON.stringify(dist)});
    const dgram = require('node:dgram');
    const nl = new Netlink({ netns: ${JSON.stringify(host.netns)} });
    const reaper = new AddressReaper({ netns: ${JSON.stringify(host.netns)} });
    const link = nl.linkGetSync('eth0').index;
    const held = ${JSON.stringify(addresses)}.map((address) => ({ link, address, nodad: address.includes(':') ? true : undefined }));
    // A UDP socket like the heartbeat port: the reaper must not keep it.
    const sock = dgram.createSocket('udp4');
    sock.bind(0, () => {
      for (const spec of held) nl.addrAddSync(spec);
      reaper.arm(held);
      if (${JSON.stringify(mode)} === 'quit') reaper.quit();
      console.log(reaper.pid);
    });
    // Referenced for the process's life: a reaper that is garbage-collected is abandoned (it deletes).
    setInterval(() => reaper.alive, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ child, reaperPid: Number(d.toString().trim()) }));
    child.once('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
}

function addressesOn(host: TestHost): string[] {
  const [link] = host.ipJson<{ addr_info: { local: string }[] }[]>('addr', 'show', 'dev', 'eth0');
  return link!.addr_info.map((a) => a.local).filter((a) => a.startsWith('198.51.100.') || a.startsWith('2001:db8:'));
}

describe.skipIf(skipKernelTests())('address reaper', () => {
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  beforeAll(async () => {
    lan = await createLan(['a', 'b']);
    a = lan.host('a');
    b = lan.host('b');
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('deletes the held addresses when the holder is SIGKILLed', async () => {
    const addresses = ['198.51.100.10/24', '198.51.100.11/32', '2001:db8::10/64'];
    const { child, reaperPid } = await holder(a, addresses, 'wait');
    expect(addressesOn(a).sort()).toEqual(['198.51.100.10', '198.51.100.11', '2001:db8::10']);
    // The reaper holds only stdio, its pipe, its netlink socket and its
    // (unbound) packet socket: not the daemon's sockets.
    const fds = readdirSync(`/proc/${reaperPid}/fd`)
      .filter((fd) => Number(fd) > 2) // stdio is inherited as is
      .map((fd) => readlinkSync(`/proc/${reaperPid}/fd/${fd}`));
    expect(fds.filter((f) => f.startsWith('socket:')).length).toBe(2);
    expect(fds.filter((f) => f.startsWith('pipe:')).length).toBe(1);
    expect(fds).toHaveLength(3);
    const killedAt = performance.now();
    child.kill('SIGKILL');
    let goneAfter = Infinity;
    while (performance.now() - killedAt < 3000) {
      if (addressesOn(a).length === 0) {
        goneAfter = performance.now() - killedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(addressesOn(a)).toEqual([]);
    console.log(`addresses gone ${goneAfter.toFixed(1)} ms after SIGKILL (includes ip(8) polling)`);
    // The reaper exited too (gone, or a zombie until its new parent reaps it).
    await new Promise((r) => setTimeout(r, 50));
    let state = 'gone';
    try {
      state = /State:\s+(\S)/.exec(readFileSync(`/proc/${reaperPid}/status`, 'utf8'))![1]!;
    } catch {
      // no such process
    }
    expect(['gone', 'Z']).toContain(state);
  });

  it("acts as soon as the holder's threads die, not when its pipe closes (after its memory is torn down)", async () => {
    const { child, reaperPid } = await holder(a, ['198.51.100.40/32'], 'wait');
    // Keep the reaper's pipe open for writing from this process: its EOF can
    // then never come, so only the death signal of the holder's sentinel
    // thread can start the reaper.
    const pipe = readdirSync(`/proc/${reaperPid}/fd`).map((fd) => readlinkSync(`/proc/${reaperPid}/fd/${fd}`)).find((f) => f.startsWith('pipe:'))!;
    const writeEnd = readdirSync(`/proc/${child.pid}/fd`).find((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`) === pipe)!;
    const held = openSync(`/proc/${child.pid}/fd/${writeEnd}`, constants.O_WRONLY);
    try {
      expect(addressesOn(a)).toContain('198.51.100.40');
      child.kill('SIGKILL');
      await waitUntil(() => !addressesOn(a).includes('198.51.100.40'), 3000, 'the delete with the pipe still open');
    } finally {
      closeSync(held);
    }
  });

  it('ignores its death signal when anyone but the holder sends it', async () => {
    const { child, reaperPid } = await holder(a, ['198.51.100.41/32'], 'wait');
    expect(addressesOn(a)).toContain('198.51.100.41');
    process.kill(reaperPid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 100));
    expect(addressesOn(a)).toContain('198.51.100.41');
    expect(readFileSync(`/proc/${reaperPid}/status`, 'utf8')).not.toMatch(/State:\s+Z/);
    child.kill('SIGKILL');
    await waitUntil(() => !addressesOn(a).includes('198.51.100.41'), 3000, 'the delete after the real death');
  });

  /**
   * A holder process in `a` that adds `address`, arms its reaper with a
   * notification to a listener on 127.0.0.1:`port` (which reports, when the
   * leave arrives, whether `address` was still there), and is SIGKILLed;
   * resolves with what the listener printed once the leave arrived.
   */
  async function killedHolderNotice(address: string, port: number, leadMs?: number, afterKill?: () => void, alsoHeld: string[] = []): Promise<string> {
    const listener = a.spawn(process.execPath, ['-e', `
      const { execFileSync } = require('child_process');
      const s = require('dgram').createSocket('udp4');
      s.on('message', (m) => {
        const held = execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'eth0']).toString().includes(' ${address}/');
        console.log('got ' + m + ' held=' + held);
        process.exit(0);
      });
      s.bind(${port}, '127.0.0.1', () => console.log('ready'));`]);
    let heard = '';
    listener.stdout!.on('data', (d: Buffer) => (heard += d.toString()));
    await waitUntil(() => heard.includes('ready'), 3000, 'the listener to bind');
    const child = a.spawn(process.execPath, ['-e', `
      const { Netlink, AddressReaper } = require(${JSON.stringify(dist)});
      const nl = new Netlink({ netns: ${JSON.stringify(a.netns)} });
      const reaper = new AddressReaper({ netns: ${JSON.stringify(a.netns)} });
      const link = nl.linkGetSync('eth0').index;
      const specs = ${JSON.stringify([address, ...alsoHeld])}.map((address) => ({ link, address: address + (address.includes(':') ? '/128' : '/32'), nodad: address.includes(':') ? true : undefined }));
      for (const spec of specs) nl.addrAddSync(spec);
      reaper.arm(specs);
      reaper.notifyOnDeath(Buffer.from('leave from a'), [{ address: '127.0.0.1', port: ${port} }]${leadMs === undefined ? '' : `, { leadMs: ${leadMs} }`});
      console.log(reaper.pid);
      setInterval(() => reaper.alive, 1000);`]);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await waitUntil(() => heard.includes('got leave from a'), 3000, "the reaper's notification");
    afterKill?.();
    return heard;
  }

  it('after deleting, it sends the armed notification to the peers (so they take over at once)', async () => {
    // A peer listening in the same namespace stands in for the cluster.
    expect(await killedHolderNotice('203.0.113.30', 7099)).toContain('held=false'); // deleted first
    expect(a.ip('addr', 'show', 'dev', 'eth0')).not.toMatch(/203\.0\.113\.30/);
  });

  it('with a lead time it notifies first and deletes after the lead (make-before-break for a crash)', async () => {
    expect(await killedHolderNotice('203.0.113.31', 7098, 300)).toContain('held=true'); // told before the delete
    await waitUntil(() => !a.ip('addr', 'show', 'dev', 'eth0').includes('203.0.113.31'), 3000, 'the delete after the lead');
  });

  /** The next holder's announcement of `address`, from b: a gratuitous ARP or an unsolicited neighbour advertisement. */
  function announceFromB(address: string): void {
    b.run(process.execPath, '-e', `
      const { Announcer } = require(${JSON.stringify(dist)});
      const announcer = new Announcer();
      announcer.announceNow('eth0', '${address}');
      announcer.close();`);
  }

  it('deletes each address on its own announcement; one nobody announces stays until the lead ends', async () => {
    let announcedAt = 0;
    await killedHolderNotice('198.51.100.52', 7090, 1000, () => {
      announcedAt = performance.now();
      announceFromB('198.51.100.52');
    }, ['2001:db8::52']);
    await waitUntil(() => !a.ip('addr', 'show', 'dev', 'eth0').includes('198.51.100.52/'), 3000, 'the announced address deleted');
    expect(performance.now() - announcedAt).toBeLessThan(900);
    expect(a.ip('addr', 'show', 'dev', 'eth0')).toContain('2001:db8::52/'); // not announced: kept for the lead
    await waitUntil(() => !a.ip('addr', 'show', 'dev', 'eth0').includes('2001:db8::52/'), 3000, 'the other one after the lead');
  });

  for (const [family, address] of [[4, '198.51.100.50'], [6, '2001:db8::50']] as const) {
    it(`with a lead it deletes as soon as another host announces the address (IPv${family}), not after the whole lead`, async () => {
      let announcedAt = 0;
      const heard = await killedHolderNotice(address, 7097 - family, 1000, () => {
        announcedAt = performance.now();
        announceFromB(address);
      });
      expect(heard).toContain('held=true'); // told before the delete
      await waitUntil(() => !a.ip('addr', 'show', 'dev', 'eth0').includes(`${address}/`), 3000, 'the delete after the announcement');
      // Well inside the 1000 ms lead: the announcement, not the lead, ended the wait.
      expect(performance.now() - announcedAt).toBeLessThan(900);
    });
  }

  it('refuses a bad lead time', async () => {
    const { AddressReaper } = await import('../../lib/index.js');
    using reaper = new AddressReaper({ netns: a.netns });
    for (const leadMs of [-1, 1001, Number.NaN, '2' as unknown as number]) {
      expect(() => reaper.notifyOnDeath(Buffer.from('x'), [{ address: '127.0.0.1', port: 7000 }], { leadMs })).toThrow(/leadMs must be a number of ms in 0\.\.1000/);
    }
  });

  it('after quit() it deletes nothing: a clean shutdown owns the cleanup', async () => {
    const { child } = await holder(a, ['203.0.113.20/32'], 'quit');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 100));
    expect(a.ip('addr', 'show', 'dev', 'eth0')).toMatch(/203\.0\.113\.20/);
    a.ip('addr', 'del', '203.0.113.20/32', 'dev', 'eth0');
  });

  it('refuses interface names and oversized batches', async () => {
    const { AddressReaper } = await import('../../lib/index.js');
    using reaper = new AddressReaper({ netns: a.netns });
    expect(() => reaper.arm([{ link: 'eth0', address: '198.51.100.1/24' }])).toThrow(/reaper needs interface indexes, got "eth0"/);
    expect(() => reaper.arm([{ link: 1, address: 'nope' }])).toThrow(RangeError);
    expect(reaper.alive).toBe(true);
  });
});
