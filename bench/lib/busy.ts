/**
 * CPU hogs for the stability scenarios: `count` processes that spin in a
 * shell loop at normal priority (nice 0, SCHED_OTHER, as the daemons run),
 * started in a host's namespace under the same death guard as every other
 * helper, so they stop with the bench whatever happens.
 */
import type { ChildProcess } from 'node:child_process';
import type { TestHost } from '../../lib/demo/lan.js';
import { spawnGuarded, waitForExit } from './guarded-spawn.js';

export class CpuHogs {
  private readonly children: ChildProcess[];

  private constructor(children: ChildProcess[]) {
    this.children = children;
  }

  /** Starts `count` spinning processes in `host`'s namespace. */
  static start(host: TestHost, count: number): CpuHogs {
    // `while :; do :; done` in sh: pure user-space spinning, no syscalls, no memory.
    return new CpuHogs(Array.from({ length: count }, () => spawnGuarded(host, 'sh', ['-c', 'while :; do :; done'])));
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid!).filter(Boolean);
  }

  /** Kills them all and waits for their exits (bounded). */
  async stop(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    await Promise.all(this.children.map((c) => waitForExit(c, 2000)));
  }
}
