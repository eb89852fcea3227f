/**
 * Machine load, from /proc/stat: the share of all CPUs' time that was busy.
 * Measured with the bench idle it shows other processes, which on a 2-core
 * machine slow the measured loops noticeably; during a block it adds the
 * bench's own thread and the kernel work its requests queue.
 */
import { readFileSync } from 'node:fs';

export interface CpuTimes {
  busy: number;
  total: number;
}

export function readCpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = v[3]! + v[4]!;
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Busy share of all CPUs between two readings (0..1); NaN when no tick passed. */
export function busyShare(from: CpuTimes, to: CpuTimes): number {
  const total = to.total - from.total;
  return total > 0 ? (to.busy - from.busy) / total : NaN;
}
