/**
 * netlink suite: what one address change costs through vipa's rtnetlink
 * API, against the kernel floor (bench/floor/netlink_floor.c: the same
 * requests from a minimal C loop) and against the alternatives a Node daemon
 * has (`ip addr` from child_process, the npm `netlink` package).
 *
 * Everything runs in the bench's private network namespace, on one veth
 * interface, on addresses from 198.51.100.0/24, 203.0.113.0/24 and
 * 2001:db8::/32 only. vipa is loaded from dist/ (the compiled library users
 * get), and always given the interface index, as the hot path should be.
 *
 * 1. add+delete pair of one address (IPv4 /32; IPv6 /128 nodad):
 *    C floor | addrAddSync+addrDelSync | await addrAdd+addrDel |
 *    npm netlink | ip addr add+del.
 *    Diagnostics that split vipa's cost: its native socket alone
 *    (pre-encoded requests), its whole TS path on a stubbed socket (no
 *    syscalls), and validate+encode alone.
 * 2. one batch: add N addresses (IPv4: 500, IPv6: 1000), timed; deleted
 *    untimed between rounds: addrBatchSync | C floor, 128 requests per
 *    sendto (BATCH_CHUNK) | C floor, 1 request per sendto.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { busyShare, readCpuTimes } from '../lib/cpuload.js';
import { Floor, type FloorPair } from '../lib/floor.js';
import { assertPrivateNetns, createVethPair, deleteLink, IP, readSysctl } from '../lib/host.js';
import { interleave, pooledRatios, type Contender, type Pooled } from '../lib/interleave.js';
import { median, summarize, trimmedMean } from '../lib/stats.js';
import { tinySamples } from '../lib/tiny.js';
import type { Ratio, Row, Suite, SuiteContext, SuiteResult } from '../lib/types.js';

type Vipa = typeof import('../../lib/index.js');
type VipaNetlink = InstanceType<Vipa['Netlink']>;
type AddressBatchItem = import('../../lib/index.js').AddressBatchItem;
type AddressBatchResult = import('../../lib/index.js').AddressBatchResult;

const LINK = 'vbench0';
const PEER = 'vbench1';
const IFA_F_NODAD = 0x02;

interface Sizes {
  /** Interleaved blocks of the pair comparison. */
  blocks: number;
  /** Pairs per block per contender (C floor: per pass). */
  pairsPerBlock: number;
  /** Untimed pairs before each block, for every contender. */
  warmupPairs: number;
  /** `ip addr` pairs per block (~7 ms each). */
  ipPerBlock: number;
  ipWarmup: number;
  /** Interleaved rounds of the batch comparison (one timed batch per contender per round). */
  batchRounds: number;
  /** Back-to-back unsettled IPv6 batch rounds, to show why rounds are settled (0 = skip). */
  unsettledRounds: number;
}

const FULL: Sizes = { blocks: 20, pairsPerBlock: 2000, warmupPairs: 200, ipPerBlock: 20, ipWarmup: 2, batchRounds: 10, unsettledRounds: 4 };
const QUICK: Sizes = { blocks: 4, pairsPerBlock: 400, warmupPairs: 100, ipPerBlock: 4, ipWarmup: 1, batchRounds: 3, unsettledRounds: 0 };

interface Family {
  key: 'v4' | 'v6';
  name: string;
  /** The address of the pair benchmark. */
  pairAddress: string;
  /** The addresses of the batch benchmark. */
  batch: string[];
  nodad: boolean;
  prefix: number;
}

function ipv4Batch(): string[] {
  // 1000 distinct IPv4 addresses do not fit in the two documentation /24s we
  // may use (512 addresses), so the IPv4 batch is 500: .1-.250 of each.
  const list: string[] = [];
  for (const net of ['198.51.100', '203.0.113']) for (let i = 1; i <= 250; i++) list.push(`${net}.${i}`);
  return list;
}

function ipv6Batch(): string[] {
  const list: string[] = [];
  for (let i = 1; i <= 1000; i++) list.push(`2001:db8:1::${i.toString(16)}`);
  return list;
}

const FAMILIES: Family[] = [
  { key: 'v4', name: 'IPv4', pairAddress: '198.51.100.251', batch: ipv4Batch(), nodad: false, prefix: 32 },
  { key: 'v6', name: 'IPv6', pairAddress: '2001:db8::1', batch: ipv6Batch(), nodad: true, prefix: 128 },
];

/** An installed package's version (read from disk: not every package exports ./package.json). */
function packageVersion(root: string, name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The calling thread's involuntary context switches and on-CPU time (ns) so far. */
function threadCounters(): { switches: number; cpuNs: number } {
  const m = /^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync('/proc/thread-self/status', 'utf8'));
  // schedstat: time on CPU (ns), time waiting to run (ns), timeslices (Documentation/scheduler/sched-stats.rst).
  const onCpu = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  return { switches: m ? Number(m[1]) : NaN, cpuNs: onCpu };
}

/** Busy share of all CPUs over one second in which the bench does nothing. */
function measureIdleLoad(): number {
  const from = readCpuTimes();
  sleepMs(1000);
  return busyShare(from, readCpuTimes());
}

/** Synchronous sleep for untimed settle periods inside tinybench hooks. */
function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function hex(b: Buffer | Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Zeroes nlmsg_seq and nlmsg_pid of every message in a request buffer, for byte comparison. */
function maskHeaders(buf: Buffer): string {
  const b = Buffer.from(buf);
  for (let o = 0; o + 16 <= b.length; ) {
    const len = b.readUInt32LE(o);
    b.writeUInt32LE(0, o + 8);
    b.writeUInt32LE(0, o + 12);
    if (len < 16) break;
    o += (len + 3) & ~3;
  }
  return b.toString('hex');
}

export const suite: Suite = {
  name: 'netlink',
  title: 'Netlink micro-benchmark: interface address changes',
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    assertPrivateNetns();
    const sizes = ctx.quick ? QUICK : FULL;
    const req = createRequire(join(ctx.root, 'package.json'));
    const vipa = req('./dist/index.js') as Vipa;
    // Internal codecs: to prove the floor sends vipa's bytes, and for the diagnostics.
    const addressCodec = req('./dist/netlink/address.js') as typeof import('../../lib/netlink/address.js');
    const messageCodec = req('./dist/netlink/message.js') as typeof import('../../lib/netlink/message.js');

    const rows: Row[] = [];
    const ratios: Ratio[] = [];
    const notes: string[] = [];
    const pooled = new Map<string, Pooled>();
    /** Adds the ratio of two pooled rows; the verdict, when there is a target, is on the median ratio. */
    const addRatio = (id: string, label: string, numerator: string, denominator: string, target?: number) => {
      const r: Ratio = { id, label, numerator, denominator, ...pooledRatios(pooled.get(numerator)!, pooled.get(denominator)!) };
      const cpuOf = (rowId: string) => rows.find((row) => row.id === rowId)?.threadCpuPerItem;
      const [a, b] = [cpuOf(numerator), cpuOf(denominator)];
      if (a !== undefined && b !== undefined) r.threadCpu = a / b;
      if (target !== undefined) Object.assign(r, { target, pass: r.value <= target });
      ratios.push(r);
    };
    /** CPU busy share per block, by section. */
    const load: Record<string, number[]> = {};

    // Other processes' load, measured while the bench does nothing (reported with the results).
    const idleBefore = measureIdleLoad();
    createVethPair(LINK, PEER);
    const nl: VipaNetlink = new vipa.Netlink();
    let closeNpm: (() => void) | undefined;
    try {
      const index = nl.linkGetSync(LINK).index;
      waitForSettledLink(nl, index);
      const baseline = nl.addrListSync({ link: index }).length;
      const checkBaseline = (where: string) => {
        const n = nl.addrListSync({ link: index }).length;
        if (n !== baseline) throw new Error(`${where}: ${LINK} holds ${n} addresses, expected its starting ${baseline}`);
      };

      ctx.log(`  compiling the C floor`);
      const floor = new Floor(ctx.root, ctx.buildDir);

      // ---- the floor sends exactly vipa's bytes ----------------------------------
      const vipaBytes = (verb: 'add' | 'delete', f: Family): Buffer => {
        const w = new messageCodec.MessageWriter();
        const spec = { link: index, address: f.pairAddress, ...(f.nodad ? { nodad: true } : {}) };
        addressCodec.encodeAddressRequest(w, verb, addressCodec.validateAddressSpec(spec), 0);
        return Buffer.from(w.buffer.subarray(0, w.length));
      };
      for (const f of FAMILIES) {
        const c = floor.dump(index, f.pairAddress, f.nodad ? IFA_F_NODAD : 0);
        const v = { add: hex(vipaBytes('add', f)), del: hex(vipaBytes('delete', f)) };
        if (c.add !== v.add || c.del !== v.del) {
          throw new Error(`the C floor's ${f.name} requests differ from vipa's: floor add ${c.add} del ${c.del}, vipa add ${v.add} del ${v.del}`);
        }
      }
      notes.push('The C floor sends byte-identical requests to vipa\'s encodeAddressRequest (checked in this run for both families, sequence number aside).');

      // ---- npm netlink -------------------------------------------------------------
      type NpmRt = {
        newAddress(data: object, attrs: object, options: object): Promise<unknown>;
        delAddress(data: object, attrs: object, options?: object): Promise<unknown>;
        socket: { close(): void; socket: { send: (msg: Buffer | Buffer[], ...rest: unknown[]) => unknown } };
      };
      let npm: { rt: NpmRt; createExcl: number; version: string } | undefined;
      try {
        const mod = req('netlink') as { createRtNetlink(): NpmRt; FlagsNew: { CREATE: number; EXCL: number } };
        const rt = mod.createRtNetlink();
        closeNpm = () => rt.socket.close();
        npm = { rt, createExcl: mod.FlagsNew.CREATE | mod.FlagsNew.EXCL, version: packageVersion(ctx.root, 'netlink') };
      } catch (e) {
        notes.push(`npm netlink could not be loaded, so it was not measured: ${(e as Error).message}`);
      }
      const npmArgs = (f: Family) => {
        const bytes = Buffer.from(vipa.parseIp(f.pairAddress)!.bytes);
        const data = { family: f.key === 'v4' ? 2 : 10, prefixlen: f.prefix, index, scope: 0, flags: f.nodad ? { nodad: true } : {} };
        return {
          data,
          add: { local: bytes, address: bytes, flags: f.nodad ? { nodad: true } : {} },
          del: { local: bytes, address: bytes },
        };
      };
      if (npm) {
        // Capture the npm package's requests once and compare them with vipa's.
        const raw = npm.rt.socket.socket;
        const original = raw.send;
        for (const f of FAMILIES) {
          const sent: string[] = [];
          raw.send = function (this: unknown, msg: Buffer | Buffer[], ...rest: unknown[]) {
            sent.push(maskHeaders(Array.isArray(msg) ? Buffer.concat(msg) : Buffer.from(msg)));
            return original.call(this, msg, ...rest);
          };
          const a = npmArgs(f);
          try {
            await npm.rt.newAddress(a.data, a.add, { flags: npm.createExcl });
            await npm.rt.delAddress(a.data, a.del);
          } finally {
            raw.send = original;
          }
          const same = sent[0] === maskHeaders(vipaBytes('add', f)) && sent[1] === maskHeaders(vipaBytes('delete', f));
          notes.push(same
            ? `npm netlink ${npm.version} sends the same ${f.name} request bytes as vipa (nlmsg_seq/nlmsg_pid aside).`
            : `npm netlink ${npm.version} ${f.name} requests differ from vipa's: add ${sent[0]} vs ${maskHeaders(vipaBytes('add', f))}; del ${sent[1]} vs ${maskHeaders(vipaBytes('delete', f))}.`);
        }
        checkBaseline('after the npm netlink byte check');
      }

      // ---- 1. add+delete pairs ---------------------------------------------------------
      for (const f of FAMILIES) {
        const group = `${f.name} /${f.prefix}${f.nodad ? ' nodad' : ''} add+delete pair (${f.pairAddress})`;
        const spec = { link: index, address: f.pairAddress, ...(f.nodad ? { nodad: true } : {}) };
        const ipArgs = {
          add: [...(f.key === 'v6' ? ['-6'] : []), 'addr', 'add', `${f.pairAddress}/${f.prefix}`, 'dev', LINK, ...(f.nodad ? ['nodad'] : [])],
          del: [...(f.key === 'v6' ? ['-6'] : []), 'addr', 'del', `${f.pairAddress}/${f.prefix}`, 'dev', LINK],
        };
        const batchOf100: Pooled = { samples: [], blockMedians: [], blockTrimmedMeans: [] };
        const n = sizes.pairsPerBlock;
        const w = sizes.warmupPairs;
        const after = () => checkBaseline(`${f.name} pair`);
        // Per contender: involuntary context switches (kernel work queued by each change preempts the caller) and
        // the measuring thread's on-CPU time, per pair, warmup pairs included (both are counted over whole runs).
        const threads = new Map<string, { switches: number; cpuNs: number; pairs: number }>();
        const account = (cid: string, pairs: number, switches: number, cpuNs: number) => {
          const e = threads.get(cid) ?? { switches: 0, cpuNs: 0, pairs: 0 };
          e.switches += switches;
          e.cpuNs += cpuNs;
          e.pairs += pairs;
          threads.set(cid, e);
        };
        const counted = (cid: string, pairs: number, run: () => Promise<number[]>) => async () => {
          const before = threadCounters();
          const samples = await run();
          const after = threadCounters();
          account(cid, pairs, after.switches - before.switches, after.cpuNs - before.cpuNs);
          return samples;
        };
        const contenders: Contender[] = [
          {
            id: 'floor',
            run: () => {
              const r: FloorPair = floor.pair({ ifindex: index, address: f.pairAddress, flags: f.nodad ? IFA_F_NODAD : 0, pairs: n, warmup: w, batch: 100 });
              batchOf100.samples.push(...r.perPairInBatchesSamples!);
              batchOf100.blockMedians.push(median(r.perPairInBatchesSamples!));
              batchOf100.blockTrimmedMeans.push(trimmedMean(r.perPairInBatchesSamples!));
              account('floor', 2 * n, r.involuntarySwitchesPerPair * 2 * n, r.threadCpuNsPerPair * 2 * n);
              return r.perPairSamples!;
            },
            after,
          },
          {
            id: 'sync',
            run: counted('sync', n + w, () => tinySamples(`${f.key} sync pair`, () => {
              nl.addrAddSync(spec);
              nl.addrDelSync(spec);
            }, { iterations: n, warmupIterations: w, async: false })),
            after,
          },
          {
            id: 'async',
            run: counted('async', n + w, () => tinySamples(`${f.key} async pair`, async () => {
              await nl.addrAdd(spec);
              await nl.addrDel(spec);
            }, { iterations: n, warmupIterations: w, async: true })),
            after,
          },
        ];
        // Diagnostic: vipa's native socket alone (pre-encoded requests, no TS layer), to split vipa's cost into
        // native/process overhead and TypeScript overhead. Uses internals; skipped if they change.
        const raw = nativeOnlyPair(nl, vipaBytes('add', f), vipaBytes('delete', f));
        if (raw) {
          contenders.push({
            id: 'native',
            run: counted('native', n + w, () => tinySamples(`${f.key} native-only pair`, raw, { iterations: n, warmupIterations: w, async: false })),
            after,
          });
        } else if (f.key === 'v4') {
          notes.push('The "native socket only" diagnostic was skipped: Netlink internals (conn.socket, conn.receiveBuffer) changed.');
        }
        if (npm) {
          const a = npmArgs(f);
          const { rt, createExcl } = npm;
          contenders.push({
            id: 'npm',
            run: counted('npm', n + w, () => tinySamples(`${f.key} npm netlink pair`, async () => {
              await rt.newAddress(a.data, a.add, { flags: createExcl });
              await rt.delAddress(a.data, a.del);
            }, { iterations: n, warmupIterations: w, async: true })),
            after,
          });
        }
        contenders.push({
          id: 'ip',
          run: () => tinySamples(`${f.key} ip pair`, () => {
            execFileSync(IP, ipArgs.add, { stdio: 'ignore', timeout: 5_000 });
            execFileSync(IP, ipArgs.del, { stdio: 'ignore', timeout: 5_000 });
          }, { iterations: sizes.ipPerBlock, warmupIterations: sizes.ipWarmup, async: false }),
          after,
        });

        ctx.log(`  ${group}: ${sizes.blocks} interleaved blocks`);
        const { pooled: res, busy } = await interleave(sizes.blocks, contenders, ctx.log, `${f.name} pair`);
        load[`${f.key}.pair`] = busy;
        const id = (c: string) => `${f.key}.pair.${c}`;
        const add = (c: string, label: string, source: string) => {
          const p = res.get(c)!;
          pooled.set(id(c), p);
          const t = threads.get(c);
          rows.push({
            id: id(c), group, label, source, unit: 'pair', stats: summarize(p.samples), blockMedians: p.blockMedians, blockTrimmedMeans: p.blockTrimmedMeans,
            ...(t ? { threadCpuPerItem: t.cpuNs / t.pairs, switchesPerItem: t.switches / t.pairs } : {}),
          });
        };
        add('floor', 'C floor, each pair timed (clock_gettime around add+delete)', 'C floor');
        pooled.set(id('floor100'), batchOf100);
        rows.push({
          id: id('floor100'), group, label: 'C floor, timed per batch of 100 pairs (per-pair figure)', source: 'C floor', unit: 'pair',
          stats: summarize(batchOf100.samples), blockMedians: batchOf100.blockMedians, blockTrimmedMeans: batchOf100.blockTrimmedMeans,
          note: 'equal-size batches, so the mean of this row is total time / N over the whole pass',
        });
        add('sync', 'vipa addrAddSync + addrDelSync', 'tinybench');
        add('async', 'vipa await addrAdd + await addrDel', 'tinybench');
        if (raw) add('native', 'diagnostic: vipa native socket only — send+recv of pre-encoded requests, no TS layer', 'tinybench');
        if (npm) add('npm', `npm netlink ${npm.version} await newAddress + delAddress`, 'tinybench');
        {
          // Diagnostics without syscalls, 100 pairs per tinybench sample so the timer's own cost does not dominate:
          // validate + encode only, and the whole TS path (addrAddSync/addrDelSync, addrAdd/addrDel) on a handle whose
          // socket is replaced by a stub that answers every request with a real ack captured from the kernel.
          const reps = 100;
          const iterations = Math.max(50, n / 20);
          const diag = async (key: string, label: string, fn: () => unknown, isAsync: boolean) => {
            const samples = await tinySamples(`${f.key} ${key}`, fn, { iterations, warmupIterations: 20, async: isAsync });
            rows.push({ id: id(key), group, label: `diagnostic: ${label} (per pair: sample / ${reps})`, source: 'tinybench', unit: 'pair', stats: summarize(samples.map((x) => x / reps)) });
          };
          const writer = new messageCodec.MessageWriter();
          await diag('encode', 'validateAddressSpec + encodeAddressRequest, add and delete, no syscalls', () => {
            for (let i = 0; i < reps; i++) {
              writer.reset();
              addressCodec.encodeAddressRequest(writer, 'add', addressCodec.validateAddressSpec(spec), i);
              writer.reset();
              addressCodec.encodeAddressRequest(writer, 'delete', addressCodec.validateAddressSpec(spec), i);
            }
          }, false);
          const stub = stubbedNetlink(vipa, nl, vipaBytes('add', f), vipaBytes('delete', f));
          if (stub) {
            try {
              await diag('ts-sync', 'whole TS path of addrAddSync + addrDelSync, socket stubbed (no syscalls)', () => {
                for (let i = 0; i < reps; i++) {
                  stub.addrAddSync(spec);
                  stub.addrDelSync(spec);
                }
              }, false);
              await diag('ts-async', 'whole TS path of await addrAdd + await addrDel, socket stubbed (no syscalls)', async () => {
                for (let i = 0; i < reps; i++) {
                  await stub.addrAdd(spec);
                  await stub.addrDel(spec);
                }
              }, true);
            } finally {
              stub.close();
            }
          } else if (f.key === 'v4') {
            notes.push('The stubbed-socket diagnostics were skipped: Netlink internals (conn.socket) changed.');
          }
        }
        add('ip', 'ip addr add + ip addr del (execFileSync)', 'tinybench');

        const ratio = (c: string, label: string, target?: number) => addRatio(`${f.key}.${c}/floor`, `${f.name}: ${label}`, id(c), id('floor'), target);
        ratio('sync', 'sync pair / floor', 1.3);
        ratio('async', 'async pair / floor', 2);
        if (raw) {
          ratio('native', 'diagnostic: native socket only / floor');
          addRatio(`${f.key}.sync/native`, `${f.name}: diagnostic: sync pair / native socket only (the TS layer)`, id('sync'), id('native'));
        }
        if (npm) ratio('npm', 'npm netlink pair / floor');
        ratio('ip', 'ip pair / floor');
        ratio('floor100', 'reference: floor timed per 100 pairs / floor timed per pair');
      }

      // ---- 2. one batch of many addresses -----------------------------------------------
      for (const f of FAMILIES) {
        const count = f.batch.length;
        const group = `${f.name} batch: add ${count} /${f.prefix}${f.nodad ? ' nodad' : ''} addresses (timed), delete them (untimed)`;
        const listFile = join(ctx.buildDir, `netlink-batch-${f.key}.txt`);
        writeFileSync(listFile, `${f.batch.join('\n')}\n`);
        const addItems: AddressBatchItem[] = f.batch.map((a) => ({ op: 'add', link: index, address: a, ...(f.nodad ? { nodad: true } : {}) }));
        const delItems: AddressBatchItem[] = f.batch.map((a) => ({ op: 'delete', link: index, address: a }));
        // IPv6: each address joins a solicited-node multicast group; deleting
        // it leaves an MLD record that is retransmitted for up to one
        // unsolicited-report interval, and while those records exist new
        // adds are several times slower. Waiting 1.5 intervals (+250 ms)
        // after each delete gives every round the same starting state.
        const settleMs = f.key === 'v6' ? Math.round(1.5 * Number(readSysctl(`net.ipv6.conf.${LINK}.mldv2_unsolicited_report_interval`))) + 250 : 0;
        const checkAll = (results: AddressBatchResult[], what: string) => {
          const bad = results.find((r) => !r.ok);
          if (bad && !bad.ok) throw new Error(`${f.name} batch ${what}: ${bad.error.message}`);
        };
        let last: AddressBatchResult[] = [];
        const floorBulk = (chunk: number) => (b: number) => {
          checkBaseline(`${f.name} batch, before the C floor`);
          const r = floor.bulk({ ifindex: index, list: listFile, flags: f.nodad ? IFA_F_NODAD : 0, chunk, rounds: 1, warmup: b === 0 ? 1 : 0, settleMs });
          return r.roundsInOrder;
        };
        const contenders: Contender[] = [
          { id: 'floor', run: floorBulk(128), after: () => checkBaseline(`${f.name} batch C floor`) },
          {
            id: 'vipa',
            run: (b) => tinySamples(`${f.key} addrBatchSync ${count}`, () => {
              last = nl.addrBatchSync(addItems);
            }, {
              iterations: 1,
              warmupIterations: b === 0 ? 1 : 0,
              async: false,
              beforeEach: () => checkBaseline(`${f.name} batch, before addrBatchSync`),
              afterEach: () => {
                checkAll(last, 'add');
                checkAll(nl.addrBatchSync(delItems), 'delete');
                sleepMs(settleMs);
              },
            }),
            after: () => checkBaseline(`${f.name} batch addrBatchSync`),
          },
          { id: 'floor1', run: floorBulk(1), after: () => checkBaseline(`${f.name} batch C floor, 1 per sendto`) },
        ];
        ctx.log(`  ${group}: ${sizes.batchRounds} interleaved rounds, settle ${settleMs} ms`);
        const { pooled: res, busy } = await interleave(sizes.batchRounds, contenders, ctx.log, `${f.name} batch`);
        load[`${f.key}.batch`] = busy;
        const id = (c: string) => `${f.key}.batch.${c}`;
        const unit = `add of ${count}`;
        const add = (c: string, label: string, source: string) => {
          const p = res.get(c)!;
          pooled.set(id(c), p);
          rows.push({ id: id(c), group, label, source, unit, items: count, stats: summarize(p.samples), blockMedians: p.blockMedians, blockTrimmedMeans: p.blockTrimmedMeans });
        };
        add('floor', 'C floor, 128 requests per sendto, then their acks (as BATCH_CHUNK)', 'C floor');
        add('vipa', 'vipa addrBatchSync', 'tinybench');
        add('floor1', 'C floor, 1 request per sendto', 'C floor');
        addRatio(`${f.key}.batch/floor`, `${f.name}: batch of ${count} / floor (128 per sendto)`, id('vipa'), id('floor'), 2);
        addRatio(`${f.key}.batch/floor1`, `${f.name}: batch of ${count} / floor (1 per sendto)`, id('vipa'), id('floor1'));

        if (f.key === 'v6' && sizes.unsettledRounds > 0) {
          // Shows what the settle period avoids: the same floor, rounds back to back.
          const r = floor.bulk({ ifindex: index, list: listFile, flags: IFA_F_NODAD, chunk: 128, rounds: sizes.unsettledRounds, warmup: 0, settleMs: 0 });
          sleepMs(settleMs);
          checkBaseline('after the unsettled IPv6 rounds');
          rows.push({
            id: 'v6.batch.floor.unsettled', group, label: 'C floor, 128 per sendto, rounds back to back with no settle (not a comparison row)',
            source: 'C floor', unit, items: count, stats: summarize(r.roundsInOrder), blockMedians: r.roundsInOrder,
            note: 'first round starts settled; later ones start right after the previous delete',
          });
        }
      }

      notes.push(
        `Pairs: ${sizes.blocks} blocks × ${sizes.pairsPerBlock} pairs for every contender (ip: ${sizes.blocks} × ${sizes.ipPerBlock}), ` +
          `the contenders' order rotated each block, ${sizes.warmupPairs} untimed warmup pairs (ip: ${sizes.ipWarmup}) before each block. ` +
          'Medians and means are over all pooled samples of a contender.',
        'tinybench times each task call with process.hrtime (one sample = one add+delete pair, or one batch); the C floor times each pair ' +
          'with clock_gettime(CLOCK_MONOTONIC) around it (the primary floor row: same method as tinybench) and, in a second pass of as ' +
          'many pairs, batches of 100 pairs with no clock inside (per-pair figure = batch time / 100; its mean = total time / N). ' +
          'Ratios are against the per-pair-timed floor.',
        'The C floor uses the syscalls of vipa\'s synchronous path (one sendto per request or chunk, one recv per ack; vipa\'s async path ' +
          'makes the same calls, the ack being queued before sendto returns), a socket set up as vipa\'s (NETLINK_EXT_ACK, NETLINK_CAP_ACK, ' +
          '1 MiB buffers), and a blocking recv where vipa uses MSG_DONTWAIT (one syscall either way).',
        'Statistics: "Mean ≤ p99" is the mean of the samples at or below the 99th percentile (drops GC pauses and preemptions by other ' +
          'processes). Address changes queue kernel work (IPv4 add: the address-lifetime check; IPv6 add: DAD work even with nodad; ' +
          'deletes: cleanup work) whose kworker often preempts the caller: see the involuntary context switches per pair. Whether it ' +
          'does makes an IPv4 pair about twice as slow, and the share of such pairs can sit near one half, so IPv4 pair distributions are ' +
          'bimodal and their medians can land in either mode (compare the block medians). The mean ≤ p99 ratio is the stable comparison ' +
          'for those; "paired" is the median over blocks of the per-block mean ≤ p99 ratio. Target verdicts use the median ratio as specified.',
        '"Thread CPU per sample" is the measuring thread\'s on-CPU time (C: CLOCK_THREAD_CPUTIME_ID; Node: /proc/thread-self/schedstat) ' +
          'divided by the pairs it ran, warmup included (tinybench\'s own per-iteration work included for the JS rows): it leaves out the ' +
          'time the thread sat preempted by a kworker, so it is unimodal, and its ratio isolates what the caller itself spends.',
        `Batches: ${sizes.batchRounds} rounds; in each, every contender adds the same list once (timed) and deletes it (untimed), ` +
          'the order rotated each round; the interface holds only its link-local address at the start of every timed add (checked). ' +
          'The first round of each contender is preceded by one untimed warmup round.',
        'The IPv4 batch is 500 addresses, not 1000: the two IPv4 documentation /24s allowed here hold 512.',
        'IPv6 batch rounds are settled: after each delete the bench waits 1.5 × mldv2_unsolicited_report_interval + 250 ms, because ' +
          'pending MLD state-change records of the just-deleted addresses make the next 1000 adds several times slower (see the ' +
          '"no settle" row in full runs).',
      );

      const allBusy = Object.values(load).flat();
      const cores = cpus().length;
      const meanBusy = allBusy.reduce((a, b) => a + b, 0) / allBusy.length;
      const idleAfter = measureIdleLoad();
      notes.push(
        `Machine load: with the bench idle, all ${cores} CPUs were ${(idleBefore * 100).toFixed(0)}% busy in the second before the suite and ` +
          `${(idleAfter * 100).toFixed(0)}% in the second after it (other processes); during the measurement blocks ${(meanBusy * 100).toFixed(0)}% on ` +
          `average (${(Math.min(...allBusy) * 100).toFixed(0)}–${(Math.max(...allBusy) * 100).toFixed(0)}%), of which the bench's own thread is ` +
          `at most ${(100 / cores).toFixed(0)}% and the kernel work it queues runs partly on the other core.`,
      );

      return {
        name: 'netlink',
        title: this.title,
        config: {
          mode: ctx.quick ? 'quick' : 'full',
          sizes,
          interface: `${LINK} (veth, peer ${PEER} up), ifindex ${index}, in a private network namespace`,
          pairAddresses: FAMILIES.map((f) => `${f.pairAddress}/${f.prefix}${f.nodad ? ' nodad' : ''}`),
          batchAddresses: FAMILIES.map((f) => `${f.batch.length} × ${f.name}: ${f.batch[0]} … ${f.batch[f.batch.length - 1]}`),
          floorCompiler: `${floor.compiler}, -O2`,
          npmNetlink: npm?.version ?? 'not loaded',
          tinybench: packageVersion(ctx.root, 'tinybench'),
          timestampProvider: 'hrtimeNow',
          cpuBusyIdleBeforeAfter: [idleBefore, idleAfter].map((x) => Math.round(x * 1000) / 1000),
          cpuBusyPerBlock: Object.fromEntries(Object.entries(load).map(([k, v]) => [k, v.map((x) => Math.round(x * 1000) / 1000)])),
        },
        rows,
        ratios,
        notes,
      };
    } finally {
      try {
        closeNpm?.();
      } catch {
        // already closed
      }
      nl.close();
      deleteLink(LINK);
    }
  },
};

/** Waits (bounded) until the interface's link-local address has left DAD, so the address set is stable. */
function waitForSettledLink(nl: VipaNetlink, index: number): void {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const tentative = nl.addrListSync({ link: index }).some((a) => a.flags.tentative);
    if (!tentative && nl.addrListSync({ link: index, family: 6 }).length > 0) return;
    sleepMs(100);
  }
  throw new Error(`${LINK}: link-local address still tentative after 5 s`);
}

/**
 * An add+delete pair straight through vipa's native socket: the requests
 * encoded once by vipa's own codec, only the sequence number patched, one
 * send and one recv per request, the ack's error checked. What is left of
 * vipa's cost once the TypeScript layer (validation, encoding, exchange
 * bookkeeping, results) is gone. Reaches into Netlink's private fields;
 * returns undefined when they are not there.
 */
function nativeOnlyPair(nl: VipaNetlink, add: Buffer, del: Buffer): (() => void) | undefined {
  const conn = (nl as unknown as { conn?: { socket?: { send?: unknown; recv?: unknown }; receiveBuffer?: unknown } }).conn;
  const socket = conn?.socket as { send(b: Buffer, o: number, l: number): number; recv(b: Buffer, t: number): number } | undefined;
  const rx = conn?.receiveBuffer;
  if (!socket || typeof socket.send !== 'function' || typeof socket.recv !== 'function' || !Buffer.isBuffer(rx)) return undefined;
  let seq = 0x7f000000; // far from the handle's own sequence numbers (Date-based)
  const one = (req: Buffer) => {
    req.writeUInt32LE(seq++, 8);
    socket.send(req, 0, req.length);
    const n = socket.recv(rx, 1000);
    // struct nlmsghdr (16 bytes) then nlmsgerr.error.
    if (n < 20 || rx.readUInt16LE(4) !== 2 /* NLMSG_ERROR */ || rx.readInt32LE(16) !== 0) {
      throw new Error(`native-only pair: unexpected reply (length ${n}, error ${n >= 20 ? rx.readInt32LE(16) : 'none'})`);
    }
  };
  return () => {
    one(add);
    one(del);
  };
}

/**
 * A Netlink handle whose socket is a stub: send() records the request's
 * sequence number, recv() returns a real success ack (captured from the
 * kernel through `nl`'s socket by adding and deleting the address once)
 * carrying that sequence number. Runs vipa's
 * whole TypeScript path with no syscall, to measure what it costs by itself.
 * Reaches into private fields; returns undefined when they are not there.
 */
function stubbedNetlink(vipa: Vipa, nl: VipaNetlink, add: Buffer, del: Buffer): VipaNetlink | undefined {
  type Conn = { socket?: { send(b: Buffer, o: number, l: number): number; recv(b: Buffer, t: number): number; close(): void } };
  const real = (nl as unknown as { conn?: Conn }).conn?.socket;
  if (!real || typeof real.send !== 'function' || typeof real.recv !== 'function') return undefined;
  // Capture one real ack: add the address through the real socket, then delete it the same way.
  const rx = Buffer.alloc(65536);
  const exchange = (req: Buffer) => {
    real.send(req, 0, req.length);
    const n = real.recv(rx, 1000);
    if (n < 20 || rx.readInt32LE(16) !== 0) throw new Error('stubbed socket: could not capture an ack');
    return Buffer.from(rx.subarray(0, n));
  };
  add.writeUInt32LE(0x7e000000, 8);
  del.writeUInt32LE(0x7e000001, 8);
  const ack = exchange(add);
  exchange(del);

  const stub = new vipa.Netlink();
  const conn = (stub as unknown as { conn?: { socket: unknown } }).conn;
  if (!conn?.socket) {
    stub.close();
    return undefined;
  }
  (conn.socket as { close(): void }).close();
  let seq = 0;
  const recv = (b: Buffer): number => {
    ack.copy(b);
    b.writeUInt32LE(seq, 8); // nlmsg_seq of the ack
    b.writeUInt32LE(seq, 28); // and of the echoed request header
    return ack.length;
  };
  conn.socket = {
    fd: -1,
    portId: 0,
    send(b: Buffer, o = 0, l = b.length - o) {
      seq = b.readUInt32LE(o + 8);
      return l;
    },
    recv,
    recvMany: recv, // one request in flight: its ack is all there is
    startReading() {
      throw new Error('stubbed socket: acks are always ready');
    },
    stopReading() {},
    close() {},
    setBufferSizes() {
      return 0;
    },
  };
  return stub;
}
