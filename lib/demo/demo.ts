/**
 * `vipa demo` (`npm run demo`): a live failover on a small LAN built from
 * network namespaces on this machine: a bridge, three vipa nodes (a is home,
 * b and c back it up by rank) as separate daemon processes, and a client
 * probing the virtual address every millisecond. It kills the holder, stops
 * a node gracefully and brings the home node back, and prints what the
 * client saw for each event: the outage and who answered. Everything it
 * created is removed at the end, also on Ctrl-C.
 *
 * Needs root or an unprivileged user namespace: when not root it re-runs
 * itself inside `unshare -rn`, and says so when that is impossible. It never
 * touches the host's own interfaces.
 */
import { spawnSync } from 'node:child_process';
import { summarize, type EventSummary, type TimelineEvent } from './analysis.js';
import { startCluster, type TestCluster } from './cluster.js';
import { monotonicMs } from './probe-wire.js';

/** Where the demo writes. */
export interface DemoIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const SETTLE_MS = 1200;

/**
 * Returns undefined when this process can create network namespaces;
 * otherwise re-runs the demo inside `unshare -rn` and returns its status, or
 * explains why it cannot run.
 */
function ensureNamespaces(io: DemoIo): number | undefined {
  const probe = spawnSync('unshare', ['--net', '--', 'true'], { encoding: 'utf8' });
  if (probe.status === 0) return undefined;
  const userns = process.env.VIPA_IN_USERNS ? undefined : spawnSync('unshare', ['-rn', 'true']);
  if (userns?.status === 0) {
    const again = spawnSync('unshare', ['-rn', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, VIPA_IN_USERNS: '1' } });
    return again.status ?? 1;
  }
  io.err(
    `vipa demo: cannot create network namespaces (${probe.stderr.trim() || probe.error?.message || 'unshare failed'}).\n` +
      'Run it as root, or where unprivileged user namespaces are allowed (`unshare -rn true` must work).\n',
  );
  return 1;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** Runs the demo; resolves with the exit status. */
export async function runDemo(io: DemoIo): Promise<number> {
  const delegated = ensureNamespaces(io);
  if (delegated !== undefined) return delegated;

  const tty = process.stdout.isTTY === true;
  const t0 = monotonicMs();
  const stamp = (): string => `[${((monotonicMs() - t0) / 1000).toFixed(2).padStart(5)} s]`;
  const line = (text: string): void => io.out(`${tty ? '\r\x1b[K' : ''}${stamp()} ${text}\n`);
  let cluster: TestCluster | undefined;
  let interrupted = false;
  let progress: NodeJS.Timeout | undefined;
  const onSigint = (): void => {
    interrupted = true;
    line('interrupted: cleaning up');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const check = (): void => {
    if (interrupted) throw new Error('interrupted');
  };

  try {
    io.out('vipa demo: three nodes and a client on a bridge, in network namespaces on this machine\n');
    io.out('  node a is home for 198.51.100.100; b (rank 200) and c (rank 100) back it up; heartbeats every 10 ms\n');
    cluster = await startCluster({ family: 4, heartbeatIntervalMs: 10 });
    const c = cluster;
    await c.waitForHolder('a');
    check();
    const { prober, output } = await c.startProber(1);
    line(`cluster up: a holds ${c.vip}; the client probes it every millisecond`);

    const events: TimelineEvent[] = [];
    const holderNow = (): string => output.record.replies.at(-1)?.responder ?? '-';
    if (tty) {
      progress = setInterval(() => {
        io.out(`\r\x1b[K${stamp()} replies ${output.record.replies.length}, lost ${output.record.lost.length}, answered by ${holderNow()}`);
      }, 100);
    }
    const event = async (name: string, act: () => void | Promise<void>, expectHolder: string): Promise<void> => {
      check();
      events.push({ name, at: monotonicMs() });
      line(name);
      await act();
      await c.waitForHolder(expectHolder, 10_000);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      check();
      // The prober writes its records in 50 ms batches: end the window before the unflushed tail.
      const [summary] = summarize([events.at(-1)!], output.record, { until: monotonicMs() - 200 });
      line(`  the client saw ${summary!.outageMs.toFixed(1)} ms without answers; now answered by ${holderNow()}`);
    };

    await new Promise((r) => setTimeout(r, SETTLE_MS));
    await event('holder a dies: daemon SIGKILL and its link down', () => {
      c.signal('a', 'SIGKILL');
      c.lan.host('a').ip('link', 'set', 'eth0', 'down');
    }, 'b');
    await event('b stops gracefully (SIGTERM): it hands over and leaves', () => c.signal('b', 'SIGTERM'), 'c');
    await event('home node a returns: link up, daemon restarted', async () => {
      c.lan.host('a').ip('link', 'set', 'eth0', 'up');
      await c.daemons.get('a')!.exit; // the killed daemon is gone before its successor starts
      await c.start('a');
    }, 'a');
    await event('operator: vipa move 198.51.100.100 c', async () => {
      const { controlRequest } = await import('../cli/control.js');
      const reply = await controlRequest(c.daemons.get('a')!.socket, { cmd: 'move', target: c.vip, node: 'c' });
      if (!reply.ok) throw new Error(reply.error);
    }, 'c');

    clearInterval(progress);
    prober.kill('SIGTERM');
    await output.ended;
    const summaries: EventSummary[] = summarize(events, output.record);
    io.out('\nwhat the client saw (UDP probe every 1 ms; outage = longest time without an answer)\n');
    io.out(`  ${pad('event', 56)} ${pad('outage', 10)} answered by\n`);
    for (const s of summaries) {
      io.out(`  ${pad(s.name, 56)} ${pad(`${s.outageMs.toFixed(1)} ms`, 10)} ${s.holderBefore ?? '-'} → ${s.holderAfter ?? '-'}\n`);
    }
    io.out(`  ${output.record.replies.length} replies, ${output.record.lost.length} probes lost\n`);
    io.out('\nEvery namespace and process of the demo is being removed.\n');
    return 0;
  } catch (e) {
    if (!interrupted) io.err(`vipa demo: ${(e as Error).message}\n`);
    return interrupted ? 130 : 1;
  } finally {
    clearInterval(progress);
    await cluster?.destroy();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
