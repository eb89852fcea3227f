#!/usr/bin/env node
// `npm test`: builds what the tests load, runs vitest, and enforces the
// project's rules on the result.
// - Not root: re-runs itself inside an unprivileged user+network namespace
//   (`unshare -rn`) so kernel tests can create their own namespaces; says why
//   when that is impossible.
// - CI=true: a skipped test fails the run (no kernel test may skip in CI).
// - Ends with a plain "N passed, N failed, N skipped" line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);

if (process.getuid() !== 0 && !process.env.VIPA_IN_USERNS) {
  const probe = spawnSync('unshare', ['-rn', 'true'], { encoding: 'utf8' });
  if (probe.status === 0) {
    const r = spawnSync('unshare', ['-rn', process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, VIPA_IN_USERNS: '1' },
    });
    process.exit(r.status ?? 1);
  }
  console.warn(`not root and \`unshare -rn\` failed (${probe.stderr.trim()}): kernel tests will be skipped`);
}

const run = (cmd, cmdArgs) => {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(join(root, 'build/Release/vipa.node')) && !existsSync(join(root, 'prebuilds'))) run('npx', ['node-gyp', 'rebuild']);
run('npx', ['tsc', '-p', 'tsconfig.build.json']);
run('node', ['scripts/write-esm-entry.mjs']);

const outDir = mkdtempSync(join(tmpdir(), 'vipa-test-'));
const jsonFile = join(outDir, 'results.json');
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`, ...args], {
  stdio: 'inherit',
  cwd: root,
});
let passed = 0;
let failed = 0;
let skipped = 0;
const skippedNames = [];
if (existsSync(jsonFile)) {
  const report = JSON.parse(readFileSync(jsonFile, 'utf8'));
  passed = report.numPassedTests;
  failed = report.numFailedTests;
  for (const file of report.testResults) {
    for (const t of file.assertionResults) {
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') {
        skipped++;
        skippedNames.push(`${file.name.replace(root, '')}: ${t.fullName}`);
      }
    }
  }
}
rmSync(outDir, { recursive: true, force: true });
let status = r.status ?? 1;
if (process.env.CI && skipped > 0) {
  console.error(`CI=true: ${skipped} test(s) skipped, which CI does not allow:\n  ${skippedNames.join('\n  ')}`);
  status = 1;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status);
