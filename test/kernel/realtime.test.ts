/**
 * withRealtime against the real scheduler: the calling thread runs the work
 * under SCHED_FIFO 1 and gets its own policy back afterwards, thrown or not;
 * a thread already real-time (or idle) is left alone; without the privilege
 * the work just runs. Raising needs CAP_SYS_NICE in the initial user
 * namespace (root; not `unshare -r`): without it those tests are skipped
 * with the reason printed, except under CI=true, where they fail.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../lib/native.js';
import { withRealtime } from '../../lib/takeover/realtime.js';
import { skipUnless } from '../helpers/kernel.js';

const ROOT = resolve(__dirname, '../..');
const SCHED_OTHER = 0;
const SCHED_FIFO = 1;
const SCHED_IDLE = 5;
const SCHED_RESET_ON_FORK = 0x40000000;

function realtimeUnavailableReason(): string | undefined {
  const b = native();
  const [policy, priority] = b.getScheduler();
  if (!b.setScheduler(SCHED_FIFO, 1)) return 'sched_setscheduler(SCHED_FIFO) not allowed here (needs CAP_SYS_NICE in the initial user namespace: run as root)';
  b.setScheduler(policy, priority);
  return undefined;
}

describe.skipIf(skipUnless('real-time tests', realtimeUnavailableReason()))('withRealtime with the privilege', () => {
  afterEach(() => {
    native().setScheduler(SCHED_OTHER, 0);
  });

  it('runs the work under SCHED_FIFO 1 (not inherited by what it starts), returns its value and restores SCHED_OTHER', () => {
    expect(native().getScheduler()).toEqual([SCHED_OTHER, 0]);
    const inside = withRealtime(() => native().getScheduler());
    expect(inside).toEqual([SCHED_FIFO | SCHED_RESET_ON_FORK, 1]);
    expect(native().getScheduler()).toEqual([SCHED_OTHER, 0]);
    const child = withRealtime(() => spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(`${ROOT}/dist/native.js`)}).native().getScheduler()))`], { encoding: 'utf8' }));
    expect(JSON.parse(child.stdout)).toEqual([SCHED_OTHER, 0]);
  });

  it('restores the policy when the work throws, and the error goes through', () => {
    expect(() =>
      withRealtime(() => {
        expect(native().getScheduler()).toEqual([SCHED_FIFO | SCHED_RESET_ON_FORK, 1]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(native().getScheduler()).toEqual([SCHED_OTHER, 0]);
  });

  it('leaves a thread that is already real-time, or idle, as it is', () => {
    expect(native().setScheduler(SCHED_FIFO, 5)).toBe(true);
    expect(withRealtime(() => native().getScheduler())).toEqual([SCHED_FIFO, 5]);
    expect(native().getScheduler()).toEqual([SCHED_FIFO, 5]);
    expect(native().setScheduler(SCHED_IDLE, 0)).toBe(true);
    expect(withRealtime(() => native().getScheduler())).toEqual([SCHED_IDLE, 0]);
    expect(native().getScheduler()).toEqual([SCHED_IDLE, 0]);
  });
});

describe('withRealtime without the privilege', () => {
  it('just runs the work, in a user namespace where SCHED_FIFO is refused', () => {
    // A user namespace's root has no CAP_SYS_NICE over the host's scheduler.
    const script = `const { native } = require(${JSON.stringify(`${ROOT}/dist/native.js`)});
      const { withRealtime } = require(${JSON.stringify(`${ROOT}/dist/takeover/realtime.js`)});
      const inside = withRealtime(() => native().getScheduler());
      console.log(JSON.stringify({ inside, after: native().getScheduler(), allowed: native().setScheduler(1, 1) }));`;
    const r = spawnSync('unshare', ['-r', process.execPath, '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ inside: [SCHED_OTHER, 0], after: [SCHED_OTHER, 0], allowed: false });
  });

  it('rejects arguments that are not numbers, naming them', () => {
    expect(() => native().setScheduler('1' as never, 1)).toThrow(/setScheduler\(policy, priority\)/);
  });
});
