/**
 * Safety of a running cluster against the network and against crashes:
 * forged, replayed and malformed heartbeats from a raw sender are dropped
 * and counted without effect; a holder whose process and reaper both die
 * loses its address by the kernel lease, with no restart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { startCluster, waitUntil, type TestCluster } from '../helpers/cluster.js';

const dist = join(__dirname, '../../dist');

describe.skipIf(skipKernelTests())('cluster safety', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ family: 4, leaseSeconds: 2 });
    await c.waitForHolder('a');
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('forged, replayed and malformed heartbeats are dropped and counted, and change nothing', async () => {
    const key = readFileSync(join(c.dir, 'key'), 'utf8').trim();
    // A raw sender on the client host: a takeover attempt as "b" with the wrong key, a
    // captured-and-replayed genuine message, garbage, and an unsigned message.
    const script = `
      const dgram = require('node:dgram');
      const { encodeMeshMessage } = require(${JSON.stringify(join(dist, 'coordinators/mesh/wire.js'))});
      const { Keyring } = require(${JSON.stringify(join(dist, 'coordinators/mesh/auth.js'))});
      const { validateCluster } = require(${JSON.stringify(join(dist, 'takeover/config.js'))});
      const cfg = JSON.parse(require('fs').readFileSync(${JSON.stringify(join(c.dir, 'a.json'))}, 'utf8'));
      const digest = validateCluster(cfg.cluster).digest;
      const good = new Keyring([{ id: 1, key: Buffer.from(${JSON.stringify(key)}, 'hex') }], 1);
      const evil = new Keyring([{ id: 1, key: Buffer.alloc(32, 0xee) }], 1);
      const claim = (seq) => ({ type: 'heartbeat', senderId: 'b', incarnation: BigInt(Date.now()) * 10n, seq, configDigest: digest, health: 'healthy', intervalMs: 10, groups: [{ index: 0, status: 'holding', priority: 255, pinned: true }] });
      const s = dgram.createSocket('udp4');
      const genuine = encodeMeshMessage({ ...claim(1n), groups: [{ index: 0, status: 'standby', priority: 200 }] }, good);
      const msgs = [
        encodeMeshMessage(claim(1n), evil),                 // forged: wrong key
        encodeMeshMessage(claim(2n)),                       // unsigned
        Buffer.from('VIPA garbage that is not a message'),  // malformed
        genuine, genuine, genuine,                          // replayed
      ];
      let i = 0;
      const next = () => i < msgs.length ? s.send(msgs[i++], 5405, '198.51.100.1', next) : s.close();
      next();`;
    const before = (await c.status('a')).mesh;
    c.lan.host('client').run(process.execPath, '-e', script);
    await waitUntil(async () => {
      const m = (await c.status('a')).mesh;
      return m['bad-mac']! > before['bad-mac']! && m.replayed! >= before.replayed! + 2;
    }, 3000, 'the drops to be counted');
    const after = (await c.status('a')).mesh;
    expect(after['bad-mac']! - before['bad-mac']!).toBe(1);
    expect(after.unauthenticated! - before.unauthenticated!).toBe(1);
    expect(after.malformed! - before.malformed!).toBe(1);
    expect(after.replayed! - before.replayed!).toBe(2);
    // None of it moved anything.
    await new Promise((r) => setTimeout(r, 100));
    expect(c.holders()).toEqual(['a']);
    expect((await c.status('a')).groups[0]).toMatchObject({ state: 'active', pinned: false });
    c.clientReaches('a');
  });

  it('a holder whose process and reaper both die loses the address by its lease, without restart', async () => {
    const pid = c.daemons.get('a')!.process!.pid!;
    // Kill the reaper first (a child of the daemon named vipa-reaper), then the daemon.
    const reaper = c.lan.host('a').run('pgrep', '-P', String(pid), 'vipa-reaper').trim();
    expect(reaper).toMatch(/^\d+$/);
    process.kill(Number(reaper), 'SIGKILL');
    c.signal('a', 'SIGKILL');
    const killedAt = performance.now();
    await waitUntil(() => c.holders().includes('b'), 5000, 'b to take over');
    expect(c.holders()).toEqual(['a', 'b']); // a's kernel still has it, as keepalived would leave it forever
    await waitUntil(() => !c.holders().includes('a'), 4000, "a's lease to end");
    const gone = performance.now() - killedAt;
    console.log(`address gone from a ${gone.toFixed(0)} ms after the kill (lease 2 s)`);
    expect(gone).toBeLessThan(4000);
    expect(c.holders()).toEqual(['b']);
  });
});
