/**
 * How the demo's helper processes (echo responder, prober) end: they run as
 * children of a test, the demo or the bench, often inside a throwaway
 * namespace, and must never outlive that parent, or they would keep the
 * namespace alive and their port bound.
 *
 * A child ends on the first of:
 * - SIGTERM, SIGINT or SIGHUP;
 * - EOF on stdin, when stdin is a pipe or a socket (the parent's end closes
 *   when the parent dies, however it dies). Not when stdin is /dev/null or a
 *   terminal: a child spawned with stdin 'ignore' (as TestHost.spawn does)
 *   would otherwise exit at once;
 * - its parent process changing (checked every 250 ms): the kernel reparents
 *   an orphan to init or a subreaper, which covers a parent that was
 *   SIGKILLed while stdin was not a pipe. `nsenter --net` execs the command
 *   without forking, so the parent is the process that ran nsenter.
 */
import { fstatSync } from 'node:fs';

/** Why a child is stopping. */
export type StopReason = 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'stdin-eof' | 'parent-gone' | 'stdout-closed' | 'done';

/** Polling period of the parent check: a bound on how long an orphan lingers. */
const PARENT_CHECK_MS = 250;

/**
 * Calls `stop(reason)` once, on the first of the conditions above, and
 * returns a function that removes every hook (so the process can exit on
 * its own once its work is done).
 */
export function stopWhenParentGoes(stop: (reason: StopReason) => void): () => void {
  let stopped = false;
  const fire = (reason: StopReason): void => {
    if (stopped) return;
    stopped = true;
    cleanup();
    stop(reason);
  };
  const onSigterm = (): void => fire('SIGTERM');
  const onSigint = (): void => fire('SIGINT');
  const onSighup = (): void => fire('SIGHUP');
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  process.on('SIGHUP', onSighup);

  let watchingStdin = false;
  const onStdinEnd = (): void => fire('stdin-eof');
  if (stdinIsPipe()) {
    watchingStdin = true;
    process.stdin.on('end', onStdinEnd);
    process.stdin.on('close', onStdinEnd);
    process.stdin.on('error', onStdinEnd);
    process.stdin.resume(); // read (and discard) so 'end' can come
  }

  // A pipe closed by a dead parent makes writes fail with EPIPE.
  const onStdoutError = (): void => fire('stdout-closed');
  process.stdout.on('error', onStdoutError);

  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) fire('parent-gone');
  }, PARENT_CHECK_MS);
  timer.unref();

  function cleanup(): void {
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    process.off('SIGHUP', onSighup);
    process.stdout.off('error', onStdoutError);
    if (watchingStdin) {
      process.stdin.off('end', onStdinEnd);
      process.stdin.off('close', onStdinEnd);
      process.stdin.off('error', onStdinEnd);
      process.stdin.pause();
      process.stdin.destroy(); // or the paused pipe keeps the event loop alive
    }
    clearInterval(timer);
  }
  return () => {
    stopped = true;
    cleanup();
  };
}

/** Whether fd 0 is a pipe or a socket, i.e. has a writer whose death we can see as EOF. */
function stdinIsPipe(): boolean {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false; // fd 0 closed
  }
}
