/**
 * Local health checks with rise/fall counting, as keepalived's track scripts:
 * a check must fail `fall` times in a row to make the node unhealthy and
 * succeed `rise` times in a row to make it healthy again. An unhealthy node
 * gives up its addresses and is skipped in the backup order.
 */

/** One user health check. */
export interface HealthCheck {
  /** Shown in logs and events. */
  name: string;
  /**
   * Resolves (or returns true) when healthy; false, a rejection or running
   * past `timeoutMs` count as a failure. Receives an AbortSignal that fires
   * at the timeout.
   */
  check: (signal: AbortSignal) => Promise<boolean | void> | boolean | void;
  /** Time between checks (default 1000 ms). */
  intervalMs?: number;
  /** A check that takes longer fails (default: the interval). */
  timeoutMs?: number;
  /** Consecutive successes to become healthy (default 1). */
  rise?: number;
  /** Consecutive failures to become unhealthy (default 1). */
  fall?: number;
}

/** Health of one check, for status output. */
export interface HealthCheckStatus {
  name: string;
  healthy: boolean;
  lastError: string | undefined;
}

interface Running {
  spec: Required<Omit<HealthCheck, 'check'>> & Pick<HealthCheck, 'check'>;
  healthy: boolean;
  streak: number;
  lastError: string | undefined;
  timer: NodeJS.Timeout | undefined;
  inFlight: AbortController | undefined;
}

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/**
 * Runs health checks on timers and reports the combined health (healthy
 * when every check is) through `onChange`. Nodes start healthy: a check
 * must fail `fall` times before the node reacts.
 */
export class HealthMonitor {
  private readonly checks: Running[];
  private readonly onChange: (healthy: boolean) => void;
  private healthy = true;
  private stopped = true;

  constructor(checks: readonly HealthCheck[], onChange: (healthy: boolean) => void) {
    if (!Array.isArray(checks)) throw new TypeError(`health checks must be an array, got ${String(checks)}`);
    this.onChange = onChange;
    this.checks = checks.map((c, i) => {
      if (c === null || typeof c !== 'object') throw new TypeError(`health check ${i} must be an object`);
      if (typeof c.name !== 'string' || c.name.length === 0) throw new TypeError(`health check ${i}: name must be a non-empty string`);
      if (typeof c.check !== 'function') throw new TypeError(`health check ${JSON.stringify(c.name)}: check must be a function`);
      const intervalMs = positive(c.intervalMs, `health check ${JSON.stringify(c.name)}: intervalMs`, 1000);
      return {
        spec: {
          name: c.name,
          check: c.check,
          intervalMs,
          timeoutMs: positive(c.timeoutMs, `health check ${JSON.stringify(c.name)}: timeoutMs`, intervalMs),
          rise: positive(c.rise, `health check ${JSON.stringify(c.name)}: rise`, 1),
          fall: positive(c.fall, `health check ${JSON.stringify(c.name)}: fall`, 1),
        },
        healthy: true,
        streak: 0,
        lastError: undefined,
        timer: undefined,
        inFlight: undefined,
      };
    });
  }

  /** Starts checking (first run at once). */
  start(): void {
    this.stopped = false;
    for (const c of this.checks) void this.run(c);
  }

  /** Stops all checks; checks in flight are aborted. */
  stop(): void {
    this.stopped = true;
    for (const c of this.checks) {
      clearTimeout(c.timer);
      c.inFlight?.abort();
    }
  }

  /** Current state of every check. */
  status(): HealthCheckStatus[] {
    return this.checks.map((c) => ({ name: c.spec.name, healthy: c.healthy, lastError: c.lastError }));
  }

  private async run(c: Running): Promise<void> {
    if (this.stopped) return;
    const controller = new AbortController();
    c.inFlight = controller;
    let timeout: NodeJS.Timeout | undefined;
    let ok: boolean;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timeout = setTimeout(() => {
          controller.abort();
          reject(new Error(`timed out after ${c.spec.timeoutMs} ms`));
        }, c.spec.timeoutMs);
      });
      const result = await Promise.race([Promise.resolve().then(() => c.spec.check(controller.signal)), timedOut]);
      ok = result !== false;
      c.lastError = ok ? undefined : 'check returned false';
    } catch (e) {
      ok = false;
      c.lastError = e instanceof Error ? e.message : String(e);
    } finally {
      clearTimeout(timeout);
      c.inFlight = undefined;
    }
    if (this.stopped) return;
    if (ok !== c.healthy) {
      c.streak++;
      if (c.streak >= (ok ? c.spec.rise : c.spec.fall)) {
        c.healthy = ok;
        c.streak = 0;
        const all = this.checks.every((x) => x.healthy);
        if (all !== this.healthy) {
          this.healthy = all;
          this.onChange(all);
        }
      }
    } else c.streak = 0;
    c.timer = setTimeout(() => void this.run(c), c.spec.intervalMs);
    c.timer.unref();
  }
}
