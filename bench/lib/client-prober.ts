/**
 * One client prober on the client, followed from the bench: its timeline
 * accumulates in memory, the bench waits on it ("the client now gets replies
 * from b") and cuts windows out of it for lib/demo/analysis.ts. Old records
 * are dropped between trials so a long run stays small.
 *
 * The prober is bench/instruments/prober.c, the C twin of
 * lib/demo/prober-main.ts (same options and JSON lines, parsed here by
 * lib/demo/prober-lines.ts): probes on an absolute 0.5 ms schedule, replies
 * timed by the kernel's receive timestamp, which takes the prober's own
 * timing (Node's 1 ms timers, GC, event-loop receive times) out of the
 * measurement's floor (the "no fault" row).
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { summarize, type EventSummary } from '../../lib/demo/analysis.js';
import type { TestHost } from '../../lib/demo/lan.js';
import { ProberOutput, type ProberLine } from '../../lib/demo/prober-lines.js';
import { benchInstrument } from './floor.js';
import { spawnGuarded, waitForExit } from './guarded-spawn.js';

/** UDP probe interval (ms) of the bench's probers. */
export const PROBE_INTERVAL_MS = 0.5;

/**
 * ARP request / NS interval (ms) of the bench's probers: the two-MAC time is
 * resolved to it (with 1 ms, one request answered by both hosts in a 0.1 ms
 * overlap read as 1-2 ms, a whole heartbeat at 2 ms).
 */
export const NEIGHBOR_INTERVAL_MS = 0.5;

interface Waiter {
  match: (responder: string) => boolean;
  after: number;
  resolve: (at: number, responder: string) => void;
}

/** What the client saw in one trial window. */
export interface WindowSummary extends EventSummary {
  /** Probe slots the prober skipped or stalled in the window: a hole in the measurement when not 0. */
  proberStallMs: number;
}

export class ClientProber {
  readonly family: 4 | 6;
  readonly target: string;
  readonly label: string;
  private readonly child: ChildProcess;
  private readonly output: ProberOutput;
  private readonly waiters = new Set<Waiter>();
  /** The probe interval the prober reported (ms). */
  private intervalMs = PROBE_INTERVAL_MS;

  private constructor(child: ChildProcess, output: ProberOutput, target: string, label: string) {
    this.child = child;
    this.output = output;
    this.target = target;
    this.family = target.includes(':') ? 6 : 4;
    this.label = label;
    output.onLine = (line) => this.onLine(line);
  }

  /**
   * Starts a prober in `host` (the client) against `target`; resolves once its sockets are open.
   * Compiles bench/instruments/prober.c into `buildDir` (default bench/.build) the first time.
   */
  static async start(host: TestHost, root: string, target: string, port: number, label: string, buildDir = join(root, 'bench/.build')): Promise<ClientProber> {
    const prober = benchInstrument(root, buildDir, 'prober');
    const args = [
      '--target', target, '--port', String(port),
      // 0.5 ms UDP probes (a gap is resolved to half a millisecond), neighbour probes as often.
      '--interval', String(PROBE_INTERVAL_MS), '--neighbor-interval', String(NEIGHBOR_INTERVAL_MS),
      // Lines reach the bench within 10 ms: it waits on them to end a trial.
      '--flush-ms', '10',
    ];
    const child = spawnGuarded(host, prober, args, { realtime: true });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const output = ProberOutput.follow(child.stdout!);
    const client = new ClientProber(child, output, target, label);
    let timer: NodeJS.Timeout | undefined;
    try {
      const ready = await Promise.race([
        output.ready,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${label}: not ready within 10 s; stderr: ${stderr.trim()}`)), 10_000))),
      ]);
      client.intervalMs = ready.intervalMs;
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  private onLine(line: ProberLine): void {
    if (line.type !== 'reply' || this.waiters.size === 0) return;
    const at = line.sentAt + line.rttMs;
    for (const w of this.waiters) {
      if (w.match(line.responder) && at > w.after) {
        this.waiters.delete(w);
        w.resolve(at, line.responder);
      }
    }
  }

  /**
   * Resolves with the first reply from a responder that `match`es and that
   * arrived after `after` (already received ones count); rejects after `timeoutMs`.
   */
  waitForResponder(match: (responder: string) => boolean, after: number, timeoutMs: number): Promise<{ at: number; responder: string }> {
    for (const r of this.output.record.replies) {
      const at = r.sentAt + r.rttMs;
      if (match(r.responder) && at > after) return Promise.resolve({ at, responder: r.responder });
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        after,
        resolve: (at, responder) => {
          clearTimeout(timer);
          resolve({ at, responder });
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const last = this.output.record.replies.at(-1);
        reject(new Error(`${this.label}: no reply from the expected host within ${timeoutMs} ms (last reply from ${last?.responder ?? 'nobody'})`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * Resolves once the bench has read a reply that arrived at or after `t`,
   * or after `ms` (the service may be down). The prober writes its lines in
   * batches (--flush-ms 10) and they cross a pipe: a window analysed the
   * moment it ends would miss its last ~10 ms of replies and see a false gap
   * at its end.
   */
  async caughtUp(t: number, ms = 300): Promise<void> {
    try {
      await this.waitForResponder(() => true, t, ms);
    } catch {
      // nothing arrived after t within ms: the gap at the window's end is real
    }
  }

  /** Whether the prober process still runs. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The client's view of [at, until]: outage (from the last reply before `at`), two-MAC time, holders before and after. */
  window(name: string, at: number, until: number): WindowSummary {
    const record = this.output.record;
    const [summary] = summarize([{ name, at }], record, { intervalMs: this.intervalMs, until });
    let proberStallMs = 0;
    for (const s of record.stalls) proberStallMs += Math.max(0, Math.min(s.to, until) - Math.max(s.from, at));
    return { ...summary!, proberStallMs };
  }

  /** Drops records older than `before` (ms): what the next trial will not look at. */
  trim(before: number): void {
    const { replies, neighbors, lost, stalls } = this.output.record;
    const cut = <T>(list: T[], time: (x: T) => number) => {
      let i = 0;
      while (i < list.length && time(list[i]!) < before) i++;
      list.splice(0, i);
    };
    cut(replies, (r) => r.sentAt + r.rttMs);
    cut(neighbors, (n) => n.at);
    cut(lost, (l) => l.sentAt);
    cut(stalls, (s) => s.to);
  }

  /** Counters from the prober's last stats line. */
  get stats(): Record<string, number | string> | undefined {
    return this.output.stats;
  }

  /** Stops the prober (SIGTERM, then SIGKILL after 2 s). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    if (!(await waitForExit(this.child, 2000))) this.child.kill('SIGKILL');
  }
}
