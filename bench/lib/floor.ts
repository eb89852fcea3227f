/**
 * The kernel floor: bench/floor/netlink_floor.c, compiled with cc -O2 into
 * bench/.build/ and run as a child process in the bench's namespace; and the
 * other C programs of the bench (CProgram, benchInstrument).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface FloorStats {
  samples: number;
  median: number;
  mean: number;
  p75: number;
  p99: number;
  min: number;
  max: number;
}

export interface FloorPair {
  mode: 'pair';
  pairs: number;
  warmup: number;
  batch: number;
  perPair: FloorStats;
  perPairInBatches: FloorStats | null;
  totalOverN: number;
  involuntarySwitchesPerPair: number;
  threadCpuNsPerPair: number;
  perPairSamples?: number[];
  perPairInBatchesSamples?: number[];
}

export interface FloorBulk {
  mode: 'bulk';
  count: number;
  chunk: number;
  rounds: number;
  settleMs: number;
  roundsInOrder: number[];
  perRound: FloorStats;
}

/**
 * A C program of the bench, `<sourceDir>/<name>.c` (default bench/floor/, the
 * floors; bench/instruments/ for the failover suite's prober and responder),
 * compiled with cc -O2 into the build directory (always: it takes a fraction
 * of a second and can never be stale), plus `flags` (e.g. -pthread).
 */
export class CProgram {
  readonly path: string;
  readonly compiler: string;
  private readonly name: string;

  constructor(root: string, buildDir: string, name: string, options: { sourceDir?: string; flags?: string[] } = {}) {
    mkdirSync(buildDir, { recursive: true });
    this.name = name;
    this.path = join(buildDir, name);
    const source = join(root, options.sourceDir ?? 'bench/floor', `${name}.c`);
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', ...(options.flags ?? []), '-o', this.path, source], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
    this.compiler = execFileSync('cc', ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim();
  }

  /** Runs the program with `args` (in network namespace `netns` when given, through nsenter); its stdout, or an error with its stderr. */
  protected exec(args: string[], timeoutMs: number, netns?: string): string {
    const [file, argv] = netns === undefined ? [this.path, args] : ['nsenter', [`--net=${netns}`, '--', this.path, ...args]];
    try {
      return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 256 << 20 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`${this.name} ${args.slice(0, 3).join(' ')}: ${err.stderr?.trim() || err.message}`);
    }
  }
}

/** The takeover write's form of an add (VipaNode.writeAddresses): 'replace', both lifetimes `lease` s, IFA_PROTO `proto`. */
export interface TakeoverForm {
  lease: number;
  proto: number;
}

function takeoverArgs(t: TakeoverForm | undefined): string[] {
  return t ? ['--lease', String(t.lease), '--proto', String(t.proto)] : [];
}

/** The netlink floor: bench/floor/netlink_floor.c. */
export class Floor extends CProgram {
  constructor(root: string, buildDir: string) {
    super(root, buildDir, 'netlink_floor');
  }

  /**
   * The add and delete requests the floor sends, as hex with sequence number
   * 0; with `takeover`, the adds are the takeover write's 'replace' requests
   * (both lifetimes `lease` seconds, IFA_PROTO `proto`).
   */
  dump(ifindex: number, address: string, flags: number, takeover?: TakeoverForm): { add: string; del: string } {
    const out = this.exec(['dump', '--ifindex', String(ifindex), '--address', address, '--flags', String(flags), ...takeoverArgs(takeover)], 10_000);
    const lines = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
    return { add: lines.add!, del: lines.del! };
  }

  pair(o: { ifindex: number; address: string; flags: number; pairs: number; warmup: number; batch: number }): FloorPair {
    const args = ['pair', '--ifindex', String(o.ifindex), '--address', o.address, '--flags', String(o.flags), '--pairs', String(o.pairs),
      '--warmup', String(o.warmup), '--batch', String(o.batch), '--samples'];
    // Bound: a pair takes ~10-30 µs here; allow 1 ms a pair (both passes) plus start-up.
    return JSON.parse(this.exec(args, 10_000 + (o.pairs + o.warmup) * 2)) as FloorPair;
  }

  /**
   * Bulk rounds (see the program's comment), in network namespace `netns`
   * (a path; default the caller's). `pauseMs`: sleep before each
   * timed round; `takeover`: send the takeover write's requests instead of
   * plain adds.
   */
  bulk(o: { netns?: string; ifindex: number; list: string; flags: number; chunk: number; rounds: number; warmup: number; settleMs: number; pauseMs?: number; takeover?: TakeoverForm }): FloorBulk {
    const args = ['bulk', '--ifindex', String(o.ifindex), '--list', o.list, '--flags', String(o.flags), '--chunk', String(o.chunk),
      '--rounds', String(o.rounds), '--warmup', String(o.warmup), '--settle-ms', String(o.settleMs), '--pause-ms', String(o.pauseMs ?? 0), ...takeoverArgs(o.takeover)];
    // Bound: 1000 IPv6 adds take ~0.3 s settled, ~1.3 s unsettled; allow 10 s a round plus the settle and pause times.
    return JSON.parse(this.exec(args, (o.rounds + o.warmup) * (10_000 + o.settleMs + (o.pauseMs ?? 0)) + 10_000, o.netns)) as FloorBulk;
  }
}

const instruments = new Map<string, string>();

/**
 * The failover suite's measuring instruments, bench/instruments/<name>.c
 * (the client prober and the echo responder): compiled once per process and
 * build directory, so that LANs created concurrently never run a binary that
 * is being rewritten. Returns the executable's path.
 */
export function benchInstrument(root: string, buildDir: string, name: 'prober' | 'responder'): string {
  const key = join(buildDir, name);
  let path = instruments.get(key);
  if (path === undefined) {
    path = new CProgram(root, buildDir, name, { sourceDir: 'bench/instruments', flags: ['-pthread'] }).path;
    instruments.set(key, path);
  }
  return path;
}
