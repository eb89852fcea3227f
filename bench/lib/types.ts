/**
 * The contract between scripts/run-bench.mjs and the suites in bench/suites/.
 *
 * A suite is a module exporting `suite: Suite`. The runner calls `run()` once,
 * inside the bench's private network namespace, and writes what it returns to
 * bench/results/<date>-<name>.{json,md}. Every figure in a result must come
 * from the run that produced it.
 */

/** Descriptive statistics of one set of samples, in nanoseconds. */
export interface Stats {
  samples: number;
  median: number;
  mean: number;
  /** Mean of the samples ≤ p99 (stats.ts). */
  trimmedMean: number;
  p75: number;
  p99: number;
  min: number;
  max: number;
}

/** One measured line of a report. */
export interface Row {
  /** Stable key, referenced by ratios (e.g. 'v4.pair.sync'). */
  id: string;
  /** Table section (e.g. 'IPv4 /32 add+delete pair'). */
  group: string;
  /** What was measured (e.g. 'vipa addrAddSync + addrDelSync'). */
  label: string;
  /** Who timed it: 'tinybench' or 'C floor'. */
  source: string;
  /** What one sample is (e.g. 'pair', 'add of 1000 addresses'). */
  unit: string;
  stats: Stats;
  /** Items per sample (addresses per batch), for a per-item figure. */
  items?: number;
  /** Per-block medians in run order (interleaved suites): shows drift. */
  blockMedians?: number[];
  /** Per-block trimmed means in run order. */
  blockTrimmedMeans?: number[];
  /**
   * On-CPU time of the measuring thread per item (ns), warmup included:
   * excludes the time it was preempted, so kernel work run by kworkers on
   * the same CPU does not count, but cache refills after it do.
   */
  threadCpuPerItem?: number;
  /** Involuntary context switches of the measuring thread per item. */
  switchesPerItem?: number;
  note?: string;
}

/** A comparison of two rows' medians. */
export interface Ratio {
  id: string;
  label: string;
  /** Row ids. */
  numerator: string;
  denominator: string;
  /** numerator median / denominator median. */
  value: number;
  /** numerator trimmed mean / denominator trimmed mean. */
  trimmedMean: number;
  /**
   * Median over blocks of (numerator block trimmed mean / denominator block
   * trimmed mean), when both ran interleaved in the same blocks: robust to
   * machine-speed drift during the run.
   */
  paired?: number;
  /** Ratio of thread CPU time per item, when both rows have it. */
  threadCpu?: number;
  /** Upper bound the project aims for; absent for reference comparisons. */
  target?: number;
  pass?: boolean;
}

export interface SuiteResult {
  /** File name part: bench/results/<date>-<name>.json. */
  name: string;
  title: string;
  /** Parameters of the run (iterations, addresses, interface...). */
  config: Record<string, unknown>;
  rows: Row[];
  ratios: Ratio[];
  /** Method notes printed under the tables. */
  notes: string[];
  /**
   * Extra markdown sections, printed before the row tables: for
   * results that a row of latency statistics does not fit (side-by-side
   * tables, pass/miss lists, a chart). They are part of the JSON too; a suite
   * whose raw data is too long for the config writes it to a file of its own
   * beside the report and names it in the config.
   */
  sections?: { title: string; markdown: string }[];
}

export interface SuiteContext {
  /** --quick: fewer iterations, the whole bench in under a minute. */
  quick: boolean;
  /** Repository root (absolute, with trailing slash). */
  root: string;
  /** bench/.build/ (gitignored): compiled helpers and scratch files. */
  buildDir: string;
  /** Progress output (stderr). */
  log: (message: string) => void;
}

export interface Suite {
  name: string;
  title: string;
  run(ctx: SuiteContext): Promise<SuiteResult>;
}
