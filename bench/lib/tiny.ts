/**
 * tinybench runs that hand back raw samples, so interleaved blocks of one
 * task can be pooled. Each call is one tinybench run of one task with a
 * fixed iteration count (time budget 0: the count alone decides), its own
 * warmup, and hrtime timestamps.
 */
import { Bench, type FnHook } from 'tinybench';

export interface TinyOptions {
  iterations: number;
  warmupIterations: number;
  async: boolean;
  beforeEach?: FnHook;
  afterEach?: FnHook;
}

/** Runs `fn` under tinybench and returns its latency samples in nanoseconds (sorted). */
export async function tinySamples(name: string, fn: () => unknown, options: TinyOptions): Promise<number[]> {
  const bench = new Bench({
    name,
    time: 0,
    iterations: options.iterations,
    warmup: options.warmupIterations > 0,
    warmupIterations: options.warmupIterations,
    warmupTime: 0,
    retainSamples: true,
    timestampProvider: 'hrtimeNow',
    throws: true,
  });
  const hooks: { beforeEach?: FnHook; afterEach?: FnHook } = {};
  if (options.beforeEach) hooks.beforeEach = options.beforeEach;
  if (options.afterEach) hooks.afterEach = options.afterEach;
  bench.add(name, fn, { async: options.async, ...hooks });
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== 'completed') {
    throw new Error(`tinybench task ${name}: ${result.state}${result.state === 'errored' ? `: ${result.error.message}` : ''}`);
  }
  const samples = result.latency.samples;
  if (!samples || samples.length !== options.iterations) {
    throw new Error(`tinybench task ${name}: expected ${options.iterations} samples, got ${samples?.length ?? 0}`);
  }
  return Array.from(samples, (ms) => ms * 1e6);
}
