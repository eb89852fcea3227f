/**
 * CPU time used by a daemon, read from /proc: the sum over the process, its
 * threads and its descendants (vipa: the Node process with its heartbeat
 * thread, and the reaper child; keepalived: the parent and its VRRP child).
 *
 * Two readings per process: utime + stime from /proc/PID/stat (clock ticks,
 * 10 ms each here: what `top` and `ps` show), and the sum of
 * /proc/PID/task/TID/schedstat's on-CPU nanoseconds over its threads (exact,
 * and what the figures use).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat (USER_HZ: 100 on Linux for every architecture the bench runs on). */
const USER_HZ = 100;

export interface CpuReading {
  /** On-CPU time of every thread of the process tree (ns, schedstat). */
  schedNs: number;
  /** utime + stime of the process tree (ms, from ticks). */
  statMs: number;
  /** Processes counted. */
  processes: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process or thread is gone
  }
}

/** The pid and every descendant of it. */
function processTree(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  // Bounded: a process tree of a daemon is a handful of processes.
  while (queue.length > 0 && out.length < 1000) {
    const p = queue.shift()!;
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      const children = read(`/proc/${p}/task/${t}/children`);
      if (children) for (const c of children.trim().split(/\s+/).filter(Boolean)) queue.push(Number(c));
    }
  }
  return out;
}

/** CPU used so far by the processes `pids` and their descendants. */
export function readCpu(pids: readonly number[]): CpuReading {
  let schedNs = 0;
  let ticks = 0;
  let processes = 0;
  const seen = new Set<number>();
  for (const root of pids) {
    for (const pid of processTree(root)) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const stat = read(`/proc/${pid}/stat`);
      if (!stat) continue;
      processes++;
      // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      let tasks: string[] = [];
      try {
        tasks = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const t of tasks) {
        const s = read(`/proc/${pid}/task/${t}/schedstat`);
        if (s) schedNs += Number(s.split(' ')[0]);
      }
    }
  }
  return { schedNs, statMs: (ticks * 1000) / USER_HZ, processes };
}
