/** Statistics over samples in nanoseconds, computed the same way for every source. */
import type { Stats } from './types.js';

/** Quantile with linear interpolation between closest ranks (tinybench's and netlink_floor.c's method). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('no samples');
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    samples: sorted.length,
    median: quantile(sorted, 0.5),
    mean: sum / sorted.length,
    trimmedMean: trimmedMeanSorted(sorted),
    p75: quantile(sorted, 0.75),
    p99: quantile(sorted, 0.99),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

/**
 * Mean of the samples at or below the 99th percentile: the average cost with
 * rare outliers (GC pauses, preemption by other processes) dropped. Unlike
 * the median it does not jump between the modes of a bimodal distribution
 * (see the IPv4 pair notes), and unlike the plain mean one 5 ms pause in
 * 20000 samples does not move it.
 */
function trimmedMeanSorted(sorted: Float64Array): number {
  const cut = quantile(sorted, 0.99);
  let sum = 0;
  let n = 0;
  for (const v of sorted) {
    if (v > cut) break;
    sum += v;
    n++;
  }
  return sum / n;
}

export function trimmedMean(values: readonly number[]): number {
  return trimmedMeanSorted(Float64Array.from(values).sort());
}

export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5);
}

/** Formats nanoseconds for a table: 15.2 µs, 4.31 ms, 1.07 s. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}
