/**
 * Failure detectors: from heartbeat arrival times, decide whether a peer is
 * still alive. Pure: every method takes the current time (ms, on any
 * monotonic clock the caller chooses); nothing here reads a clock or sets a
 * timer.
 *
 * Two detectors share one interface:
 * - {@link FixedTimeoutDetector}: down after `misses` of the peer's advertised
 *   heartbeat intervals without a heartbeat — the VRRP way (RFC 5798 §6.1:
 *   Master_Down_Interval = 3 × Advertisement_Interval + skew), predictable
 *   and easy to reason about.
 * - {@link PhiAccrualDetector}: Hayashibara, Défago, Yared, Katayama, "The φ
 *   Accrual Failure Detector" (SRDS 2004): it learns the distribution of
 *   inter-arrival times and reports a suspicion level φ; it adapts to a
 *   jittery network instead of needing a hand-tuned timeout.
 *
 * Both expose {@link FailureDetector.deadline}: the time at which the peer
 * will be declared down if nothing arrives before, so the caller arms one
 * timer per peer (re-armed on each heartbeat) instead of polling.
 */

/** What every failure detector offers. Times are ms on the caller's monotonic clock. */
export interface FailureDetector {
  /**
   * Records a heartbeat that arrived at `now`. `intervalMs` is the interval the
   * peer advertises in its heartbeats (when known).
   */
  heartbeat(now: number, intervalMs?: number): void;
  /** True while the peer is considered alive: exactly when `now < deadline(now)`. */
  isAvailable(now: number): boolean;
  /** How suspect the peer is at `now` (0 = just heard from it; grows with silence). */
  suspicion(now: number): number;
  /**
   * The time at which the peer is (or was) declared down if no heartbeat
   * arrives. Never heard from (and no `since`): returns `now`, i.e. down.
   */
  deadline(now: number): number;
  /** Time of the last heartbeat, or undefined before the first. */
  readonly lastHeartbeat: number | undefined;
  /** Forgets all history (e.g. the peer restarted with a new incarnation). */
  reset(): void;
}

function checkPositive(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${field} ${String(value)} is not a positive number`);
  }
}

function checkNonNegative(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${field} ${String(value)} is not a non-negative number`);
  }
}

function checkTime(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`${field} ${String(value)} is not a finite time in ms`);
}

// ---------------------------------------------------------------------------
// Fixed timeout

/** Options of a {@link FixedTimeoutDetector}. */
export interface FixedTimeoutDetectorOptions {
  /** Heartbeats that may be missed: down after `misses × interval` of silence (default 3, as VRRP). */
  misses?: number;
  /** Interval assumed until a heartbeat advertises one (default 100 ms). */
  intervalMs?: number;
  /** Extra slack added to the timeout, e.g. for scheduling jitter (default 0). */
  graceMs?: number;
  /**
   * Treat this time as a first heartbeat: a boot grace period, so a peer not
   * yet heard from is given one full timeout instead of being down at once.
   */
  since?: number;
}

/**
 * Down when no heartbeat arrived for `misses × interval + grace`, where the
 * interval is the one the peer last advertised (so a peer that slows its
 * heartbeats is not declared dead by a receiver that assumed the old pace).
 *
 * `suspicion(now)` is the number of intervals elapsed since the last
 * heartbeat; the peer is down once it reaches `misses` (+ grace).
 */
export class FixedTimeoutDetector implements FailureDetector {
  private readonly misses: number;
  private readonly graceMs: number;
  private readonly since: number | undefined;
  private interval: number;
  private last: number | undefined;
  private due = -Infinity;

  constructor(options: FixedTimeoutDetectorOptions = {}) {
    this.misses = options.misses ?? 3;
    this.interval = options.intervalMs ?? 100;
    this.graceMs = options.graceMs ?? 0;
    checkPositive(this.misses, 'misses');
    checkPositive(this.interval, 'intervalMs');
    checkNonNegative(this.graceMs, 'graceMs');
    if (options.since !== undefined) checkTime(options.since, 'since');
    this.since = options.since;
    this.reset();
  }

  /** The interval in use (the peer's last advertised one, or the configured default). */
  get intervalMs(): number {
    return this.interval;
  }

  get lastHeartbeat(): number | undefined {
    return this.last;
  }

  heartbeat(now: number, intervalMs?: number): void {
    checkTime(now, 'now');
    if (intervalMs !== undefined) {
      checkPositive(intervalMs, 'intervalMs');
      this.interval = intervalMs;
    }
    // A heartbeat stamped earlier than the last one (caller's clock quirk) never moves time back.
    if (this.last === undefined || now > this.last) this.last = now;
    this.due = this.last + this.misses * this.interval + this.graceMs;
  }

  isAvailable(now: number): boolean {
    return now < this.due;
  }

  suspicion(now: number): number {
    if (this.last === undefined) return Infinity;
    return Math.max(0, now - this.last) / this.interval;
  }

  deadline(now: number): number {
    return this.last === undefined ? now : this.due;
  }

  reset(): void {
    this.last = undefined;
    this.due = -Infinity;
    if (this.since !== undefined) this.heartbeat(this.since);
  }
}

// ---------------------------------------------------------------------------
// Phi accrual

/** Options of a {@link PhiAccrualDetector}. Defaults suit heartbeats every 2–100 ms. */
export interface PhiAccrualDetectorOptions {
  /**
   * φ at which the peer is declared down (default 8). φ = 8 means: were the
   * peer alive, a silence this long would happen with probability 10⁻⁸.
   */
  threshold?: number;
  /** Inter-arrival samples kept (default 200; Akka uses 1000 for 1 s heartbeats). */
  maxSampleSize?: number;
  /**
   * Floor for the standard deviation (default 2 ms). Perfectly regular
   * heartbeats give σ ≈ 0, which would make a few µs of lateness look fatal.
   */
  minStdDeviationMs?: number;
  /**
   * Pause tolerated on top of the learnt mean (default 0), as Akka's
   * `acceptable-heartbeat-pause`: covers GC pauses and bursts of loss
   * that the history has not seen.
   */
  acceptablePauseMs?: number;
  /**
   * Expected interval before any history exists (default 100 ms). The peer's
   * advertised interval, when given to {@link PhiAccrualDetector.heartbeat},
   * takes precedence.
   */
  firstHeartbeatEstimateMs?: number;
  /** Treat this time as a first heartbeat (boot grace), as for {@link FixedTimeoutDetector}. */
  since?: number;
}

// Logistic approximation of the standard normal CDF (Bowling, Khasawneh,
// Kaewkuekool, Cho, "A logistic approximation to the cumulative normal
// distribution", J. Industrial Engineering and Management 2(1), 2009):
// Φ(y) ≈ 1 / (1 + exp(−(1.5976·y + 0.070566·y³))), max error ≈ 1.4e-4. The
// same approximation Akka's PhiAccrualFailureDetector uses. Near the mean it
// matches the exact φ to 0.1 %; in the tail it overstates φ (φ = 8 is reached
// at 5.21 σ instead of 5.61 σ), i.e. it declares a peer down somewhat sooner
// than an exact normal model — thresholds tuned for Akka carry over as is.
const LOGISTIC_A = 0.070566;
const LOGISTIC_B = 1.5976;

/** z(y) = 1.5976·y + 0.070566·y³, the logistic argument. */
function logisticArgument(y: number): number {
  return y * (LOGISTIC_B + LOGISTIC_A * y * y);
}

/**
 * φ = −log10(1 − Φ(y)) with the logistic Φ, which simplifies to
 * log10(1 + e^z): computed as softplus(z) / ln 10 so it neither underflows
 * to Infinity for long silences nor loses precision near 0.
 */
function phiOf(y: number): number {
  const z = logisticArgument(y);
  const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  return softplus / Math.LN10;
}

/**
 * The y at which φ reaches `threshold`: solves log10(1 + e^z) = threshold,
 * i.e. z = ln(10^threshold − 1), then the cubic 0.070566·y³ + 1.5976·y = z
 * (monotonic, one real root) by Cardano's formula, polished by Newton.
 */
function yAtThreshold(threshold: number): number {
  const z = threshold * Math.LN10 + Math.log1p(-Math.pow(10, -threshold));
  const p = LOGISTIC_B / LOGISTIC_A;
  const q = -z / LOGISTIC_A;
  const root = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  let y = Math.cbrt(-q / 2 + root) + Math.cbrt(-q / 2 - root);
  for (let i = 0; i < 3; i++) y -= (logisticArgument(y) - z) / (LOGISTIC_B + 3 * LOGISTIC_A * y * y);
  return y;
}

/**
 * The φ accrual failure detector (Hayashibara et al., SRDS 2004), with the
 * refinements of Akka's `PhiAccrualFailureDetector`:
 *
 * - a sliding window of the last `maxSampleSize` inter-arrival times gives
 *   mean μ and standard deviation σ (floored at `minStdDeviationMs`);
 * - φ(now) = −log10(1 − Φ((now − last − μ − acceptablePause) / σ)), with Φ
 *   the normal CDF (logistic approximation, Bowling et al. 2009);
 * - the peer is down once φ ≥ `threshold`;
 * - the history is seeded from the first-heartbeat estimate (μ = estimate,
 *   samples μ ± μ/4, as Akka) so the second heartbeat is not a surprise;
 * - the inter-arrival time that ends a failure is not recorded (a long
 *   pause would skew μ and σ and blunt detection afterwards).
 *
 * Vipa addition: when the peer advertises a different heartbeat interval,
 * the history is reseeded from it — old samples describe a schedule the peer
 * no longer follows.
 *
 * φ grows monotonically with silence, so the threshold crossing time is
 * computed once per heartbeat ({@link deadline}); {@link isAvailable} is a
 * comparison against it.
 */
export class PhiAccrualDetector implements FailureDetector {
  /** The φ threshold in use. */
  readonly threshold: number;
  private readonly maxSampleSize: number;
  private readonly minStd: number;
  private readonly pause: number;
  private readonly firstEstimate: number;
  private readonly since: number | undefined;
  /** y = (elapsed − μ − pause) / σ at which φ = threshold. */
  private readonly yDown: number;
  private readonly samples: Float64Array;
  private size = 0;
  private next = 0;
  private sum = 0;
  private sumSq = 0;
  private advertised: number | undefined;
  private last: number | undefined;
  private due = -Infinity;

  constructor(options: PhiAccrualDetectorOptions = {}) {
    this.threshold = options.threshold ?? 8;
    this.maxSampleSize = options.maxSampleSize ?? 200;
    this.minStd = options.minStdDeviationMs ?? 2;
    this.pause = options.acceptablePauseMs ?? 0;
    this.firstEstimate = options.firstHeartbeatEstimateMs ?? 100;
    checkPositive(this.threshold, 'threshold');
    if (!Number.isInteger(this.maxSampleSize) || this.maxSampleSize < 2) {
      throw new RangeError(`maxSampleSize ${String(this.maxSampleSize)} is not an integer ≥ 2`);
    }
    checkPositive(this.minStd, 'minStdDeviationMs');
    checkNonNegative(this.pause, 'acceptablePauseMs');
    checkPositive(this.firstEstimate, 'firstHeartbeatEstimateMs');
    if (options.since !== undefined) checkTime(options.since, 'since');
    this.since = options.since;
    this.yDown = yAtThreshold(this.threshold);
    this.samples = new Float64Array(this.maxSampleSize);
    this.reset();
  }

  get lastHeartbeat(): number | undefined {
    return this.last;
  }

  /** Mean inter-arrival time of the history, ms (without the acceptable pause). */
  get mean(): number {
    return this.size === 0 ? this.firstEstimate : this.sum / this.size;
  }

  /** Standard deviation of the history, ms, after the `minStdDeviationMs` floor. */
  get stdDeviation(): number {
    if (this.size === 0) return Math.max(this.minStd, this.firstEstimate / 4);
    const mean = this.sum / this.size;
    const variance = Math.max(0, this.sumSq / this.size - mean * mean);
    return Math.max(this.minStd, Math.sqrt(variance));
  }

  /** Number of inter-arrival samples in the history (seed samples included). */
  get sampleCount(): number {
    return this.size;
  }

  heartbeat(now: number, intervalMs?: number): void {
    checkTime(now, 'now');
    if (intervalMs !== undefined) checkPositive(intervalMs, 'intervalMs');
    const last = this.last;
    if (last === undefined) {
      this.seed(intervalMs ?? this.firstEstimate);
      this.last = now;
    } else {
      if (intervalMs !== undefined && intervalMs !== this.advertised) {
        this.seed(intervalMs);
      } else if (now >= last && now < this.due) {
        // Akka: the first heartbeat after a failure does not enter the history.
        this.record(now - last);
      }
      if (now > last) this.last = now;
    }
    if (intervalMs !== undefined) this.advertised = intervalMs;
    this.due = this.last! + this.mean + this.pause + this.yDown * this.stdDeviation;
  }

  isAvailable(now: number): boolean {
    return now < this.due;
  }

  /** φ at `now`: Infinity before the first heartbeat (and without `since`). */
  suspicion(now: number): number {
    if (this.last === undefined) return Infinity;
    const y = (now - this.last - this.mean - this.pause) / this.stdDeviation;
    return phiOf(y);
  }

  deadline(now: number): number {
    return this.last === undefined ? now : this.due;
  }

  reset(): void {
    this.size = 0;
    this.next = 0;
    this.sum = 0;
    this.sumSq = 0;
    this.advertised = undefined;
    this.last = undefined;
    this.due = -Infinity;
    if (this.since !== undefined) this.heartbeat(this.since);
  }

  /** Replaces the history with two samples μ ± μ/4 (Akka's bootstrap). */
  private seed(estimate: number): void {
    this.size = 0;
    this.next = 0;
    this.sum = 0;
    this.sumSq = 0;
    this.record(estimate - estimate / 4);
    this.record(estimate + estimate / 4);
  }

  private record(interval: number): void {
    const n = this.maxSampleSize;
    if (this.size === n) {
      const old = this.samples[this.next]!;
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.size++;
    }
    this.samples[this.next] = interval;
    this.sum += interval;
    this.sumSq += interval * interval;
    this.next = (this.next + 1) % n;
    // Running sums drift after many add/subtract rounds: recompute once per lap.
    if (this.next === 0) {
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < this.size; i++) {
        const v = this.samples[i]!;
        sum += v;
        sumSq += v * v;
      }
      this.sum = sum;
      this.sumSq = sumSq;
    }
  }
}
