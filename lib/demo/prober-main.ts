#!/usr/bin/env node
/**
 * CLI of the client prober, run in the client's namespace by a test, the
 * demo or the bench:
 *
 *   node dist/demo/prober-main.js --target VIP --port 7777 [--interval 1]
 *     [--interface eth0] [--neighbor-interval 1] [--neighbor-identity phantom|own]
 *     [--duration MS] [--source ADDR] [--loss-timeout 1000] [--flush-ms 50]
 *
 * Writes the JSON lines of prober-lines.ts on stdout, batched every
 * --flush-ms (one write per batch; a follower sees records at most that
 * late). Ends after --duration, on SIGTERM/SIGINT, on stdin EOF when stdin
 * is a pipe, or when its parent dies (child-lifecycle.ts); then it waits
 * briefly for replies in flight, writes the final stats and an end line,
 * and exits 0. Exit 1: bad arguments; 2: cannot start (an error line says why).
 */
import { parseArgs } from 'node:util';
import { stopWhenParentGoes, type StopReason } from './child-lifecycle.js';
import { Prober, type ProberOptions } from './prober.js';
import { formatProberLine, roundUs, type ProberLine } from './prober-lines.js';

const USAGE =
  'usage: prober-main --target VIP --port PORT [--interval MS] [--interface IF] [--neighbor-interval MS] ' +
  '[--neighbor-identity phantom|own] [--duration MS] [--source ADDR] [--loss-timeout MS] [--flush-ms MS]';
const STATS_EVERY_MS = 1000;

/** Batches lines for stdout. */
class LineBatch {
  private lines: string[] = [];

  push(line: ProberLine): void {
    this.lines.push(formatProberLine(line));
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.join('');
    this.lines = [];
    process.stdout.write(text);
  }
}

function parseOptions(): ProberOptions & { flushMs: number } {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      port: { type: 'string' },
      interval: { type: 'string' },
      interface: { type: 'string' },
      'neighbor-interval': { type: 'string' },
      'neighbor-identity': { type: 'string' },
      duration: { type: 'string' },
      source: { type: 'string' },
      'loss-timeout': { type: 'string' },
      'flush-ms': { type: 'string' },
    },
    strict: true,
  });
  const number = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) throw new RangeError(`--${name} must be a number, got ${text}`);
    return n;
  };
  if (!values.target || !values.port) throw new RangeError('--target and --port are required');
  const flushMs = number('flush-ms', values['flush-ms']) ?? 50;
  if (!(flushMs >= 1 && flushMs <= 10_000)) throw new RangeError(`--flush-ms must be 1..10000, got ${flushMs}`);
  const optional = {
    intervalMs: number('interval', values.interval),
    interface: values.interface,
    neighborProbeIntervalMs: number('neighbor-interval', values['neighbor-interval']),
    neighborIdentity: values['neighbor-identity'] as ProberOptions['neighborIdentity'],
    durationMs: number('duration', values.duration),
    source: values.source,
    lossTimeoutMs: number('loss-timeout', values['loss-timeout']),
  };
  // Leave out what was not given, so the prober's defaults apply.
  const given = Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Partial<ProberOptions>;
  return { target: values.target, port: number('port', values.port)!, ...given, flushMs, retain: false };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions();
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 1;
  }
  const batch = new LineBatch();
  options.onReply = (r) => batch.push({ type: 'reply', seq: r.seq, sentAt: roundUs(r.sentAt), rttMs: roundUs(r.rttMs), responder: r.responder });
  options.onNeighbor = (n) => batch.push({ type: 'neighbor', at: roundUs(n.at), mac: n.mac, kind: n.kind });
  options.onLost = (seq, sentAt) => batch.push({ type: 'lost', seq, sentAt: roundUs(sentAt) });
  options.onStall = (s) => batch.push({ type: 'stall', from: roundUs(s.from), to: roundUs(s.to) });

  let prober: Prober;
  try {
    prober = await Prober.start(options);
  } catch (e) {
    batch.push({ type: 'error', message: (e as Error).message });
    batch.flush();
    return 2;
  }
  const { info } = prober;
  batch.push({ type: 'ready', ...info, startedAt: roundUs(info.startedAt) });
  batch.flush();

  const pushStats = (): void => batch.push({ type: 'stats', ...prober.stats });
  let lastStats = Date.now();
  const flusher = setInterval(() => {
    if (Date.now() - lastStats >= STATS_EVERY_MS) {
      lastStats = Date.now();
      pushStats();
    }
    batch.flush();
  }, options.flushMs);

  let reason = 'done' as StopReason;
  const removeHooks = stopWhenParentGoes((why) => {
    reason = why;
    void prober.stop();
  });
  await prober.done;
  removeHooks();
  clearInterval(flusher);
  pushStats();
  batch.push({ type: 'end', reason });
  if (reason !== 'stdout-closed') batch.flush();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`prober: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
