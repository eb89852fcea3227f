/**
 * MeshTransport on loopback (no privileges): what the native sender thread
 * sends after an urgent message, and before the first status is set.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Keyring } from '../../../lib/coordinators/mesh/auth.js';
import { MeshTransport, type MeshStatus } from '../../../lib/coordinators/mesh/transport.js';
import { decodeMeshMessage, type MeshMessage } from '../../../lib/coordinators/mesh/wire.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const status = (s: 'holding' | 'releasing' | 'standby' | 'starting'): MeshStatus => ({ health: 'healthy', groups: [{ index: 0, status: s, pinned: false, priority: 255 }] });

/**
 * A transport for node a with one peer b, a socket on loopback that records
 * what it receives; `run` gets both and everything is closed after it.
 */
async function withLoopbackTransport(initial: MeshStatus | undefined, run: (transport: MeshTransport, received: { at: number; message: MeshMessage }[]) => Promise<void>): Promise<void> {
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const received: { at: number; message: MeshMessage }[] = [];
  peer.on('message', (bytes) => received.push({ at: performance.now(), message: decodeMeshMessage(bytes) }));
  const selfSocket = dgram.createSocket('udp4');
  await new Promise<void>((r) => selfSocket.bind(0, '127.0.0.1', () => r()));
  const self = { id: 'a', address: '127.0.0.1', port: selfSocket.address().port };
  const transport = new MeshTransport({
    self,
    peers: [{ id: 'b', address: '127.0.0.1', port: peer.address().port }],
    keyring: new Keyring([{ id: 1, key: Buffer.alloc(32, 3) }], 1),
    configDigest: Buffer.alloc(16, 7),
    intervalMs: 1,
    onMessage: () => {},
    onUnreachable: () => {},
    onStarved: () => {},
    staleAfterMs: 1000, // a loaded test machine delays the thread a few ms: no stale drops here
    ...(initial === undefined ? {} : { status: initial }),
  });
  try {
    await transport.start(selfSocket);
    await run(transport, received);
  } finally {
    transport.close();
    peer.close();
  }
}

describe('MeshTransport', () => {
  it('after a release, the queued heartbeats carry the status given with it, never the old "holding"', async () => {
    await withLoopbackTransport(undefined, async (transport, received) => {
      transport.setStatus(status('holding'));
      await sleep(30);
      const releasedAt = performance.now();
      transport.sendRelease(0, 'b', false, status('releasing'));
      await sleep(30);
      const after = received.filter((r) => r.at >= releasedAt).map((r) => r.message);
      const releaseIndex = after.findIndex((m) => m.type === 'release');
      expect(releaseIndex).toBeGreaterThanOrEqual(0);
      const heartbeatsAfter = after.slice(releaseIndex + 1).filter((m) => m.type === 'heartbeat');
      expect(heartbeatsAfter.length).toBeGreaterThan(5);
      expect(heartbeatsAfter.map((m) => (m.type === 'heartbeat' ? m.groups[0]!.status : '')).filter((s) => s !== 'releasing')).toEqual([]);
      // Sequence numbers keep increasing across the urgent message.
      const seqs = after.map((m) => m.seq);
      expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    });
  });

  it('after the process was stopped, heartbeats resume at once with a fresh queue, not at the next periodic refill', async () => {
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
    const arrivals: { at: number; seq: bigint }[] = [];
    peer.on('message', (bytes) => arrivals.push({ at: performance.now(), seq: decodeMeshMessage(bytes).seq }));
    // A node in its own process (SIGSTOP stops every thread): 2 ms heartbeats,
    // a 2 s watchdog queue (refilled every 500 ms), stale after 4 ms late.
    const transportModule = join(__dirname, '../../../dist/coordinators/mesh/transport.js');
    const authModule = join(__dirname, '../../../dist/coordinators/mesh/auth.js');
    const child = spawn(process.execPath, ['-e', `
      const { MeshTransport } = require(${JSON.stringify(transportModule)});
      const { Keyring } = require(${JSON.stringify(authModule)});
      const t = new MeshTransport({
        self: { id: 'a', address: '127.0.0.1', port: 0 },
        peers: [{ id: 'b', address: '127.0.0.1', port: ${peer.address().port} }],
        keyring: new Keyring([{ id: 1, key: Buffer.alloc(32, 3) }], 1),
        configDigest: Buffer.alloc(16, 7), intervalMs: 2, watchdogMs: 2000, staleAfterMs: 4,
        onMessage() {}, onUnreachable() {}, onStarved() { console.log('starved'); },
      });
      t.start().then(() => console.log('ready'));
      setTimeout(() => t.close(), 10000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 100 && !out.includes('ready'); i++) await sleep(20);
      expect(out).toContain('ready');
      await sleep(50);
      child.kill('SIGSTOP');
      await sleep(60);
      const resumedAt = performance.now();
      child.kill('SIGCONT');
      await sleep(200);
      expect(out).toContain('starved'); // the thread found itself late and dropped the queue
      const after = arrivals.filter((a) => a.at > resumedAt);
      expect(after.length).toBeGreaterThan(20);
      expect(after[0]!.at - resumedAt).toBeLessThan(100);
      const seqs = arrivals.map((a) => a.seq);
      expect(seqs.every((x, i) => i === 0 || x > seqs[i - 1]!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      peer.close();
    }
  });

  it('a watchdog longer than the native queue holds is cut to the queue (it used to throw at start)', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const transport = new MeshTransport({
      self: { id: 'a', address: '127.0.0.1', port: sock.address().port },
      peers: [{ id: 'b', address: '127.0.0.1', port: 9 }],
      keyring: new Keyring([{ id: 1, key: Buffer.alloc(32, 3) }], 1),
      configDigest: Buffer.alloc(16, 7),
      intervalMs: 1,
      watchdogMs: 600_000,
      onMessage: () => {},
      onUnreachable: () => {},
      onStarved: () => {},
      staleAfterMs: 1000,
    });
    try {
      await transport.start(sock);
      expect((transport.senderStats as { queued: number }).queued).toBeGreaterThan(1000); // full: 1024 minus the few sent
      expect((transport.senderStats as { queued: number }).queued).toBeLessThanOrEqual(1024);
    } finally {
      transport.close();
    }
  });

  it('the first heartbeats, before any setStatus, carry the initial status (a starting node: every group "starting")', async () => {
    await withLoopbackTransport(status('starting'), async (_transport, received) => {
      await sleep(20);
      const heartbeats = received.map((r) => r.message).filter((m) => m.type === 'heartbeat');
      expect(heartbeats.length).toBeGreaterThan(3);
      expect(heartbeats[0]!.seq).toBe(1n); // from the very first one
      expect(heartbeats.map((m) => (m.type === 'heartbeat' ? m.groups : []))).toEqual(heartbeats.map(() => [{ index: 0, status: 'starting', priority: 255 }]));
    });
  });
});
