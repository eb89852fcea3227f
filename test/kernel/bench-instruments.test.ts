/**
 * The failover bench's C instruments (bench/instruments/prober.c and
 * responder.c) against the real kernel, as the bench runs them: compiled by
 * the bench's own CProgram, the responders in holder namespaces a and b, the
 * prober in the client's, on one bridge (the namespace harness of
 * lib/demo/lan.ts, which this test creates and destroys).
 *
 * The prober must speak lib/demo/prober-lines.ts exactly (the bench parses
 * it with ProberOutput and analyses it with lib/demo/analysis.ts), so the
 * test follows it with those. Assertions avoid timing thresholds beyond
 * sanity: this machine has 2 cores shared with other test files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { benchInstrument } from '../../bench/lib/floor.js';
import { outages, replyTime } from '../../lib/demo/analysis.js';
import { monotonicMs } from '../../lib/demo/probe-wire.js';
import { ProberOutput } from '../../lib/demo/prober-lines.js';
import { phantomAddress, phantomMac } from '../../lib/demo/prober.js';
import { parseIp, parseMac } from '../../lib/ip.js';
import { readyLine, exited } from '../helpers/children.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const ROOT = join(__dirname, '../..');
const PORT = '7777';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Scenario {
  family: 4 | 6;
  vip: string;
  prefix: number;
  own: { a: string; b: string; client: string };
  addFlags: string[];
}

const SCENARIOS: Scenario[] = [
  { family: 4, vip: '198.51.100.100', prefix: 24, own: { a: '198.51.100.1', b: '198.51.100.2', client: '198.51.100.3' }, addFlags: [] },
  { family: 6, vip: '2001:db8::100', prefix: 64, own: { a: '2001:db8::1', b: '2001:db8::2', client: '2001:db8::3' }, addFlags: ['nodad'] },
];

describe.skipIf(skipKernelTests())('the bench\'s C prober and echo responder', () => {
  let buildDir: string;
  let prober: string;
  let responder: string;
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  let client: TestHost;
  let macA: string;
  let macB: string;

  beforeAll(async () => {
    // Compiled the way the bench compiles them (cc -O2 -Wall -Wextra, warnings shown).
    buildDir = mkdtempSync(join(tmpdir(), 'vipa-instruments-'));
    prober = benchInstrument(ROOT, buildDir, 'prober');
    responder = benchInstrument(ROOT, buildDir, 'responder');
    lan = await createLan(['a', 'b', 'client']);
    a = lan.host('a');
    b = lan.host('b');
    client = lan.host('client');
    for (const s of SCENARIOS) {
      for (const [name, host] of [['a', a], ['b', b], ['client', client]] as const) {
        host.ip('addr', 'add', `${s.own[name]}/${s.prefix}`, 'dev', 'eth0', ...s.addFlags);
      }
    }
    macA = a.mac();
    macB = b.mac();
    const responders = [a.spawn(responder, ['--port', PORT, '--name', 'a']), b.spawn(responder, ['--port', PORT, '--name', 'b'])];
    await Promise.all(responders.map((r, i) => readyLine(r, `responder ${i === 0 ? 'a' : 'b'}`)));
  });

  afterAll(async () => {
    await lan?.destroy(); // kills the responders and probers it spawned, then the namespaces
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  });

  for (const s of SCENARIOS) {
    test(`IPv${s.family}: every probe answered by the holder's responder; a move shows the new MAC; SIGTERM ends with an end line`, async () => {
      const vipWithPrefix = `${s.vip}/${s.prefix}`;
      a.ip('addr', 'add', vipWithPrefix, 'dev', 'eth0', ...s.addFlags);
      client.ip('neigh', 'flush', 'dev', 'eth0');
      const child = client.spawn(prober, ['--target', s.vip, '--port', PORT, '--interval', '0.5', '--flush-ms', '10']);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const output = ProberOutput.follow(child.stdout!);
      try {
        const ready = await output.ready;
        expect(ready).toMatchObject({ target: s.vip, family: s.family, port: Number(PORT), interface: 'eth0', neighborIdentity: 'phantom', intervalMs: 0.5, neighborProbeIntervalMs: 1 });
        expect(ready.mac).toBe(client.mac());
        expect(ready.neighborMac).not.toBe(ready.mac);
        // The phantom identity of lib/demo/prober.ts: .254 of the target's /24, or the EUI-64 of the phantom MAC in its /64.
        expect(parseMac(ready.neighborMac)).toEqual(phantomMac(parseMac(ready.mac)!));
        expect(parseIp(ready.source!)!.bytes).toEqual(phantomAddress(parseMac(ready.neighborMac)!, parseIp(s.vip)!.bytes));
        if (s.family === 4) expect(ready.source).toBe('198.51.100.254');
        await sleep(1000);

        const moveAt = monotonicMs();
        a.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
        b.ip('addr', 'add', vipWithPrefix, 'dev', 'eth0', ...s.addFlags);
        client.ip('neigh', 'flush', 'dev', 'eth0'); // the client resolves the address again, and finds b
        const movedAt = monotonicMs();
        await sleep(1000);

        child.kill('SIGTERM');
        const end = await output.ended;
        expect(end?.reason, stderr).toBe('SIGTERM');
        expect(await exited(child)).toBe(0);
        const { record } = output;
        const stats = output.stats!;
        expect(stats.implementation).toBe('c');
        const sent = Number(stats.sent);
        expect(sent).toBeGreaterThan(1000); // ~4000 configured: sanity only
        expect(Number(stats.stoppedAt)).toBeGreaterThan(ready.startedAt);
        expect(Number(stats.rxKernelTimestamps)).toBeGreaterThan(0);

        // Every probe is accounted for: answered or lost, once; before the move, every one answered.
        const answered = new Set(record.replies.map((r) => r.seq));
        const lost = new Set(record.lost.map((l) => l.seq));
        expect(record.replies.length).toBe(answered.size); // no duplicates
        for (const seq of lost) expect(answered.has(seq)).toBe(false);
        expect(answered.size + lost.size).toBe(sent);
        for (let seq = 0; seq < sent; seq++) expect(answered.has(seq) || lost.has(seq)).toBe(true);
        expect(record.lost.filter((l) => l.sentAt < moveAt)).toEqual([]);
        expect(Number(stats.replies)).toBe(answered.size);
        expect(Number(stats.lost)).toBe(lost.size);

        // Before the move: a answered, with plausible round trips and no long gap.
        const before = record.replies.filter((r) => replyTime(r) < moveAt);
        expect(before.length).toBeGreaterThan(100);
        expect(new Set(before.map((r) => r.responder))).toEqual(new Set(['a']));
        for (const r of before) {
          expect(r.rttMs).toBeGreaterThan(0);
          expect(r.rttMs).toBeLessThan(1000);
        }
        expect(outages(record, { from: ready.startedAt + 100, to: moveAt, intervalMs: 0.5 }).longestMs).toBeLessThan(500);
        // After it: b answers, and b's MAC is the one claiming the address.
        const after = record.replies.filter((r) => replyTime(r) > movedAt + 100);
        expect(after.length).toBeGreaterThan(100);
        expect(new Set(after.map((r) => r.responder))).toEqual(new Set(['b']));
        expect(new Set(record.neighbors.filter((n) => n.at < moveAt).map((n) => n.mac))).toEqual(new Set([macA]));
        const neighborsAfter = record.neighbors.filter((n) => n.at > movedAt + 20);
        expect(neighborsAfter.length).toBeGreaterThan(100); // answers to a request every ms
        expect(new Set(neighborsAfter.map((n) => n.mac))).toEqual(new Set([macB]));
        expect(neighborsAfter.some((n) => n.kind === 'reply')).toBe(true);
      } finally {
        child.kill('SIGKILL');
        for (const host of [a, b]) {
          try {
            host.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
          } catch {
            // not there
          }
        }
      }
    });
  }

  test('a stopped responder: its probes are reported lost', async () => {
    const { vip, prefix } = SCENARIOS[0]!;
    a.ip('addr', 'add', `${vip}/${prefix}`, 'dev', 'eth0');
    client.ip('neigh', 'flush', 'dev', 'eth0'); // an earlier test left the address's entry pointing to b
    const extra = a.spawn(responder, ['--port', '7778', '--name', 'a2', '--family', '4']);
    let extraStderr = '';
    extra.stderr!.on('data', (d: Buffer) => (extraStderr += d.toString()));
    await readyLine(extra, 'responder a2');
    const child = client.spawn(prober, ['--target', vip, '--port', '7778', '--interval', '0.5', '--loss-timeout', '100', '--flush-ms', '10']);
    const output = ProberOutput.follow(child.stdout!);
    try {
      await output.ready;
      const deadline = Date.now() + 5000;
      while (output.record.replies.length < 50 && Date.now() < deadline) await sleep(20);
      extra.kill('SIGTERM');
      expect(await exited(extra)).toBe(0);
      const stoppedAt = monotonicMs();
      const end = JSON.parse(extraStderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
      expect(end.type).toBe('end');
      expect(end.answered).toBeGreaterThan(0);
      await sleep(500);
      child.kill('SIGTERM');
      expect((await output.ended)?.reason).toBe('SIGTERM');
      const { record } = output;
      expect(record.replies.length).toBeGreaterThan(0);
      expect(new Set(record.replies.map((r) => r.responder))).toEqual(new Set(['a2']));
      expect(record.replies.filter((r) => r.sentAt > stoppedAt)).toEqual([]);
      const lostAfter = record.lost.filter((l) => l.sentAt > stoppedAt);
      expect(lostAfter.length).toBeGreaterThan(100); // ~1000 probes in 0.5 s
      expect(Number(output.stats?.lost)).toBe(record.lost.length);
    } finally {
      child.kill('SIGKILL');
      extra.kill('SIGKILL');
      a.ip('addr', 'del', `${vip}/${prefix}`, 'dev', 'eth0');
    }
  });

  test('the responder answers 12-byte probes from the address they reached, with its name, and nothing else', () => {
    for (const s of SCENARIOS) a.ip('addr', 'add', `${s.vip}/${s.prefix}`, 'dev', 'eth0', ...s.addFlags);
    client.ip('neigh', 'flush', 'dev', 'eth0'); // an earlier test left the addresses' entries pointing to b
    try {
      // Without IP_PKTINFO the answer would come from a's own address (the prefix route's preferred source).
      const script = `
        const dgram = require('node:dgram');
        const ask = (type, host, payload) => new Promise((resolve) => {
          const socket = dgram.createSocket(type);
          const timer = setTimeout(() => { socket.close(); resolve(null); }, 300);
          socket.once('message', (m, remote) => {
            clearTimeout(timer);
            socket.close();
            resolve({ from: remote.address, echoed: m.subarray(0, 12).toString('hex'), name: m.subarray(12).toString() });
          });
          socket.send(payload, ${PORT}, host);
        });
        (async () => {
          const probe = Buffer.from('0000002a000000003ade68b1', 'hex');
          const out = [];
          for (const [type, host] of [['udp4', ${JSON.stringify(SCENARIOS[0]!.vip)}], ['udp6', ${JSON.stringify(SCENARIOS[1]!.vip)}]]) {
            out.push(await ask(type, host, probe));
            out.push(await ask(type, host, Buffer.from('not a probe')));
            out.push(await ask(type, host, probe.subarray(0, 11)));
          }
          console.log(JSON.stringify(out));
        })();`;
      const replies = JSON.parse(client.run(process.execPath, '-e', script)) as unknown[];
      const reply = (from: string) => ({ from, echoed: '0000002a000000003ade68b1', name: 'a' });
      expect(replies).toEqual([reply(SCENARIOS[0]!.vip), null, null, reply(SCENARIOS[1]!.vip), null, null]);
    } finally {
      for (const s of SCENARIOS) a.ip('addr', 'del', `${s.vip}/${s.prefix}`, 'dev', 'eth0');
    }
  });

  test('bad arguments: an error line naming the bad value, exit 2 (responder: usage, exit 1; port taken: exit 2)', () => {
    const cases: Array<[string[], string]> = [
      [['--port', PORT], '--target'],
      [['--target', 'not-an-address', '--port', PORT], 'not-an-address'],
      [['--target', '198.51.100.100', '--port', '70000'], '70000'],
      [['--target', '198.51.100.100', '--port', PORT, '--interval', 'fast'], 'fast'],
      [['--target', '198.51.100.100', '--port', PORT, '--interval', '0.1'], '0.1'],
      [['--target', '198.51.100.100', '--port', PORT, '--neighbor-identity', 'ghost'], 'ghost'],
      [['--target', '198.51.100.100', '--port', PORT, '--loss-timeout', '-5'], '-5'],
      [['--target', '198.51.100.100', '--port', PORT, '--flush-ms=0'], '--flush-ms'],
      [['--target', '198.51.100.100', '--port', PORT, '--colour', 'red'], '--colour'],
      [['--target', '198.51.100.100', '--port', PORT, '--interface', 'nope0'], 'nope0'],
      [['--target', '198.51.100.100', '--port', PORT, '--source', '2001:db8::1'], '2001:db8::1'],
    ];
    for (const [args, bad] of cases) {
      // In the client's namespace, where an unknown interface is unknown.
      const r = spawnSync('nsenter', [`--net=${client.netns}`, '--', prober, ...args], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; message: string });
      expect(lines).toHaveLength(1);
      expect(lines[0]!.type).toBe('error');
      expect(lines[0]!.message).toContain(bad);
      expect(r.stderr).toContain('usage:');
    }
    for (const args of [[], ['--port', '0', '--name', 'x'], ['--port', PORT], ['--port', PORT, '--name', 'x', '--family', '5']]) {
      const r = spawnSync(responder, args, { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('usage:');
    }
    // a's responder holds the port already.
    const taken = spawnSync('nsenter', [`--net=${a.netns}`, '--', responder, '--port', PORT, '--name', 'x'], { encoding: 'utf8', timeout: 10_000 });
    expect(taken.status).toBe(2);
    expect(taken.stderr).toMatch(/cannot bind port 7777/);
  });

  test('the prober ends on stdin EOF and after --duration, with its final stats and an end line', async () => {
    const { vip, prefix } = SCENARIOS[0]!;
    a.ip('addr', 'add', `${vip}/${prefix}`, 'dev', 'eth0');
    client.ip('neigh', 'flush', 'dev', 'eth0'); // an earlier test left the address's entry pointing to b
    // Spawned by hand rather than with host.spawn, whose children get /dev/null as stdin.
    const piped = spawn('nsenter', [`--net=${client.netns}`, '--', prober, '--target', vip, '--port', PORT], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const output = ProberOutput.follow(piped.stdout);
      await output.ready;
      await sleep(200);
      piped.stdin.end();
      expect((await output.ended)?.reason).toBe('stdin-eof');
      expect(await exited(piped)).toBe(0);
      expect(Number(output.stats?.sent)).toBeGreaterThan(0);

      const timed = client.spawn(prober, ['--target', vip, '--port', PORT, '--duration', '300', '--interval', '0.5']);
      const timedOutput = ProberOutput.follow(timed.stdout!);
      const ready = await timedOutput.ready;
      expect((await timedOutput.ended)?.reason).toBe('done');
      expect(await exited(timed)).toBe(0);
      const stats = timedOutput.stats!;
      expect(Number(stats.stoppedAt) - ready.startedAt).toBeGreaterThanOrEqual(300);
      expect(Number(stats.sent)).toBeGreaterThan(0);
      expect(Number(stats.replies)).toBeGreaterThan(0);
      expect(timedOutput.malformed).toBe(0);
    } finally {
      piped.kill('SIGKILL');
      a.ip('addr', 'del', `${vip}/${prefix}`, 'dev', 'eth0');
    }
  });
});
