import { describe, expect, it } from 'vitest';
import { FixedTimeoutDetector, PhiAccrualDetector, type FailureDetector } from '../../../lib/takeover/detectors.js';

/** A fake clock driving one detector. */
function clock(start = 1_000) {
  let now = start;
  return {
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
      return now;
    },
  };
}

/** Reference standard normal upper tail 1 − Φ(y): Simpson's rule on the density over [y, y + 12]. */
function normalUpperTail(y: number): number {
  const steps = 200_000;
  const upper = y + 12;
  const h = (upper - y) / steps;
  let sum = 0;
  for (let i = 0; i <= steps; i++) {
    const x = y + i * h;
    const w = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
    sum += w * Math.exp((-x * x) / 2);
  }
  return (sum * h) / 3 / Math.sqrt(2 * Math.PI);
}

/** The invariant every detector keeps: available exactly before its deadline. */
function expectConsistent(d: FailureDetector, now: number) {
  expect(d.isAvailable(now)).toBe(now < d.deadline(now));
}

describe('FixedTimeoutDetector', () => {
  it('is down before any heartbeat', () => {
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10 });
    expect(d.lastHeartbeat).toBeUndefined();
    expect(d.isAvailable(0)).toBe(false);
    expect(d.suspicion(0)).toBe(Infinity);
    expect(d.deadline(123)).toBe(123);
  });

  it('`since` is a boot grace: one full timeout before the first heartbeat', () => {
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10, since: 500 });
    expect(d.deadline(500)).toBe(530);
    expect(d.isAvailable(529)).toBe(true);
    expect(d.isAvailable(530)).toBe(false);
  });

  it('steady arrivals: down exactly at misses × interval after the last heartbeat', () => {
    const c = clock();
    const d = new FixedTimeoutDetector({ misses: 3 });
    for (let i = 0; i < 100; i++) {
      d.heartbeat(c.advance(10), 10);
      expect(d.isAvailable(c.now)).toBe(true);
      expect(d.suspicion(c.now)).toBe(0);
    }
    const last = c.now;
    expect(d.deadline(last)).toBe(last + 30);
    expect(d.isAvailable(last + 29.999)).toBe(true);
    expect(d.suspicion(last + 15)).toBe(1.5);
    expect(d.isAvailable(last + 30)).toBe(false);
    expect(d.suspicion(last + 30)).toBe(3);
    for (const t of [last, last + 10, last + 29, last + 30, last + 31]) expectConsistent(d, t);
  });

  it('follows the interval the peer advertises', () => {
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10 });
    d.heartbeat(0);
    expect(d.deadline(0)).toBe(30);
    d.heartbeat(5, 50); // the peer slowed down
    expect(d.intervalMs).toBe(50);
    expect(d.deadline(5)).toBe(155);
    d.heartbeat(60); // no advertisement: keeps 50
    expect(d.deadline(60)).toBe(210);
  });

  it('jitter below the timeout never trips it', () => {
    const c = clock();
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10 });
    d.heartbeat(c.now, 10);
    let seed = 7;
    for (let i = 0; i < 1000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const gap = 10 + ((seed % 1000) / 1000) * 15 - 5; // 5..20 ms
      c.advance(gap);
      expect(d.isAvailable(c.now)).toBe(true);
      d.heartbeat(c.now, 10);
    }
  });

  it('a pause takes the peer down; the next heartbeat brings it back', () => {
    const d = new FixedTimeoutDetector({ misses: 2, intervalMs: 5 });
    d.heartbeat(100, 5);
    expect(d.isAvailable(109)).toBe(true);
    expect(d.isAvailable(110)).toBe(false);
    expect(d.isAvailable(5000)).toBe(false);
    d.heartbeat(5000, 5);
    expect(d.isAvailable(5000)).toBe(true);
    expect(d.deadline(5000)).toBe(5010);
  });

  it('grace adds slack', () => {
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10, graceMs: 4 });
    d.heartbeat(0);
    expect(d.deadline(0)).toBe(34);
  });

  it('a heartbeat stamped in the past does not move time back', () => {
    const d = new FixedTimeoutDetector({ misses: 3, intervalMs: 10 });
    d.heartbeat(100);
    d.heartbeat(90);
    expect(d.lastHeartbeat).toBe(100);
    expect(d.deadline(100)).toBe(130);
  });

  it('reset forgets (back to `since`, or down)', () => {
    const d = new FixedTimeoutDetector({ intervalMs: 10 });
    d.heartbeat(100);
    d.reset();
    expect(d.isAvailable(100)).toBe(false);
    const e = new FixedTimeoutDetector({ intervalMs: 10, since: 0 });
    e.heartbeat(100);
    e.reset();
    expect(e.lastHeartbeat).toBe(0);
  });

  it('validates', () => {
    expect(() => new FixedTimeoutDetector({ misses: 0 })).toThrow(/misses 0/);
    expect(() => new FixedTimeoutDetector({ intervalMs: -1 })).toThrow(/intervalMs -1/);
    expect(() => new FixedTimeoutDetector({ graceMs: Number.NaN })).toThrow(/graceMs/);
    expect(() => new FixedTimeoutDetector({ since: Infinity })).toThrow(/since/);
    const d = new FixedTimeoutDetector();
    expect(() => d.heartbeat(0, 0)).toThrow(/intervalMs 0/);
    expect(() => d.heartbeat(Number.NaN)).toThrow(/now/);
  });
});

describe('PhiAccrualDetector (Hayashibara et al. 2004)', () => {
  it('φ is −log10 of the normal upper tail (logistic approximation: exact near μ, higher in the tail)', () => {
    // A history that is exactly known: seed 100 → samples 75 and 125 → μ 100, σ 25.
    const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 100, minStdDeviationMs: 1 });
    d.heartbeat(0);
    expect(d.mean).toBe(100);
    expect(d.stdDeviation).toBe(25);
    expect(d.suspicion(100)).toBeCloseTo(Math.log10(2), 12); // y = 0: Φ = ½
    for (const y of [-2, -1, 0.5, 1, 2]) {
      const exact = -Math.log10(normalUpperTail(y));
      expect(Math.abs(d.suspicion(100 + 25 * y) - exact) / exact, `y = ${y}`).toBeLessThan(0.001);
    }
    // In the tail the logistic form overstates φ (as in Akka): φ = 8 comes at
    // y ≈ 5.21 instead of 5.61, so the detector is somewhat quicker than an
    // exact normal model would be.
    for (const y of [3, 4, 5]) {
      const exact = -Math.log10(normalUpperTail(y));
      const approx = d.suspicion(100 + 25 * y);
      expect(approx, `y = ${y}`).toBeGreaterThan(exact);
      expect((approx - exact) / exact, `y = ${y}`).toBeLessThan(0.12);
    }
    expect(d.suspicion(100 + 25 * 5.21)).toBeCloseTo(7.95, 2);
  });

  it('φ grows monotonically with silence and stays finite for very long silences', () => {
    const d = new PhiAccrualDetector();
    d.heartbeat(0, 10);
    let previous = -1;
    for (let t = 0; t <= 200; t += 0.5) {
      const phi = d.suspicion(t);
      expect(phi).toBeGreaterThanOrEqual(previous);
      previous = phi;
    }
    for (const t of [1e3, 1e6, 1e9]) {
      const phi = d.suspicion(t);
      expect(Number.isFinite(phi)).toBe(true);
      expect(phi).toBeGreaterThan(100);
    }
    expect(d.suspicion(-1e9)).toBe(0);
  });

  it('the deadline is where φ crosses the threshold', () => {
    for (const threshold of [0.5, 1, 3, 8, 12, 16]) {
      const d = new PhiAccrualDetector({ threshold, firstHeartbeatEstimateMs: 10 });
      d.heartbeat(1000, 10);
      const t = d.deadline(1000);
      expect(d.suspicion(t)).toBeCloseTo(threshold, 9);
      expect(d.suspicion(t - 1e-6)).toBeLessThan(threshold);
      expect(d.isAvailable(t - 1e-6)).toBe(true);
      expect(d.isAvailable(t)).toBe(false);
    }
  });

  it('steady arrivals: σ is floored, so the timeout is μ + y·σmin', () => {
    const c = clock();
    const d = new PhiAccrualDetector({ threshold: 8, minStdDeviationMs: 2 });
    for (let i = 0; i < 500; i++) {
      d.heartbeat(c.advance(10), 10);
      expect(d.isAvailable(c.now)).toBe(true);
    }
    expect(d.mean).toBeCloseTo(10, 9);
    expect(d.stdDeviation).toBe(2);
    const last = c.now;
    const timeout = d.deadline(last) - last;
    // φ = 8 at y ≈ 5.21 with the logistic approximation.
    expect(timeout).toBeGreaterThan(10 + 5 * 2);
    expect(timeout).toBeLessThan(10 + 5.5 * 2);
    expect(d.isAvailable(last + 15)).toBe(true);
    expect(d.isAvailable(last + 21)).toBe(false);
    expect(d.suspicion(last + 5)).toBeLessThan(0.1);
    for (const t of [last, last + 10, last + 20, last + 21, last + 30]) expectConsistent(d, t);
  });

  it('jitter: learns a wider distribution, never suspects a normal arrival, times out later', () => {
    const c = clock();
    const d = new PhiAccrualDetector({ threshold: 8, minStdDeviationMs: 0.5, maxSampleSize: 200 });
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    d.heartbeat(c.now, 10);
    let maxPhi = 0;
    for (let i = 0; i < 2000; i++) {
      c.advance(10 + (rand() - 0.5) * 12); // 4..16 ms, uniform: σ ≈ 3.5
      maxPhi = Math.max(maxPhi, d.suspicion(c.now));
      expect(d.isAvailable(c.now)).toBe(true);
      d.heartbeat(c.now, 10);
    }
    expect(maxPhi).toBeLessThan(8);
    expect(d.mean).toBeGreaterThan(9);
    expect(d.mean).toBeLessThan(11);
    expect(d.stdDeviation).toBeGreaterThan(2.8);
    expect(d.stdDeviation).toBeLessThan(4.2);
    expect(d.sampleCount).toBe(200);
    const steady = new PhiAccrualDetector({ threshold: 8, minStdDeviationMs: 0.5 });
    for (let t = 0; t <= 2000; t += 10) steady.heartbeat(t, 10);
    expect(d.deadline(c.now) - c.now).toBeGreaterThan(steady.deadline(2000) - 2000 + 10);
  });

  it('a pause takes the peer down; recovery does not record the pause in the history', () => {
    const d = new PhiAccrualDetector({ minStdDeviationMs: 1, maxSampleSize: 1000 });
    for (let t = 0; t <= 1000; t += 5) d.heartbeat(t, 5);
    const mean = d.mean;
    const samples = d.sampleCount;
    const down = d.deadline(1000);
    expect(d.isAvailable(down - 0.01)).toBe(true);
    expect(d.isAvailable(down)).toBe(false);
    expect(d.isAvailable(3000)).toBe(false);
    expect(d.suspicion(3000)).toBeGreaterThan(100);
    d.heartbeat(3000, 5); // back
    expect(d.isAvailable(3000)).toBe(true);
    expect(d.suspicion(3000)).toBeLessThan(0.01);
    expect(d.mean).toBe(mean);
    expect(d.sampleCount).toBe(samples);
    d.heartbeat(3005, 5);
    expect(d.sampleCount).toBe(samples + 1);
    expect(d.deadline(3005)).toBeCloseTo(down + 2005, 6);
  });

  it('acceptable pause shifts the deadline by exactly that much', () => {
    const a = new PhiAccrualDetector({ acceptablePauseMs: 0 });
    const b = new PhiAccrualDetector({ acceptablePauseMs: 40 });
    for (let t = 0; t <= 500; t += 10) {
      a.heartbeat(t, 10);
      b.heartbeat(t, 10);
    }
    expect(b.deadline(500) - a.deadline(500)).toBeCloseTo(40, 9);
    expect(b.suspicion(540 + 10)).toBeCloseTo(a.suspicion(510), 9);
  });

  it('seeds from the advertised interval, and reseeds when it changes', () => {
    const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 1000, minStdDeviationMs: 0.1 });
    d.heartbeat(0, 8);
    expect(d.mean).toBe(8); // samples 6 and 10
    expect(d.stdDeviation).toBe(2);
    expect(d.sampleCount).toBe(2);
    for (let t = 8; t <= 800; t += 8) d.heartbeat(t, 8);
    expect(d.sampleCount).toBe(102);
    d.heartbeat(900, 100); // the peer now sends every 100 ms
    expect(d.mean).toBe(100);
    expect(d.sampleCount).toBe(2);
    expect(d.isAvailable(1000)).toBe(true); // would be long dead on the 8 ms history
  });

  it('without an advertised interval, uses the first-heartbeat estimate', () => {
    const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 40, minStdDeviationMs: 1 });
    expect(d.mean).toBe(40);
    d.heartbeat(0);
    expect(d.mean).toBe(40);
    expect(d.stdDeviation).toBe(10);
  });

  it('the window slides: only the last maxSampleSize intervals count', () => {
    const d = new PhiAccrualDetector({ maxSampleSize: 10, minStdDeviationMs: 0.01, firstHeartbeatEstimateMs: 50 });
    let t = 0;
    d.heartbeat(t);
    for (let i = 0; i < 10; i++) d.heartbeat((t += 20));
    expect(d.sampleCount).toBe(10);
    expect(d.mean).toBeCloseTo(20, 9);
    for (let i = 0; i < 25; i++) d.heartbeat((t += 5));
    expect(d.mean).toBeCloseTo(5, 9);
    expect(d.stdDeviation).toBe(0.01);
  });

  it('stays numerically stable over a million heartbeats', () => {
    const d = new PhiAccrualDetector({ maxSampleSize: 100, minStdDeviationMs: 0.001 });
    let t = 1e9;
    d.heartbeat(t, 3);
    for (let i = 0; i < 1_000_000; i++) d.heartbeat((t += i % 2 === 0 ? 2 : 4), 3);
    expect(d.mean).toBeCloseTo(3, 9);
    expect(d.stdDeviation).toBeCloseTo(1, 9);
  });

  it('is down before any heartbeat, unless `since` is given', () => {
    const d = new PhiAccrualDetector();
    expect(d.isAvailable(0)).toBe(false);
    expect(d.suspicion(0)).toBe(Infinity);
    expect(d.deadline(77)).toBe(77);
    const e = new PhiAccrualDetector({ since: 0, firstHeartbeatEstimateMs: 10 });
    expect(e.lastHeartbeat).toBe(0);
    expect(e.isAvailable(5)).toBe(true);
    e.reset();
    expect(e.lastHeartbeat).toBe(0);
  });

  it('a heartbeat stamped in the past is ignored for the history', () => {
    const d = new PhiAccrualDetector();
    d.heartbeat(100, 10);
    d.heartbeat(110, 10);
    const n = d.sampleCount;
    d.heartbeat(105, 10);
    expect(d.sampleCount).toBe(n);
    expect(d.lastHeartbeat).toBe(110);
  });

  it('validates', () => {
    expect(() => new PhiAccrualDetector({ threshold: 0 })).toThrow(/threshold 0/);
    expect(() => new PhiAccrualDetector({ maxSampleSize: 1 })).toThrow(/maxSampleSize 1/);
    expect(() => new PhiAccrualDetector({ minStdDeviationMs: 0 })).toThrow(/minStdDeviationMs/);
    expect(() => new PhiAccrualDetector({ acceptablePauseMs: -1 })).toThrow(/acceptablePauseMs/);
    expect(() => new PhiAccrualDetector({ firstHeartbeatEstimateMs: 0 })).toThrow(/firstHeartbeatEstimateMs/);
    expect(() => new PhiAccrualDetector().heartbeat(0, -5)).toThrow(/intervalMs -5/);
  });
});
