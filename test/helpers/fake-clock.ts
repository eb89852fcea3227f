/**
 * A fake clock for schedule tests (Announcer, ConflictDetector): timers run
 * only when the test advances time, in due-time order (ties: creation order).
 */
import type { AnnouncerClock } from '../../lib/packets/announcer.js';

export class FakeClock implements AnnouncerClock {
  private t = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    if (!(ms >= 0)) throw new Error(`bad delay ${ms}`);
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn: callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  now(): number {
    return this.t;
  }

  /** Pending timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** Due times of the pending timers, relative to now. */
  dueIn(): number[] {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running every timer that falls due (bounded: 1e6 timers). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) {
        this.t = end;
        return;
      }
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    throw new Error('runaway timers');
  }
}
