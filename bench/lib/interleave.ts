/**
 * Interleaved measurement: the contenders of a comparison run in alternating
 * blocks (their order rotated each block) instead of one after the other.
 * On this machine the speed of the same kernel loop drifts by up to 2x over
 * seconds (see the blockMedians in the results), so back-to-back runs would
 * compare different machine states; interleaved blocks expose every
 * contender to the same states, and per-block ratios cancel the drift.
 */
import { busyShare, readCpuTimes } from './cpuload.js';
import { median, trimmedMean } from './stats.js';

export interface Contender {
  id: string;
  /** Runs one block and returns its samples (ns). */
  run(block: number): Promise<number[]> | number[];
  /** Runs after each block, untimed (e.g. checks the interface is back to its starting state). */
  after?(block: number): void;
}

export interface Pooled {
  samples: number[];
  blockMedians: number[];
  blockTrimmedMeans: number[];
}

export interface Interleaved {
  pooled: Map<string, Pooled>;
  /** Busy share of all CPUs during each block (see cpuload.ts). */
  busy: number[];
}

export async function interleave(blocks: number, contenders: Contender[], log: (m: string) => void, label: string): Promise<Interleaved> {
  const out = new Map<string, Pooled>(contenders.map((c) => [c.id, { samples: [], blockMedians: [], blockTrimmedMeans: [] }]));
  const busy: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const start = readCpuTimes();
    const order = contenders.map((_, i) => contenders[(i + b) % contenders.length]!);
    for (const c of order) {
      const samples = await c.run(b);
      c.after?.(b);
      const pooled = out.get(c.id)!;
      for (const s of samples) pooled.samples.push(s);
      pooled.blockMedians.push(median(samples));
      pooled.blockTrimmedMeans.push(trimmedMean(samples));
    }
    busy.push(busyShare(start, readCpuTimes()));
    log(`  ${label}: block ${b + 1}/${blocks} done (CPUs ${(busy[b]! * 100).toFixed(0)}% busy)`);
  }
  return { pooled: out, busy };
}

/** Median over blocks of a/b block trimmed means (both from the same interleaved run). */
export function pairedRatio(a: Pooled, b: Pooled): number {
  const n = Math.min(a.blockTrimmedMeans.length, b.blockTrimmedMeans.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(a.blockTrimmedMeans[i]! / b.blockTrimmedMeans[i]!);
  return median(r);
}

/** The two ratios of pooled samples: medians, and trimmed means. */
export function pooledRatios(a: Pooled, b: Pooled): { value: number; trimmedMean: number; paired: number } {
  return { value: median(a.samples) / median(b.samples), trimmedMean: trimmedMean(a.samples) / trimmedMean(b.samples), paired: pairedRatio(a, b) };
}
