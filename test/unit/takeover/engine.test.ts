import { describe, expect, it } from 'vitest';
import { validateCluster } from '../../../lib/takeover/config.js';
import { FixedTimeoutDetector } from '../../../lib/takeover/detectors.js';
import { holderProbeLeadMs, peerSettleMs, TakeoverEngine, confirmationWindowMs, unreachableGraceMs, type PeerGroupStatus, type PeerMessage } from '../../../lib/takeover/engine.js';
import { Simulation, threeNodeConfig } from './simulation.js';

/** Startup grace (= detection time, 30 ms) plus a margin. */
const SETTLE = 60;

/** A heartbeat or leave from `from` (incarnation `incarnation`) reporting `status` for group 0 ([] for none). */
function statusMessage(kind: 'heartbeat' | 'leave', from: string, incarnation: bigint, status: PeerGroupStatus | undefined): Extract<PeerMessage, { kind: 'heartbeat' | 'leave' }> {
  return { kind, from, incarnation, health: 'healthy', intervalMs: 10, groups: status === undefined ? [] : [{ index: 0, status, pinned: false }], digestMatches: true };
}

function settled(sim = new Simulation(threeNodeConfig())): Simulation {
  sim.startAll();
  sim.run(SETTLE);
  return sim;
}

describe('takeover by rank', () => {
  it('at start only the home node takes the group, after the startup grace', () => {
    const sim = new Simulation(threeNodeConfig());
    sim.startAll();
    sim.run(20);
    expect(sim.holders()).toEqual([]); // still listening for peers
    sim.run(40);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.transitions('a')).toEqual(['stopped>init:startup', 'init>backup:startup-grace-over', 'backup>active:takeover']);
    expect(sim.transitions('b')).toEqual(['stopped>init:startup', 'init>backup:startup-grace-over']);
    expect(sim.doubleHolds).toEqual([]);
  });

  it('the highest-ranked live backup takes over when the holder dies; lower ranks do nothing', () => {
    const sim = settled();
    sim.crash('a');
    const took = sim.runUntil(() => sim.holders().includes('b'), 100);
    // Detection: 3 missed 10 ms heartbeats after the last one.
    expect(took).toBeLessThanOrEqual(31);
    sim.run(50);
    expect(sim.transitions('c')).not.toContain('backup>active:takeover');
    expect(sim.eventsOf('peer-down').map((e) => `${e.node}:${(e.event as { peer: string }).peer}`).sort()).toEqual(['b:a', 'c:a']);
    // The event says how long the peer was silent: the detection time (3 × 10 ms).
    for (const e of sim.eventsOf('peer-down')) {
      const down = e.event as { lastHeardAt: number; at: number };
      expect(down.at - down.lastHeardAt).toBeGreaterThanOrEqual(30);
      expect(down.at - down.lastHeardAt).toBeLessThan(31);
    }
  });

  it('the next rank acts only when the higher ones are gone too', () => {
    const sim = settled();
    sim.hostDown('a');
    sim.hostDown('b');
    sim.run(100);
    expect(sim.holders()).toEqual(['c']);
    expect(sim.transitions('c')).toContain('backup>active:takeover');
  });

  it('skips an unhealthy backup', () => {
    const sim = settled();
    sim.act('b', (e, now) => e.healthChanged(false, now));
    sim.run(20);
    sim.crash('a');
    sim.run(100);
    expect(sim.transitions('c')).toContain('backup>active:takeover');
    expect(sim.transitions('b')).toEqual(['stopped>init:startup', 'init>backup:startup-grace-over', 'backup>fault:health-failed']);
  });

  it('without its reaper, a crashed holder’s address disappears when its lease ends', () => {
    const sim = settled();
    sim.crash('a', { reaper: false });
    sim.run(100);
    expect(sim.holders()).toEqual(['a', 'b']); // a's kernel still has it: the lease is the dead-man switch
    sim.run(2000);
    expect(sim.holders()).toEqual(['b']);
  });

  it('refreshes the lease of held groups every third of it', () => {
    const sim = settled();
    sim.run(3000);
    const refreshes = sim.effects.filter((x) => x.node === 'a' && x.effect.type === 'refresh-lease').map((x) => x.at);
    expect(refreshes.length).toBeGreaterThanOrEqual(4);
    expect(sim.holders()).toEqual(['a']);
  });
});

describe('giveback', () => {
  function homeReturns(giveback: NonNullable<ReturnType<typeof threeNodeConfig>['giveback']>): Simulation {
    const sim = settled(new Simulation(threeNodeConfig({ giveback })));
    sim.crash('a');
    sim.run(2100); // b took over; a's lease ran out
    expect(sim.holders()).toEqual(['b']);
    sim.start('a');
    return sim;
  }

  it('immediate: the home node gets the group back by a make-before-break handoff', () => {
    const sim = homeReturns({ mode: 'immediate' });
    sim.run(SETTLE + 5);
    expect(sim.holders()).toEqual(['a']);
    // b keeps answering until a reports holding: no gap for clients, one round trip of overlap.
    expect(sim.transitions('b').slice(-2)).toEqual(['active>handing-off:giveback', 'handing-off>backup:handoff-done']);
    expect(sim.transitions('a').at(-1)).toBe('backup>active:handoff-received');
    expect(sim.doubleHolds).toEqual([]);
    expect(sim.longestHandoffOverlap()).toBeLessThanOrEqual(2 * sim.latencyMs);
  });

  it('hold-down: the group goes back only after the home node was eligible for the delay', () => {
    const sim = homeReturns({ mode: 'hold-down', delayMs: 500 });
    sim.run(400);
    expect(sim.holders()).toEqual(['b']);
    sim.run(200);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.doubleHolds).toEqual([]);
  });

  it('manual: the group stays until an operator moves it', () => {
    const sim = homeReturns({ mode: 'manual' });
    sim.run(2000);
    expect(sim.holders()).toEqual(['b']);
    sim.act('c', (e, now) => e.move('web', 'a', now)); // asked on a node that holds nothing: forwarded to b
    sim.run(5);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.doubleHolds).toEqual([]);
  });
});

describe('manual operations', () => {
  it('move pins the group on the target; the home node does not take it back', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.move('web', 'c', now));
    sim.run(5);
    expect(sim.holders()).toEqual(['c']);
    sim.run(500);
    expect(sim.holders()).toEqual(['c']);
    expect(sim.node('c').engine.status().groups[0]!.pinned).toBe(true);
    expect(sim.doubleHolds).toEqual([]);
    // Re-enabling clears pins: giveback brings it home.
    sim.act('c', (e, now) => e.setEnabled(true, now));
    sim.run(5);
    expect(sim.holders()).toEqual(['a']);
  });

  it('refuses a move to a node that is not a member or not alive', () => {
    const sim = settled();
    expect(() => sim.act('a', (e, now) => e.move('web', 'z', now))).toThrow(/node "z" is not a member of group "web"/);
    expect(() => sim.act('a', (e, now) => e.move('nope', 'b', now))).toThrow(/unknown group "nope"/);
    sim.crash('c');
    sim.run(50);
    sim.act('a', (e, now) => e.move('web', 'c', now));
    expect(sim.eventsOf('move-refused')).toHaveLength(1);
    expect(sim.holders()).toEqual(['a']);
  });

  it('drain keeps holding for the grace period, then hands off and takes nothing new', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.drain(50, now));
    sim.run(40);
    expect(sim.holders()).toEqual(['a']);
    sim.run(20);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.transitions('a').slice(-3)).toEqual(['active>draining:drain', 'draining>handing-off:drain-done', 'handing-off>backup:handoff-done']);
    const before = sim.transitions('a').length;
    sim.crash('b');
    sim.run(100);
    expect(sim.holders()).toEqual(['c']);
    expect(sim.transitions('a').slice(before)).toEqual([]); // a drained node takes nothing new
    expect(sim.doubleHolds.filter((d) => d.at < 60 + SETTLE)).toEqual([]);
  });

  it('disable releases and makes the node ineligible; enable restores it', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.setEnabled(false, now));
    sim.run(5);
    expect(sim.holders()).toEqual(['b']);
    sim.act('a', (e, now) => e.setEnabled(true, now));
    sim.run(5);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.doubleHolds).toEqual([]);
  });
});

describe('failures of the holder', () => {
  it('graceful stop: hands over make-before-break, then leaves holding nothing', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.stop(now));
    expect(sim.node('a').engine.isStopped).toBe(false); // waiting for b to take it
    const took = sim.runUntil(() => sim.holders().includes('b'), 50);
    expect(took).toBeLessThan(1);
    sim.run(1);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.node('a').engine.isStopped).toBe(true);
    expect(sim.transitions('a').slice(-2)).toEqual(['active>handing-off:stop', 'handing-off>stopped:handoff-done']);
    expect(sim.doubleHolds).toEqual([]);
    expect(sim.longestHandoffOverlap()).toBeLessThanOrEqual(2 * sim.latencyMs);
  });

  it('a handoff whose target never takes over times out and releases anyway', () => {
    const sim = settled();
    sim.partition('a', 'b'); // b will never confirm (nor hear the release)
    sim.partition('a', 'c');
    sim.act('a', (e, now) => e.stop(now));
    sim.run(40);
    expect(sim.transitions('a').slice(-2)).toEqual(['active>handing-off:stop', 'handing-off>stopped:handoff-timeout']);
    expect(sim.node('a').engine.isStopped).toBe(true);
  });

  it('an unreachable heartbeat port (process died, host up) triggers takeover after a short grace, before the timeout', () => {
    const sim = settled();
    sim.crash('a', { reaper: false }); // no reaper: no leave, the address stays on a until its lease ends
    // The error answers the survivors' next heartbeat to a: within one interval, long before the 30 ms timeout.
    sim.run(11);
    sim.act('b', (e, now) => e.peerUnreachable('a', now));
    sim.act('c', (e, now) => e.peerUnreachable('a', now));
    const unreachableAt = sim.now;
    sim.run(1); // a's last heartbeat, still in flight, must not bring it back
    sim.run(unreachableGraceMs(10) - 3);
    // Within the grace a's reaper would delete and send its leave: nobody claims yet.
    expect(sim.effects.filter((e) => e.at >= unreachableAt && e.effect.type === 'acquire')).toEqual([]);
    sim.run(5);
    // b took over after the grace, not after the 30 ms timeout (a's kernel keeps the address until its lease ends: no reaper)
    expect(sim.holders()).toEqual(['a', 'b']);
    const acquired = sim.effects.filter((e) => e.at >= unreachableAt && e.effect.type === 'acquire');
    expect(acquired.map((e) => e.node)).toEqual(['b']);
    expect(acquired[0]!.at - unreachableAt).toBeGreaterThanOrEqual(unreachableGraceMs(10));
    expect(acquired[0]!.at - unreachableAt).toBeLessThan(30);
    expect(sim.eventsOf('peer-down').map((e) => (e.event as { reason: string }).reason)).toEqual(['unreachable', 'unreachable']);
  });

  it("the dead holder's reaper deletes and sends leave: the backup takes over at once, never two holders", () => {
    const sim = settled();
    const crashedAt = sim.now;
    sim.crash('a', { leave: true });
    sim.run(1); // one network latency
    sim.act('b', (e, now) => e.peerUnreachable('a', now)); // the ICMP error after the leave changes nothing
    sim.run(1);
    expect(sim.holders()).toEqual(['b']);
    const acquired = sim.effects.find((e) => e.at >= crashedAt && e.effect.type === 'acquire');
    expect(acquired).toMatchObject({ node: 'b' });
    expect(acquired!.at - crashedAt).toBeLessThanOrEqual(sim.latencyMs + 1e-9);
    expect(sim.eventsOf('peer-down').map((e) => (e.event as { reason: string }).reason)).toEqual(['leave', 'leave']);
    expect(sim.doubleHolds).toEqual([]);
  });

  it('a heartbeat after an ICMP error (a stale error, the peer lives) cancels the grace', () => {
    const sim = settled();
    sim.act('b', (e, now) => e.peerUnreachable('a', now + 0)); // a was heard within the interval: ignored
    sim.run(10);
    sim.act('b', (e, now) => e.peerUnreachable('a', now)); // may count: a last heard up to 10 ms ago
    sim.run(40);
    expect(sim.holders()).toEqual(['a']); // a's heartbeats kept coming: nothing happened
    expect(sim.eventsOf('peer-down')).toEqual([]);
  });

  it('link down self-fences with a handoff; link up makes the node eligible again', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.linkChanged('eth0', false, now));
    sim.run(1);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.transitions('a').at(-1)).toBe('active>fault:link-down');
    sim.act('a', (e, now) => e.linkChanged('eth1', false, now)); // not ours: no change
    sim.act('a', (e, now) => e.linkChanged('eth0', true, now));
    expect(sim.node('a').engine.groupState(0)).toBe('init'); // listens before claiming: its view is stale
    sim.run(45);
    expect(sim.holders()).toEqual(['a']); // immediate giveback, by handoff
    expect(sim.transitions('a').at(-1)).toBe('backup>active:handoff-received');
    expect(sim.doubleHolds).toEqual([]);
  });

  it('health failure releases', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.healthChanged(false, now));
    sim.run(1);
    expect(sim.holders()).toEqual(['b']);
    sim.act('a', (e, now) => e.healthChanged(true, now));
    sim.run(5);
    expect(sim.holders()).toEqual(['a']);
  });

  it('an address deleted by someone else is re-added (default policy)', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.addressDeleted(0, now));
    expect(sim.effects.at(-1)!.effect).toMatchObject({ type: 'acquire', reason: 'external-delete' });
  });

  it('or released to the next backup (policy release)', () => {
    const sim = settled(new Simulation(threeNodeConfig({ externalDelete: 'release' })));
    sim.act('a', (e, now) => e.addressDeleted(0, now));
    sim.run(2);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.transitions('a').at(-1)).toBe('active>fault:external-delete');
    sim.run(200);
    expect(sim.holders()).toEqual(['b']); // stays away until an operator re-enables it
  });
});

describe('a silent holder whose host still answers for the address', () => {
  const DETECTION = 30; // threeNodeConfig: 10 ms × 3
  const takeoversAfter = (sim: Simulation, t: number) => sim.effects.filter((e) => e.at >= t && e.effect.type === 'acquire');

  it('only the next holder probes, only near the deadline, never while heartbeats arrive', () => {
    const sim = settled();
    const t0 = sim.now;
    sim.run(500);
    expect(sim.effects.filter((e) => e.at >= t0 && e.effect.type === 'probe-holder')).toEqual([]);
    sim.crash('a', { reaperDelayMs: 1000, leave: true });
    sim.run(DETECTION - 1);
    const probes = sim.effects.filter((e) => e.at >= t0 && e.effect.type === 'probe-holder');
    expect(probes.map((e) => e.node)).toEqual(['b']);
    expect(probes[0]!.effect).toMatchObject({ group: 0, holder: 'a' });
    expect(probes[0]!.at - t0 - 500).toBeGreaterThanOrEqual(DETECTION - holderProbeLeadMs(10) - 10);
  });

  it('process dead, reaper slower than detection: the backup waits for the leave, never two holders', () => {
    const sim = settled();
    const killedAt = sim.now;
    sim.crash('a', { reaperDelayMs: 45, leave: true }); // the kernel tears the process down after the timeout
    sim.run(44);
    expect(sim.holders()).toEqual(['a']); // still a's: clients keep reaching a's host
    expect(sim.eventsOf('takeover-deferred').map((e) => e.node)).toEqual(['b']);
    sim.run(2);
    expect(sim.holders()).toEqual(['b']);
    const [acquired] = takeoversAfter(sim, killedAt);
    expect(acquired).toMatchObject({ node: 'b' });
    expect(acquired!.at - killedAt).toBeGreaterThanOrEqual(45);
    expect(acquired!.at - killedAt).toBeLessThanOrEqual(45 + 2 * sim.latencyMs + 1e-9);
    expect(sim.doubleHolds).toEqual([]);
  });

  it('host gone: nobody answers the probe, the takeover happens at the deadline as before', () => {
    const sim = settled();
    const lastHeartbeat = sim.now;
    sim.hostDown('a');
    sim.run(DETECTION + 15);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.eventsOf('takeover-deferred')).toEqual([]);
    const [acquired] = takeoversAfter(sim, lastHeartbeat);
    expect(acquired!.at - lastHeartbeat).toBeLessThanOrEqual(DETECTION + 10 + 1e-9); // within one interval of the deadline
  });

  it('no leave (reaper killed too): the ICMP error cuts the wait to the grace', () => {
    const sim = settled();
    sim.crash('a', { reaper: false });
    sim.run(DETECTION + 5);
    expect(sim.eventsOf('takeover-deferred').map((e) => e.node)).toEqual(['b']);
    expect(sim.holders()).toEqual(['a']);
    const errorAt = sim.now;
    sim.act('b', (e, now) => e.peerUnreachable('a', now));
    sim.run(unreachableGraceMs(10) + 1);
    const [acquired] = takeoversAfter(sim, errorAt);
    expect(acquired).toMatchObject({ node: 'b' });
    expect(acquired!.at - errorAt).toBeCloseTo(unreachableGraceMs(10), 6);
  });

  it('frozen holder (its kernel answers, no leave, no error): takeover after the deferral, then it steps back', () => {
    const sim = settled(new Simulation(threeNodeConfig({ giveback: { mode: 'manual' } })));
    const frozenAt = sim.now;
    sim.freeze('a', 300);
    sim.run(200);
    const [acquired] = takeoversAfter(sim, frozenAt);
    expect(acquired).toMatchObject({ node: 'b' });
    const deferred = sim.eventsOf('takeover-deferred')[0]!.event as { at: number; until: number };
    expect(deferred.until - deferred.at).toBeCloseTo(confirmationWindowMs(10, 3), 6);
    expect(acquired!.at).toBeCloseTo(deferred.until, 6);
    sim.run(150);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.transitions('a').slice(-2)).toEqual(['active>verifying:frozen', 'verifying>backup:stepped-back']);
  });

  it('a heartbeat during the wait cancels it: the holder was only late', () => {
    const sim = settled();
    sim.freeze('a', DETECTION + 8); // past the deadline, shorter than the deferral
    sim.run(DETECTION + 40);
    expect(sim.eventsOf('takeover-deferred').map((e) => e.node)).toEqual(['b']);
    expect(sim.holders()).toEqual(['a']); // nobody took over; a kept it
    expect(sim.doubleHolds).toEqual([]);
  });
});

describe('split brain', () => {
  it('after a partition heals, the better holder wins and the loser releases', () => {
    const sim = settled();
    sim.partition('a', 'b');
    sim.partition('a', 'c');
    sim.run(100);
    expect(sim.holders()).toEqual(['a', 'b']); // both sides hold: a partition
    sim.heal();
    // b hears a within one interval and latency, and loses once a has settled.
    sim.run(10 + sim.latencyMs + peerSettleMs(10));
    expect(sim.holders()).toEqual(['a']);
    expect(sim.transitions('b').at(-1)).toBe('active>backup:split-brain-lost');
    const split = sim.eventsOf('split-brain');
    expect(split.length).toBeGreaterThan(0);
    expect((split[0]!.event as { winner: string }).winner).toBe('a');
    expect(sim.effects.some((x) => x.node === 'a' && x.effect.type === 'announce')).toBe(true);
  });

  it('the loser releases only once the winner that came up has settled, by its next heartbeat at the latest', () => {
    const sim = settled();
    sim.partition('a', 'b');
    sim.partition('a', 'c');
    sim.run(100);
    const healedAt = sim.now;
    sim.heal();
    sim.run(50); // a keeps sending "holding" every interval: a genuine split brain
    const up = sim.events.find((e) => e.node === 'b' && e.event.type === 'peer-up' && e.event.at >= healedAt)!.event.at;
    const released = sim.effects.filter((e) => e.node === 'b' && e.at >= healedAt && e.effect.type === 'release');
    expect(released.map((e) => e.effect)).toEqual([{ type: 'release', group: 0, reason: 'split-brain-lost' }]);
    expect(released[0]!.at).toBeCloseTo(up + peerSettleMs(10), 6);
    expect(released[0]!.at - up).toBeLessThan(10); // before a's next heartbeat
    // The winner did not wait: it re-announced as soon as it heard b.
    const announced = sim.effects.find((e) => e.node === 'a' && e.at >= healedAt && e.effect.type === 'announce')!;
    expect(announced.at - up).toBeLessThanOrEqual(sim.latencyMs + 1e-9);
    expect(sim.holders()).toEqual(['a']);
  });

  it('an already-alive peer that starts claiming the group wins at once', () => {
    const sim = settled(new Simulation(threeNodeConfig({ giveback: { mode: 'manual' } })));
    sim.crash('a');
    sim.run(50);
    sim.start('a');
    sim.run(SETTLE); // a is back, standby, alive in b's view for far longer than the settle time
    expect(sim.holders()).toEqual(['b']);
    const claimedAt = sim.now;
    // a takes the group (a stray handoff naming it): b hears a, long alive, claim it.
    sim.act('a', (e, now) => e.receive({ kind: 'release', from: 'b', group: 0, target: 'a', pinned: false, digestMatches: true }, now));
    sim.run(20);
    const released = sim.effects.filter((e) => e.node === 'b' && e.at >= claimedAt && e.effect.type === 'release');
    expect(released.map((e) => e.effect)).toEqual([{ type: 'release', group: 0, reason: 'split-brain-lost' }]);
    expect(released[0]!.at - claimedAt).toBeLessThanOrEqual(sim.latencyMs + 1e-9); // on a's first "holding", no settle time
    expect(sim.holders()).toEqual(['a']);
  });
});

describe('a burst of stale queued messages after a link flap', () => {
  it("does not make the holder give the group up: a's old holding heartbeat, its leave and its new incarnation arrive back to back", () => {
    const sim = settled();
    const oldIncarnation = sim.node('a').incarnation;
    sim.hostDown('a'); // a's link goes down (its heartbeats queue in its kernel), then a is killed
    sim.run(50);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.events.filter((e) => e.node === 'b' && e.event.type === 'peer-down').map((e) => (e.event as { reason: string }).reason)).toEqual(['timeout']);
    const flushedAt = sim.now;
    // a's link comes back: the kernel flushes the queue, b and c receive it within microseconds.
    for (const node of ['b', 'c']) {
      sim.act(node, (e, now) => e.receive(statusMessage('heartbeat', 'a', oldIncarnation, 'holding'), now));
      sim.act(node, (e, now) => e.receive({ ...statusMessage('leave', 'a', oldIncarnation, undefined), health: 'unhealthy' }, now));
      sim.act(node, (e, now) => e.receive(statusMessage('heartbeat', 'a', oldIncarnation + 1n, 'starting'), now));
    }
    sim.run(100);
    expect(sim.transitions('b').filter((t) => t.includes('split-brain-lost'))).toEqual([]);
    expect(sim.effects.filter((e) => e.at >= flushedAt && (e.effect.type === 'release' || e.effect.type === 'acquire'))).toEqual([]);
    expect(sim.transitions('c').at(-1)).toBe('init>backup:startup-grace-over'); // the backup did nothing either
    expect(sim.holders()).toEqual(['b']);
    expect(sim.node('b').engine.groupState(0)).toBe('active');
  });
});

describe('a starting peer', () => {
  it('reports every group as starting before its engine starts, ineligible after a stop', () => {
    const cluster = validateCluster(threeNodeConfig());
    const engine = new TakeoverEngine({ self: 'a', cluster, detectorFactory: () => new FixedTimeoutDetector({ misses: 3, intervalMs: 10 }) });
    expect(engine.reportedGroups()).toEqual([{ index: 0, status: 'starting', pinned: false }]);
    engine.start(0);
    expect(engine.reportedGroups()).toEqual([{ index: 0, status: 'starting', pinned: false }]);
    engine.stop(1);
    expect(engine.isStopped).toBe(true);
    expect(engine.reportedGroups()).toEqual([{ index: 0, status: 'ineligible', pinned: false }]);
  });

  it('whose heartbeat lists no groups is no giveback target', () => {
    const sim = settled();
    sim.crash('a');
    sim.run(50);
    expect(sim.holders()).toEqual(['b']);
    const restartedAt = sim.now;
    // A new process of a (better member, immediate giveback) before it reported its status.
    sim.act('b', (e, now) => e.receive(statusMessage('heartbeat', 'a', 999n, undefined), now));
    sim.run(5);
    expect(sim.node('b').engine.groupState(0)).toBe('active');
    expect(sim.effects.filter((e) => e.node === 'b' && e.at >= restartedAt && e.effect.type === 'send-release')).toEqual([]);
    // The same for an operator's move to it.
    sim.act('b', (e, now) => e.move('web', 'a', now));
    expect(sim.eventsOf('move-refused').map((e) => e.node)).toEqual(['b']);
  });
});

describe('late timers and frozen processes', () => {
  it('a frozen holder steps back on waking instead of asserting ownership', () => {
    const sim = settled(new Simulation(threeNodeConfig({ giveback: { mode: 'manual' } })));
    sim.freeze('a', 200);
    sim.run(100);
    expect(sim.holders()).toEqual(['a', 'b']); // b took over; a's kernel still has it (lease)
    sim.run(105);
    expect(sim.transitions('a').slice(-2)).toEqual(['active>verifying:frozen', 'verifying>backup:stepped-back']);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.eventsOf('late-timer').map((e) => e.node)).toContain('a');
    // It never re-announced while verifying.
    const announcedAfterWake = sim.effects.filter((x) => x.node === 'a' && x.at >= 100 + SETTLE && (x.effect.type === 'announce' || x.effect.type === 'acquire'));
    expect(announcedAfterWake).toEqual([]);
  });

  it('a takeover that keeps the loop busy for 3.5 intervals (hundreds of addresses) is work, not a freeze', () => {
    const sim = settled();
    sim.acquireCostMs.set('b', 35);
    const t0 = sim.now;
    sim.hostDown('a');
    sim.run(200);
    expect(sim.holders()).toEqual(['b']);
    expect(sim.transitions('b').filter((t) => t.includes('frozen'))).toEqual([]);
    expect(sim.events.filter((e) => e.node === 'b' && e.event.type === 'late-timer' && e.event.at >= t0)).toEqual([]);
  });

  it('a frozen holder that nobody replaced resumes after verifying', () => {
    const sim = settled();
    sim.freeze('a', 25); // shorter than the detection time: peers did not take over
    sim.run(25 + 40);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.transitions('b')).not.toContain('backup>active:takeover');
    // Still noticed: the engine plans a wake-up every interval, and this one came 15 ms late.
    expect(sim.eventsOf('late-timer').map((e) => e.node)).toContain('a');
    expect(sim.transitions('a')).toContain('active>verifying:frozen');
  });

  it('a backup whose loop stalled does not take over when it wakes late', () => {
    const sim = settled();
    sim.freeze('b', 200);
    sim.run(300);
    expect(sim.holders()).toEqual(['a']);
    expect(sim.transitions('b')).not.toContain('backup>active:takeover');
    expect(sim.eventsOf('late-timer').map((e) => e.node)).toContain('b');
  });

  it('starved heartbeats are treated like a late timer', () => {
    const sim = settled();
    sim.act('a', (e, now) => e.heartbeatsStarved(now));
    expect(sim.node('a').engine.groupState(0)).toBe('verifying');
    sim.run(40);
    expect(sim.node('a').engine.groupState(0)).toBe('active');
    expect(sim.holders()).toEqual(['a']);
  });
});

/** A lone engine for `self` in the three-node cluster, fixed 10 ms × 3 detection, started at 0. */
function startedEngine(self: string): TakeoverEngine {
  const engine = new TakeoverEngine({ self, cluster: validateCluster(threeNodeConfig()), detectorFactory: () => new FixedTimeoutDetector({ misses: 3, intervalMs: 10 }) });
  engine.start(0, []);
  return engine;
}

/** Node b as a backup: a holds the group, a and c heard every 10 ms until 60 ms, ticks at each. */
function backupB(): TakeoverEngine {
  const engine = startedEngine('b');
  for (let t = 0; t <= 60; t += 10) {
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), t);
    engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), t);
    engine.tick(t);
  }
  expect(engine.groupState(0)).toBe('backup');
  return engine;
}

describe('what time decides is judged on the timer, after the whole read batch', () => {
  it("a holder's heartbeat read after another peer's, past its deadline, still counts", () => {
    const engine = backupB();
    // b's loop was busy past a's deadline (last heartbeat at 60 ms, detection
    // 30 ms); a's heartbeat waits in the socket behind c's, then the timer runs.
    const isDecision = (e: ReturnType<TakeoverEngine['tick']>[number]) => e.type === 'acquire' || (e.type === 'event' && e.event.type === 'peer-down');
    const batch = [...engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 95), ...engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 95), ...engine.tick(95)];
    expect(batch.filter(isDecision)).toEqual([]);
    expect(engine.groupState(0)).toBe('backup');
    // Silence after that: the timer declares a down.
    engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 126);
    expect(engine.tick(126).filter(isDecision).map((e) => (e.type === 'event' && e.event.type === 'peer-down' ? e.event.peer : e.type))).toContain('a');
  });

  it("a restarting home node's startup grace ends on the timer, after the holder's queued heartbeat", () => {
    const engine = startedEngine('a');
    // a's loop was busy through its startup grace (30 ms): c's and b's
    // heartbeats wait in its socket, c's first; b holds the group.
    const effects = [...engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 35), ...engine.receive(statusMessage('heartbeat', 'b', 1n, 'holding'), 35), ...engine.tick(35)];
    expect(effects.filter((e) => e.type === 'acquire')).toEqual([]);
    expect(engine.groupState(0)).toBe('backup'); // b hands it back by a make-before-break giveback
  });
});

describe('routine heartbeats', () => {

  it('a heartbeat repeating what the peer said returns nothing and keeps the plan; the failure deadline still moves', () => {
    const engine = backupB();
    expect(engine.nextDeadline(60)).toBe(70); // the wake-up at least every interval
    expect(engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 65)).toEqual([]);
    expect(engine.decided).toBe(false);
    // The timer planned before fires (70), on time: nothing is due, nobody is down.
    const downs = (effects: ReturnType<TakeoverEngine['tick']>) => effects.flatMap((e) => (e.type === 'event' && e.event.type === 'peer-down' ? [e.event.peer] : []));
    expect(downs(engine.tick(70))).toEqual([]);
    expect(engine.nextDeadline(70)).toBe(80);
    expect(downs(engine.tick(80))).toEqual([]);
    expect(engine.nextDeadline(80)).toBe(90); // c: silent since 60
    expect(downs(engine.tick(90))).toEqual(['c']);
    expect(engine.nextDeadline(90)).toBe(93); // a's holder probe: 65 + 30 − 2
    expect(downs(engine.tick(93))).toEqual([]);
    expect(engine.nextDeadline(93)).toBe(95);
    expect(downs(engine.tick(95))).toEqual(['a']);
  });

  it('a tick before anything is due decides nothing and leaves the reported status alone; a tick at a due time decides', () => {
    const engine = backupB();
    engine.nextDeadline(60);
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 65);
    engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 65);
    expect(engine.tick(70)).toEqual([]); // the wake-up at least every interval: nothing due before 93 (a's probe)
    expect(engine.decided).toBe(false); // no effects, the status as it was; the caller plans its next wake-up after every tick
    expect(engine.nextDeadline(70)).toBe(80);
    engine.tick(80);
    expect(engine.nextDeadline(80)).toBe(90);
    engine.tick(90);
    expect(engine.nextDeadline(90)).toBe(93);
    // a's holder probe is due at 93 (65 + 30 − 2): evaluated, b probes.
    expect(engine.tick(93).map((e) => e.type)).toContain('probe-holder');
    expect(engine.decided).toBe(true);
  });

  it('checkingHolder: on the member that would take over, from its probe of the silent holder until the holder is heard or its deadline decides', () => {
    const engine = backupB();
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 65);
    engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 65);
    expect(engine.checkingHolder).toBe(false);
    expect(engine.tick(93).map((e) => e.type)).toContain('probe-holder'); // 65 + 30 − 2
    expect(engine.checkingHolder).toBe(true);
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 94);
    expect(engine.checkingHolder).toBe(false);
    engine.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 110);
    engine.tick(122); // probed again: 94 + 30 − 2
    expect(engine.checkingHolder).toBe(true);
    expect(engine.tick(124).map((e) => e.type)).toContain('acquire'); // the deadline: a is down, b takes over
    expect(engine.checkingHolder).toBe(false);
    // c, not next in line, never checks the holder.
    const c = startedEngine('c');
    for (let t = 0; t <= 60; t += 10) {
      c.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), t);
      c.receive(statusMessage('heartbeat', 'b', 1n, 'standby'), t);
      c.tick(t);
    }
    c.receive(statusMessage('heartbeat', 'b', 1n, 'standby'), 85);
    c.tick(88);
    expect(c.checkingHolder).toBe(false);
  });

  it('a routine heartbeat moves the freeze reference as a re-plan would: a tick late on the armed timer but not on the last input is no freeze', () => {
    const engine = backupB();
    expect(engine.nextDeadline(60)).toBe(70);
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 69);
    expect(engine.decided).toBe(false); // the timer stays armed at 70
    // The loop runs again at 85: 15 ms after the armed timer, 16 after the last input (interval 10 + threshold 10 = 20).
    const late = (effects: ReturnType<TakeoverEngine['tick']>) => effects.filter((e) => e.type === 'event' && e.event.type === 'late-timer');
    expect(late(engine.tick(85))).toEqual([]);
    // A real freeze still shows: nothing for 40 ms after the plan made at that tick.
    engine.nextDeadline(85);
    expect(late(engine.tick(125))).toHaveLength(1);
  });

  it('anything new is not routine: status, pinning, health, interval, incarnation, a peer coming up', () => {
    const changes: [string, Extract<PeerMessage, { kind: 'heartbeat' | 'leave' }>][] = [
      ['status', statusMessage('heartbeat', 'a', 1n, 'releasing')],
      ['pinned', { ...statusMessage('heartbeat', 'a', 1n, 'holding'), groups: [{ index: 0, status: 'holding', pinned: true }] }],
      ['health', { ...statusMessage('heartbeat', 'a', 1n, 'holding'), health: 'draining' }],
      ['interval', { ...statusMessage('heartbeat', 'a', 1n, 'holding'), intervalMs: 20 }],
      ['incarnation', statusMessage('heartbeat', 'a', 2n, 'holding')],
      ['groups', statusMessage('heartbeat', 'a', 1n, undefined)],
    ];
    for (const [what, message] of changes) {
      const engine = backupB();
      engine.receive(message, 65);
      expect(engine.decided, what).toBe(true);
    }
    // A peer heard for the first time, or back after being down.
    const engine = backupB();
    engine.tick(100); // a silent since 60: down
    expect(engine.status().peers.find((p) => p.id === 'a')!.alive).toBe(false);
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 101);
    expect(engine.decided).toBe(true);
    // A routine one after that is routine again; a release never is.
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 111);
    expect(engine.decided).toBe(false);
    engine.receive({ kind: 'release', from: 'a', group: 0, target: 'b', pinned: false, digestMatches: true }, 112);
    expect(engine.decided).toBe(true);
  });

  it('a heartbeat from a peer with something pending (its holder probe, unreachable port) is not routine', () => {
    const engine = backupB();
    engine.tick(88); // 2 ms before a's deadline (60 + 30): b probes the silent holder
    engine.receive(statusMessage('heartbeat', 'a', 1n, 'holding'), 89);
    expect(engine.decided).toBe(true);
    const other = backupB();
    other.peerUnreachable('c', 75); // c silent since 60: its port is closed
    other.receive(statusMessage('heartbeat', 'c', 1n, 'standby'), 76);
    expect(other.decided).toBe(true);
  });
});

describe('config mismatch', () => {
  it('is reported and the peer is not acted upon', () => {
    const sim = new Simulation(threeNodeConfig());
    sim.mismatch('c');
    sim.startAll();
    sim.run(SETTLE);
    expect(sim.eventsOf('config-mismatch').map((e) => `${e.node}<${(e.event as { peer: string }).peer}`).sort()).toEqual(['a<c', 'b<c']);
    sim.crash('a');
    sim.crash('b');
    sim.run(100);
    // c acts on its own view (its peers are mismatched for it too? no: a and b look fine to c), a and b never counted c.
    expect(sim.node('a').engine.status().peers.find((p) => p.id === 'c')!.digestMatches).toBe(false);
  });
});

describe('engine construction and status', () => {
  it('refuses a node that is not in the cluster', () => {
    const cluster = validateCluster(threeNodeConfig());
    expect(() => new TakeoverEngine({ self: 'x', cluster, detectorFactory: () => new FixedTimeoutDetector() })).toThrow(/node "x" is not in the cluster/);
  });

  it('reports status and the next deadline', () => {
    const sim = settled();
    const status = sim.node('a').engine.status();
    expect(status).toMatchObject({ node: 'a', health: 'healthy', groups: [{ name: 'web', state: 'active', holder: 'a', pinned: false }] });
    expect(status.peers.map((p) => p.alive)).toEqual([true, true]);
    expect(sim.node('b').engine.status().groups[0]!.holder).toBe('a');
    expect(sim.node('a').engine.nextDeadline()).toBeGreaterThan(sim.now);
    expect(() => sim.node('a').engine.drain(-1, sim.now)).toThrow(/grace period must be ≥ 0 ms, got -1/);
  });
});

describe('restart with adopted addresses (config reload)', () => {
  it('keeps a group it already holds when no peer took it', () => {
    const sim = settled();
    const before = sim.node('a').engine.status().groups[0]!.state;
    expect(before).toBe('active');
    // A new engine for a (new process after SIGHUP) adopts group 0 instead of deleting it.
    const cluster = validateCluster(threeNodeConfig());
    const engine = new TakeoverEngine({ self: 'a', cluster, detectorFactory: () => new FixedTimeoutDetector({ misses: 3, intervalMs: 10 }) });
    const effects = engine.start(sim.now, [0]);
    expect(effects.filter((e) => e.type === 'release')).toEqual([]);
    expect(engine.groupState(0)).toBe('verifying');
    const later = engine.tick(sim.now + 31);
    expect(later.find((e) => e.type === 'acquire')).toMatchObject({ reason: 'verified' }); // re-asserted in place: replace, no outage
    expect(engine.groupState(0)).toBe('active');
  });
});

describe('a release for a group this node holds', () => {
  it('makes the holder announce at once (the releaser may have been answering clients)', () => {
    const sim = settled();
    const before = sim.effects.length;
    sim.act('a', (e, now) => e.receive({ kind: 'release', from: 'b', group: 0, target: undefined, pinned: false, digestMatches: true }, now));
    expect(sim.effects.slice(before).map((x) => x.effect.type)).toContain('announce');
    expect(sim.holders()).toEqual(['a']);
  });
});

describe('a late port-unreachable about a restarted peer', () => {
  it('does not mark the new incarnation dead (no lasting split brain after a restart)', () => {
    const sim = settled();
    sim.crash('a');
    sim.run(50); // b took over
    sim.start('a'); // a new process: new incarnation, heartbeats flowing
    sim.run(5);
    // The ICMP error about the old process arrives only now.
    sim.act('b', (e, now) => e.peerUnreachable('a', now));
    sim.run(SETTLE + 10);
    expect(sim.node('b').engine.status().peers.find((p) => p.id === 'a')!.alive).toBe(true);
    expect(sim.holders()).toEqual(['a']); // giveback completed
    expect(sim.doubleHolds).toEqual([]);
  });
});
