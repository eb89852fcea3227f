/**
 * The last line of cleanup for the multi-host suites: a small watcher process
 * that kills everything left in the bench's host namespaces once the bench
 * process is gone, however it went.
 *
 * Why it is needed: scripts/run-bench.mjs ends the bench with SIGKILL (on its
 * timeout, or when it is itself interrupted), so the bench cannot clean up
 * after itself then. Its namespaces are held by keeper processes that exit
 * with it (lib/demo/lan.ts), but a namespace lives as long as any process in
 * it: a vipa daemon or keepalived started there (stdin /dev/null, parent
 * gone) would keep running, and keep its namespace, forever.
 *
 * How: the bench starts the watcher in its own process group (a terminal's
 * Ctrl-C, sent to the foreground group, does not reach it) with a pipe on
 * its stdin and writes the inode of every network namespace it creates to
 * that pipe. When the pipe closes, i.e. when the bench exits for any reason,
 * the watcher SIGKILLs every process whose network namespace is one of
 * those, waits until they are gone (bounded), removes the temp dirs it was
 * given (daemon configs, keys, sockets), and exits. After a clean run it
 * finds nothing to do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';

/**
 * The watcher, run with `node -e`: plain JavaScript, so it starts in tens of
 * milliseconds without a TypeScript loader. It ignores the signals a
 * terminal sends and polls /proc a bounded number of times.
 */
const WATCHER = String.raw`
const fs = require('node:fs');
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});
const inodes = new Set();
const dirs = new Set();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buffered += d;
  let i;
  while ((i = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, i).trim();
    buffered = buffered.slice(i + 1);
    if (/^net:\[\d+\]$/.test(line)) inodes.add(line);
    else if (line.startsWith('dir:')) dirs.add(line.slice(4));
  }
});
function victims() {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (inodes.has(fs.readlinkSync('/proc/' + name + '/ns/net'))) out.push(Number(name));
    } catch {}
  }
  return out;
}
process.stdin.on('close', () => {
  // Bounded: 50 rounds of 100 ms; a process that survives SIGKILL that long is stuck in the kernel.
  let round = 0;
  const sweep = () => {
    const pids = victims();
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
    if (pids.length === 0 || ++round >= 50) {
      for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} }
      process.exit(0);
    }
    setTimeout(sweep, 100);
  };
  sweep();
});
`;

/** The bench's side of the watcher. */
export class Sentinel {
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  /** Starts the watcher. */
  static start(): Sentinel {
    const child = spawn(process.execPath, ['-e', WATCHER], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    // The watcher must not keep the bench alive, nor its pipe keep the event loop running.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return new Sentinel(child);
  }

  /** Registers the network namespace of process `pid` (a namespace keeper). */
  watchNetnsOf(pid: number): void {
    this.child.stdin!.write(`${readlinkSync(`/proc/${pid}/ns/net`)}\n`);
  }

  /** Registers a temp dir (configs, keys, sockets) to remove if the bench dies before it does. */
  watchDir(path: string): void {
    if (!path.startsWith(`${tmpdir()}/`)) throw new Error(`sentinel: refusing to watch ${path}, not under ${tmpdir()}`);
    this.child.stdin!.write(`dir:${path}\n`);
  }

  /** Ends the watch: the watcher sweeps once (finding nothing after a clean teardown) and exits. */
  close(): void {
    this.child.stdin!.end();
  }
}
