/**
 * The client prober against the real kernel: hosts a and b run the echo
 * responder, the client runs the prober (each a separate process in its own
 * namespace, as the demo and the bench run them), and the test moves the
 * virtual address by hand with ip(8):
 *
 * 1. move: delete on a, add on b, announce from b (gratuitous ARP with
 *    iputils arping; for IPv6 an unsolicited Neighbor Advertisement from our
 *    encoder on a packet socket, since the kernel sends none on add and
 *    ndisc6 cannot send an NA). The client must see replies from a, an
 *    outage, then replies from b; the neighbour records a's MAC, then b's.
 * 2. both: add on a again for ~200 ms while b keeps it; both answer every
 *    neighbour request, and twoMacWindows must find that window.
 *
 * Times come from monotonicMs() here and in the prober: the same clock in
 * both processes. Assertions avoid tight timing: this machine has 2 cores
 * shared with other test files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { outages, replyTime, twoMacWindows, summarize, type ProbeRecord } from '../../lib/demo/analysis.js';
import { monotonicMs } from '../../lib/demo/probe-wire.js';
import { ProberOutput } from '../../lib/demo/prober-lines.js';
import { readyLine } from '../helpers/children.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const DIST = join(__dirname, '../../dist');
const RESPONDER = join(DIST, 'demo/echo-responder-main.js');
const PROBER = join(DIST, 'demo/prober-main.js');
const PORT = '7777';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends one unsolicited NA for `address` from `host`'s eth0, with vipa's encoder (a child process, not awaited). */
function announceNeighborAdvertisement(host: TestHost, address: string): ChildProcess {
  const script = `
    const { native } = require(${JSON.stringify(join(DIST, 'native.js'))});
    const { Netlink } = require(${JSON.stringify(join(DIST, 'netlink/netlink.js'))});
    const { encodeUnsolicitedNeighborAdvertisement } = require(${JSON.stringify(join(DIST, 'packets/ndp.js'))});
    const { parseIp, parseMac } = require(${JSON.stringify(join(DIST, 'ip.js'))});
    const nl = new Netlink();
    const link = nl.linkGetSync('eth0');
    nl.close();
    const socket = new (native().Socket)('packet', { ifindex: link.index, protocol: 0x86dd });
    socket.send(encodeUnsolicitedNeighborAdvertisement({ mac: parseMac(link.mac), address: parseIp(${JSON.stringify(address)}).bytes, router: false }));
    socket.close();`;
  return host.spawn(process.execPath, ['-e', script]);
}

/** Whether `pid` runs (a zombie does not: its new parent may take a while to reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

interface Scenario {
  family: 4 | 6;
  vip: string;
  prefix: number;
  /** The hosts' own addresses: the client's is the source of the UDP probes. */
  own: { a: string; b: string; client: string };
  /** Extra `ip addr add` arguments (IPv6: nodad, or the address is tentative for ~1 s). */
  addFlags: string[];
  /**
   * Starts the announcement from b and returns at once: arping sends its
   * packet at start but then waits a second before exiting.
   */
  announce: (b: TestHost) => ChildProcess;
}

const SCENARIOS: Scenario[] = [
  {
    family: 4,
    vip: '198.51.100.100',
    prefix: 24,
    own: { a: '198.51.100.1', b: '198.51.100.2', client: '198.51.100.3' },
    addFlags: [],
    announce: (b) => b.spawn('arping', ['-U', '-c', '1', '-I', 'eth0', '198.51.100.100']),
  },
  {
    family: 6,
    vip: '2001:db8::100',
    prefix: 64,
    own: { a: '2001:db8::1', b: '2001:db8::2', client: '2001:db8::3' },
    addFlags: ['nodad'],
    announce: (b) => announceNeighborAdvertisement(b, '2001:db8::100'),
  },
];

describe.skipIf(skipKernelTests())('client prober against the kernel', () => {
  let lan: TestLan;
  let a: TestHost;
  let b: TestHost;
  let client: TestHost;
  let macA: string;
  let macB: string;

  beforeAll(async () => {
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
    const responders = [
      a.spawn(process.execPath, [RESPONDER, '--port', PORT, '--name', 'a']),
      b.spawn(process.execPath, [RESPONDER, '--port', PORT, '--name', 'b']),
    ];
    await Promise.all(responders.map((r, i) => readyLine(r, `responder ${i === 0 ? 'a' : 'b'}`)));
  });

  afterAll(async () => {
    await lan?.destroy(); // kills the responders and probers it spawned, then the namespaces
  });

  for (const s of SCENARIOS) {
    test(`IPv${s.family}: replies move from a to b with an outage; both holding shows as two MACs`, async () => {
      const vipWithPrefix = `${s.vip}/${s.prefix}`;
      a.ip('addr', 'add', vipWithPrefix, 'dev', 'eth0', ...s.addFlags);
      client.ip('neigh', 'flush', 'dev', 'eth0'); // start from a client that knows no holder yet
      const prober = client.spawn(process.execPath, [PROBER, '--target', s.vip, '--port', PORT, '--interval', '1', '--interface', 'eth0']);
      let stderr = '';
      prober.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const output = ProberOutput.follow(prober.stdout!);
      try {
        const ready = await output.ready;
        expect(ready.family).toBe(s.family);
        expect(ready.neighborIdentity).toBe('phantom');
        expect(ready.neighborMac).not.toBe(ready.mac);
        await sleep(500);

        const moveAt = monotonicMs();
        a.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
        b.ip('addr', 'add', vipWithPrefix, 'dev', 'eth0', ...s.addFlags);
        s.announce(b);
        const movedAt = monotonicMs();
        await sleep(400);

        const bothAt = monotonicMs();
        a.ip('addr', 'add', vipWithPrefix, 'dev', 'eth0', ...s.addFlags);
        await sleep(200);
        const oneAt = monotonicMs();
        a.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
        await sleep(300);

        prober.kill('SIGTERM');
        const end = await output.ended;
        expect(end?.reason, stderr).toBe('SIGTERM');
        const record: ProbeRecord = output.record;
        const startedAt = ready.startedAt;
        const stoppedAt = Number(output.stats?.stoppedAt);

        // The probe rate: at least 800 a second (1000 configured).
        const sent = Number(output.stats?.sent);
        expect(sent / ((stoppedAt - startedAt) / 1000)).toBeGreaterThan(800);

        // Phase 1, the move: a answered, then nobody, then b.
        const beforeMove = record.replies.filter((r) => replyTime(r) < moveAt);
        const afterMove = record.replies.filter((r) => replyTime(r) > movedAt && replyTime(r) < bothAt);
        expect(beforeMove.length).toBeGreaterThan(100);
        expect(new Set(beforeMove.map((r) => r.responder))).toEqual(new Set(['a']));
        expect(afterMove.length).toBeGreaterThan(50);
        expect(afterMove[afterMove.length - 1]!.responder).toBe('b');
        const [moveSummary] = summarize([{ name: 'move', at: moveAt }, { name: 'both', at: bothAt }], record);
        expect(moveSummary!.holderBefore).toBe('a');
        expect(moveSummary!.holderAfter).toBe('b');
        expect(moveSummary!.macBefore).toBe(macA);
        expect(moveSummary!.macAfter).toBe(macB);
        const outage = outages(record, { from: moveAt - 5, to: bothAt });
        expect(outage.longestMs).toBeGreaterThan(0);
        expect(outage.longestMs).toBeLessThan(bothAt - moveAt);
        expect(outage.longest!.from).toBeGreaterThanOrEqual(moveAt - 5);
        expect(outage.longest!.to).toBeLessThan(bothAt);

        // The neighbour records: a's MAC before the move, b's after it.
        const macsBefore = new Set(record.neighbors.filter((n) => n.at < moveAt).map((n) => n.mac));
        const macsAfter = new Set(record.neighbors.filter((n) => n.at > movedAt + 5 && n.at < bothAt).map((n) => n.mac));
        expect(macsBefore).toEqual(new Set([macA]));
        expect(macsAfter).toEqual(new Set([macB]));
        expect(record.neighbors.find((n) => n.mac === macB && n.at >= moveAt)).toBeDefined();

        // Phase 2, both hold the address: a window with both MACs of roughly the time a held it again.
        const twoMac = twoMacWindows(record.neighbors, { windowMs: 10 });
        const during = twoMac.windows.filter((w) => w.to > bothAt && w.from < oneAt + 50);
        expect(during.length).toBeGreaterThanOrEqual(1);
        const longest = during.reduce((x, y) => (y.ms > x.ms ? y : x));
        expect(longest.macs).toEqual([macA, macB].sort());
        expect(longest.ms).toBeGreaterThanOrEqual(50);
        expect(longest.ms).toBeLessThan(oneAt - bothAt + 100);
        // And none during the clean move.
        expect(twoMac.windows.filter((w) => w.to < bothAt)).toEqual([]);

        // The prober's own neighbour requests left the client's cache alone:
        // a answered them, but the client kept sending to b, which it learned
        // from the announcement (with requests from the client's own MAC,
        // a's answers would have moved it to a, see prober.ts).
        const whileBoth = record.replies.filter((r) => replyTime(r) > bothAt && replyTime(r) < oneAt + 300);
        expect(whileBoth.length).toBeGreaterThan(100);
        expect(new Set(whileBoth.map((r) => r.responder))).toEqual(new Set(['b']));
      } finally {
        prober.kill('SIGKILL');
        try {
          a.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
        } catch {
          // not there: the test got past phase 2
        }
        try {
          b.ip('addr', 'del', vipWithPrefix, 'dev', 'eth0');
        } catch {
          // not there: the test failed before the move
        }
      }
    });
  }

  test('the echo responder answers 12-byte probes over IPv4 and IPv6 with its name, and nothing else', () => {
    const script = `
      const dgram = require('node:dgram');
      const { encodeProbe, decodeEchoReply } = require(${JSON.stringify(join(DIST, 'demo/probe-wire.js'))});
      const ask = (type, host, payload) => new Promise((resolve) => {
        const socket = dgram.createSocket(type);
        const timer = setTimeout(() => { socket.close(); resolve(null); }, 300);
        socket.once('message', (m) => { clearTimeout(timer); socket.close(); resolve(decodeEchoReply(m)); });
        socket.send(payload, ${PORT}, host);
      });
      (async () => {
        const out = [];
        for (const [type, host] of [['udp4', ${JSON.stringify(SCENARIOS[0]!.own.a)}], ['udp6', ${JSON.stringify(SCENARIOS[1]!.own.a)}]]) {
          const reply = await ask(type, host, encodeProbe(42, 987654321n));
          out.push(reply && { seq: reply.seq, sentAtNs: String(reply.sentAtNs), responder: reply.responder });
          out.push(await ask(type, host, Buffer.from('not a probe')));
        }
        console.log(JSON.stringify(out));
      })();`;
    const replies = JSON.parse(client.run(process.execPath, '-e', script)) as unknown[];
    const expected = { seq: 42, sentAtNs: '987654321', responder: 'a' };
    expect(replies).toEqual([expected, null, expected, null]);
  });

  test('the prober survives malformed frames, stops on stdin EOF and when its parent dies', async () => {
    const { vip, prefix } = SCENARIOS[0]!;
    a.ip('addr', 'add', `${vip}/${prefix}`, 'dev', 'eth0');
    client.ip('neigh', 'flush', 'dev', 'eth0'); // the last test left the address's entry pointing to b
    // Spawned by hand rather than with host.spawn, whose children get /dev/null as stdin.
    const prober = spawn('nsenter', [`--net=${client.netns}`, '--', process.execPath, PROBER, '--target', vip, '--port', PORT], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let orphan: number | undefined;
    try {
      const output = ProberOutput.follow(prober.stdout);
      await output.ready;
      // ARP frames the decoder refuses, broadcast from a: ar$pro 0x86dd, ar$op 9, ar$hln 7. (A frame
      // shorter than an ARP header does not make it through the veth and bridge to the client.)
      const script = `
        const { native } = require(${JSON.stringify(join(DIST, 'native.js'))});
        const { Netlink } = require(${JSON.stringify(join(DIST, 'netlink/netlink.js'))});
        const nl = new Netlink();
        const link = nl.linkGetSync('eth0');
        nl.close();
        const socket = new (native().Socket)('packet', { ifindex: link.index, protocol: 0x0806 });
        const header = Buffer.from('ffffffffffff' + link.mac.replaceAll(':', '') + '0806', 'hex');
        const arp = (hex) => Buffer.concat([header, Buffer.from(hex, 'hex')]);
        const good = '0001080006040001' + link.mac.replaceAll(':', '') + 'c6336464' + '000000000000' + 'c6336403';
        const frames = [arp(good.slice(0, 4) + '86dd' + good.slice(8)), arp(good.slice(0, 14) + '09' + good.slice(16)), arp(good.slice(0, 8) + '07' + good.slice(10))];
        for (let i = 0; i < 5; i++) for (const f of frames) socket.send(f);
        socket.close();`;
      a.run(process.execPath, '-e', script);
      await sleep(200);
      const repliesBefore = output.record.replies.length;
      await sleep(100);
      expect(output.record.replies.length).toBeGreaterThan(repliesBefore); // still probing
      prober.stdin.end();
      const end = await output.ended;
      expect(end?.reason).toBe('stdin-eof');
      expect(Number(output.stats?.frameErrors)).toBeGreaterThanOrEqual(15);
      if (prober.exitCode === null) await new Promise((r) => prober.once('exit', r));
      expect(prober.exitCode).toBe(0);

      // Parent death: the prober's parent, a shell, is SIGKILLed; the prober notices within its 250 ms check.
      // The shell prints the prober's pid, then the prober's lines follow on the same pipe.
      const shell = client.spawn('sh', ['-c', `echo $$; ${process.execPath} ${PROBER} --target ${vip} --port ${PORT} & echo "pid $!"; wait`]);
      let shellOut = '';
      shell.stdout!.on('data', (d: Buffer) => (shellOut += d.toString()));
      const deadline = Date.now() + 10_000;
      while (!shellOut.includes('"type":"ready"') && Date.now() < deadline) await sleep(10);
      orphan = Number(/pid (\d+)/.exec(shellOut)?.[1]);
      expect(running(orphan)).toBe(true);
      shell.kill('SIGKILL');
      const killedAt = Date.now();
      while (running(orphan) && Date.now() < killedAt + 3000) await sleep(10);
      expect(running(orphan)).toBe(false);
      expect(Date.now() - killedAt).toBeLessThan(1500); // 250 ms check + 200 ms drain, with room for a busy machine
      orphan = undefined;
    } finally {
      prober.kill('SIGKILL');
      if (orphan !== undefined && running(orphan)) process.kill(orphan, 'SIGKILL');
      a.ip('addr', 'del', `${vip}/${prefix}`, 'dev', 'eth0');
    }
  });
});
