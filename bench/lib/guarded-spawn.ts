/**
 * Starting the bench's long-running helper processes inside a host's
 * namespace so that they can never outlive the bench.
 */
import type { ChildProcess } from 'node:child_process';
import type { TestHost } from '../../lib/demo/lan.js';

/**
 * Spawns `command` in `host`'s namespace through `setpriv --pdeathsig KILL`:
 * nsenter and setpriv both exec, so the command's parent is the bench, and
 * the kernel kills it the moment the bench dies (PR_SET_PDEATHSIG survives
 * execve for non-setuid programs, prctl(2)). Processes it forks itself are
 * left to the Sentinel (sentinel.ts).
 */
export function spawnGuarded(host: TestHost, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; realtime?: boolean } = {}): ChildProcess {
  // realtime: SCHED_FIFO priority 1 (chrt(1)), for the measuring instruments only (see ClientProber).
  const rt = options.realtime && process.env.VIPA_BENCH_PROBE_RT !== '0' ? ['chrt', '-f', '1'] : [];
  return host.spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...rt, command, ...args], options.env ? { env: options.env } : {});
}

/** Resolves once `child` printed `marker` on stdout; rejects when it exits first or after `ms`. */
export async function waitForOutput(child: ChildProcess, marker: string, ms: number, what: string): Promise<void> {
  let seen = '';
  let stderr = '';
  const onStderr = (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000));
  child.stderr?.on('data', onStderr);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(() => reject(new Error(`${what}: no "${marker}" within ${ms} ms; stderr: ${stderr.trim()}`))), ms);
      const onData = (d: Buffer) => {
        seen = (seen + d.toString()).slice(-4096);
        if (seen.includes(marker)) done(resolve);
      };
      const onExit = (code: number | null, signal: string | null) =>
        done(() => reject(new Error(`${what} exited (${code ?? signal}) before "${marker}"; stderr: ${stderr.trim()}`)));
      const done = (f: () => void) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        f();
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
    });
  } finally {
    child.stderr?.off('data', onStderr);
  }
}

/** Waits for `child` to exit, at most `ms`; true when it did. */
export async function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}
