/**
 * Keeps concurrent clusters of the bench from disturbing each other's short
 * measurement windows.
 *
 * The 1 s configs run four clusters at once to fit the suite's time budget.
 * Their probers and responders alone do not disturb each other (four LANs:
 * p95 longest gap 0.8 ms in 300 ms windows), but daemon starts, kills and
 * process exits do: that is kernel work (exec, page faults, exit_mmap) which
 * a PREEMPT_NONE kernel does not preempt for the SCHED_FIFO instruments, and
 * it showed as a 2.2 ms no-fault floor. With a gate shared by the clusters:
 * - a short trial (baseline, process dies, graceful stop, move) runs alone:
 *   it waits until no heavy operation runs or waits and no other short
 *   trial is open, then takes its start time, acts (a kill, a SIGTERM, a
 *   move) and measures;
 * - heavy operations outside short trials (daemon starts, reaping, address
 *   cleanups, link changes, the kill of a host-dies trial) wait until no
 *   short trial is open, and a kill keeps the gate a little longer for the
 *   process exit that follows.
 * Waiting happens before a trial takes its start time, so it is never part
 * of a measured window. Long windows (a host dies at 1 s: seconds of
 * detection) are not gated.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class QuietGate {
  private windows = 0;
  private heavy = 0;
  private heavyWaiting = 0;
  private waiters: (() => void)[] = [];

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) await new Promise<void>((r) => this.waiters.push(r));
  }

  /**
   * Runs `f` (a daemon start, a reap, an address cleanup, a kill...) while no
   * short trial is open; `tailMs` keeps trials out that much longer (the
   * exit of a killed process).
   */
  async heavyOp<T>(f: () => Promise<T> | T, tailMs = 0): Promise<T> {
    this.heavyWaiting++;
    try {
      await this.until(() => this.windows === 0);
    } finally {
      this.heavyWaiting--;
    }
    this.heavy++;
    try {
      const result = await f();
      if (tailMs > 0) await sleep(tailMs);
      return result;
    } finally {
      this.heavy--;
      this.wake();
    }
  }

  /** A short trial, alone (see the module comment): `trial` takes its own start time. */
  async shortTrial<T>(trial: () => Promise<T>): Promise<T> {
    // Heavy operations waiting go first: they are short, and trials could otherwise starve them.
    await this.until(() => this.windows === 0 && this.heavy === 0 && this.heavyWaiting === 0);
    this.windows++;
    try {
      return await trial();
    } finally {
      this.windows--;
      this.wake();
    }
  }
}

/** No gate: every operation runs at once (one cluster at a time needs none). */
export class NoGate extends QuietGate {
  override async heavyOp<T>(f: () => Promise<T> | T): Promise<T> {
    return await f();
  }

  override async shortTrial<T>(trial: () => Promise<T>): Promise<T> {
    return await trial();
  }
}
