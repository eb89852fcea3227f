import { afterEach, describe, expect, it, vi } from 'vitest';
import { HealthMonitor } from '../../../lib/takeover/health.js';

describe('HealthMonitor', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('needs `fall` failures to go unhealthy and `rise` successes to recover', async () => {
    vi.useFakeTimers();
    const results = [false, false, false, true, true, true];
    const changes: boolean[] = [];
    const monitor = new HealthMonitor([{ name: 'app', check: () => results.shift() ?? true, intervalMs: 100, fall: 3, rise: 2 }], (h) => changes.push(h));
    monitor.start();
    await vi.advanceTimersByTimeAsync(150); // 2 failures
    expect(changes).toEqual([]);
    await vi.advanceTimersByTimeAsync(100); // 3rd failure
    expect(changes).toEqual([false]);
    expect(monitor.status()).toEqual([{ name: 'app', healthy: false, lastError: 'check returned false' }]);
    await vi.advanceTimersByTimeAsync(100); // 1 success
    expect(changes).toEqual([false]);
    await vi.advanceTimersByTimeAsync(100); // 2nd success
    expect(changes).toEqual([false, true]);
    monitor.stop();
  });

  it('a rejection or a timeout is a failure, and the check sees its signal abort', async () => {
    vi.useFakeTimers();
    let aborted = false;
    const changes: boolean[] = [];
    const monitor = new HealthMonitor(
      [
        { name: 'slow', check: (signal) => new Promise<void>(() => signal.addEventListener('abort', () => (aborted = true))), intervalMs: 100, timeoutMs: 50 },
        { name: 'ok', check: async () => true, intervalMs: 100 },
      ],
      (h) => changes.push(h),
    );
    monitor.start();
    await vi.advanceTimersByTimeAsync(60);
    expect(aborted).toBe(true);
    expect(changes).toEqual([false]);
    expect(monitor.status()[0]).toMatchObject({ name: 'slow', healthy: false, lastError: 'timed out after 50 ms' });
    monitor.stop();

    const thrown = new HealthMonitor([{ name: 'boom', check: () => Promise.reject(new Error('exit 2')) }], (h) => changes.push(h));
    thrown.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(thrown.status()[0]!.lastError).toBe('exit 2');
    thrown.stop();
  });

  it('refuses bad check definitions, naming them', () => {
    expect(() => new HealthMonitor([{ name: '', check: () => true }], () => {})).toThrow(/name must be a non-empty string/);
    expect(() => new HealthMonitor([{ name: 'x', check: 'curl' as never }], () => {})).toThrow(/health check "x": check must be a function/);
    expect(() => new HealthMonitor([{ name: 'x', check: () => true, rise: 0 }], () => {})).toThrow(/health check "x": rise must be a positive integer, got 0/);
  });
});
