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
 * Most IPv6 addresses a takeover writes at real-time priority. Adding many
 * IPv6 addresses in one batch is several times slower from a SCHED_FIFO
 * thread (measured on Linux 6.18, one batch of /128 no-DAD adds: 10 took
 * 0.26 ms real-time / 0.25 ms normal, 20 took 0.47 / 0.29, 40 took 0.95 /
 * 0.59, 100 took 4.0 / 1.0 ms; a C program showed the same, so it is the
 * kernel's); IPv4 adds are not affected. Above it the write runs at normal
 * priority and only the first frames are raised ({@link realtimeWrite}).
 */
export const REALTIME_WRITE_MAX_IPV6 = 10;

/**
 * Whether a takeover that writes `ipv6Count` IPv6 addresses (and any number
 * of IPv4 ones) runs its address write at real-time priority, with its first
 * frames, or writes at normal priority and raises only the frames.
 */
export function realtimeWrite(ipv6Count: number): boolean {
  return ipv6Count <= REALTIME_WRITE_MAX_IPV6;
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
