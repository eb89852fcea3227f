import { readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { VipaError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';

// The addon's timerfd timer (native/timer.h): no privileges needed.
const Timer = native().Timer;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fired(delayMs: number): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const t = new Timer(() => {
      t.close();
      resolve(performance.now() - started);
    });
    t.start(delayMs);
  });
}

describe('native Timer', () => {
  it('fires once, never before its delay (fractional ms)', async () => {
    for (const delay of [0.3, 2.5, 7.25]) expect(await fired(delay)).toBeGreaterThanOrEqual(delay);
  });

  it('fires at the next loop iteration for a delay of 0 or less', async () => {
    expect(await fired(0)).toBeGreaterThanOrEqual(0);
    expect(await fired(-5)).toBeGreaterThanOrEqual(0);
  });

  it('re-arming replaces the expiry; stop() cancels it', async () => {
    let calls = 0;
    const t = new Timer(() => calls++);
    t.start(5);
    t.start(40); // replaces the 5 ms expiry
    await sleep(20);
    expect(calls).toBe(0);
    t.stop();
    await sleep(40);
    expect(calls).toBe(0);
    t.start(1);
    await sleep(20);
    expect(calls).toBe(1);
    await sleep(10);
    expect(calls).toBe(1); // one-shot
    t.close();
  });

  it('rejects bad arguments by name and refuses use after close', () => {
    expect(() => new (Timer as unknown as new (cb: unknown) => unknown)(42)).toThrow(/callback must be a function/);
    const t = new Timer(() => {});
    expect(() => t.start('5' as unknown as number)).toThrow(TypeError);
    expect(() => t.start(Number.NaN)).toThrow(/NaN/);
    t.close();
    t.close(); // idempotent
    const e = (() => {
      try {
        t.start(1);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(VipaError);
    expect(e).toMatchObject({ code: 'EBADF', op: 'timer' });
  });

  it('leaks no file descriptor', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 50; i++) await fired(0.1);
    const armed = Array.from({ length: 50 }, () => new Timer(() => {}));
    for (const t of armed) t.start(1000);
    expect(fds()).toBe(before + 50);
    for (const t of armed) t.close();
    expect(fds()).toBe(before);
  });
});

describe('native Timer and the event loop', () => {
  it('an armed timer keeps a process alive, a fired or stopped one does not', async () => {
    const { spawnSync } = await import('node:child_process');
    const run = (body: string) => {
      const script = `const { native } = require(${JSON.stringify(require.resolve('../../dist/native.js'))}); const T = native().Timer; ${body}`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
      return { out: r.stdout.trim(), status: r.status };
    };
    // Fires after 300 ms although nothing else keeps the loop alive; re-armed from its callback once.
    expect(run('let n = 0; const t = new T(() => { n++; if (n === 1) t.start(50); else console.log("fired", n); }); t.start(300);').out).toBe('fired 2');
    // Stopped: the process exits instead of waiting an hour (spawnSync's 10 s timeout would leave status null).
    expect(run('const t = new T(() => console.log("fired")); t.start(3600e3); t.stop();')).toMatchObject({ out: '', status: 0 });
  });
});
