/**
 * The inside of `npm run bench`, loaded by scripts/run-bench.mjs once it runs
 * in the bench's private network namespace: runs the suites of
 * bench/suites/*.ts in order and writes their reports.
 *
 * Adding a suite: create bench/suites/<name>.ts exporting `suite: Suite`
 * (bench/lib/types.ts); list it in SUITE_ORDER to fix its place, otherwise
 * it runs after the listed ones, alphabetically.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suiteMarkdown, type MachineInfo, type Report } from './report.js';
import type { Suite } from './types.js';

/** Cheap and kernel-level first; the multi-host suites (once written) after. */
const SUITE_ORDER = ['netlink', 'announce', 'failover'];

export interface RunOptions {
  root: string;
  quick: boolean;
  /** Only these suites (names); all when empty. */
  only: string[];
  /** Exit status 1 when a ratio misses its target. */
  check: boolean;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function tryRun(cmd: string, args: string[], cwd: string): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

function machineInfo(root: string): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim();
  const osRelease = tryRun('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], root) ?? 'unknown';
  const commit = tryRun('git', ['rev-parse', '--short', 'HEAD'], root);
  const dirty = tryRun('git', ['status', '--porcelain', '--', 'lib', 'native', 'binding.gyp'], root);
  return {
    date: new Date().toISOString(),
    cpu: mhz ? `${model} (${Math.round(Number(mhz))} MHz)` : model,
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    os: osRelease,
    privilege: process.env.VIPA_BENCH_PRIVILEGE ?? 'unknown',
    vipaCommit: commit ? `${commit}${dirty ? ' + uncommitted changes in lib/ or native/' : ''}` : 'unknown (no git)',
  };
}

function discover(root: string): string[] {
  const names = readdirSync(join(root, 'bench/suites'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3));
  const rank = (n: string) => (SUITE_ORDER.includes(n) ? SUITE_ORDER.indexOf(n) : SUITE_ORDER.length);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export async function runSuites(options: RunOptions): Promise<number> {
  const { root, quick } = options;
  const buildDir = join(root, 'bench/.build');
  // Quick runs are smoke tests: their results stay out of the repository (bench/.build is gitignored).
  const resultsDir = quick ? join(buildDir, 'results-quick') : join(root, 'bench/results');
  mkdirSync(buildDir, { recursive: true });
  mkdirSync(resultsDir, { recursive: true });
  let names = discover(root);
  if (options.only.length > 0) {
    const unknown = options.only.filter((n) => !names.includes(n));
    if (unknown.length > 0) throw new Error(`no suite ${unknown.join(', ')} in bench/suites (have: ${names.join(', ')})`);
    names = names.filter((n) => options.only.includes(n));
  }
  const machine = machineInfo(root);
  const day = machine.date.slice(0, 10);
  const suffix = quick ? '-quick' : '';
  const mds: string[] = [];
  let status = 0;
  for (const name of names) {
    const started = Date.now();
    log(`suite ${name}${quick ? ' (quick)' : ''}`);
    try {
      const mod = (await import(pathToFileURL(join(root, 'bench/suites', `${name}.ts`)).href)) as { suite?: Suite };
      if (!mod.suite || typeof mod.suite.run !== 'function') throw new Error(`bench/suites/${name}.ts does not export \`suite\``);
      const result = await mod.suite.run({ quick, root, buildDir, log });
      const report: Report = { ...result, machine };
      const base = join(resultsDir, `${day}-${result.name}${suffix}`);
      writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
      const md = suiteMarkdown(report);
      writeFileSync(`${base}.md`, md);
      mds.push(md);
      log(`suite ${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s, wrote ${base}.{json,md}`);
      process.stdout.write(`\n${md}\n`);
      const missed = result.ratios.filter((r) => r.pass === false);
      for (const r of missed) log(`  target missed: ${r.label} = ${r.value.toFixed(2)} (target ≤ ${r.target})`);
      if (options.check && missed.length > 0) status = 1;
    } catch (e) {
      log(`suite ${name} failed: ${(e as Error).stack ?? String(e)}`);
      status = 1;
    }
  }
  if (!quick && mds.length > 0) {
    // latest.md: this run's reports, one after the other (a copy of the one report when one suite ran).
    writeFileSync(join(resultsDir, 'latest.md'), mds.join('\n'));
    log(`wrote ${join(resultsDir, 'latest.md')}`);
  }
  return status;
}
