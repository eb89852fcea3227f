/**
 * Real-time scheduling for the few hundred microseconds of a takeover that
 * must not be preempted (sched(7)), best effort like the heartbeat thread
 * and the reaper (native/heartbeat.cc, native/reaper.cc).
 */
import { native } from '../native.js';

const SCHED_OTHER = 0;
const SCHED_FIFO = 1;
const SCHED_BATCH = 3;
const SCHED_RESET_ON_FORK = 0x40000000;

/**
 * Puts the calling thread under SCHED_FIFO priority 1 when it runs under a
 * normal policy (SCHED_OTHER or SCHED_BATCH); best effort (without
 * CAP_SYS_NICE or RLIMIT_RTPRIO nothing changes). Threads and processes
 * started meanwhile do not inherit the priority (SCHED_RESET_ON_FORK).
 * Returns the function that restores the previous policy, or undefined
 * when nothing was changed (already real-time or idle, or not allowed).
 */
export function raiseRealtime(): (() => void) | undefined {
  const binding = native();
  const [policy, priority] = binding.getScheduler();
  const base = policy & ~SCHED_RESET_ON_FORK;
  if (base !== SCHED_OTHER && base !== SCHED_BATCH) return undefined;
  if (!binding.setScheduler(SCHED_FIFO | SCHED_RESET_ON_FORK, 1)) return undefined;
  return () => void binding.setScheduler(policy, priority);
}

/**
 * Runs `work` raised as {@link raiseRealtime} does, then restores the
 * policy (also when it throws); returns what `work` returns.
 *
 * For a takeover's address write and first frames (0.1–0.3 ms): preempted
 * in between by another process, the new holder answered for the address
 * for up to 3 ms before announcing it while the old holder's reaper, which
 * deletes on the announcement, still answered too (two MACs after a process
 * death at 2 ms heartbeats). The reaper and the heartbeat thread run at the
 * same priority (1), so they do not preempt it either.
 */
export function withRealtime<T>(work: () => T): T {
  const restore = raiseRealtime();
  try {
    return work();
  } finally {
    restore?.();
  }
}
