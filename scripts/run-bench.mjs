#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --suite NAME] [-- --check] [-- --rebuild]`
//
// 1. Makes sure what the suites load is built: the addon (node-gyp) when
//    build/Release/vipa.node is missing or older than native/ or binding.gyp,
//    and dist/ (npm run build:ts) when missing or older than lib/.
// 2. Re-executes itself in a fresh network namespace: `unshare -n` as root,
//    `unshare -rn` (user + network namespace) otherwise. The suites create
//    their interfaces there; the namespace, and everything in it, goes away
//    when the bench process exits, however it exits. The caller's own
//    namespace is never touched: the suites refuse to run unless their
//    namespace differs from the one this script started in.
// 3. Inside, runs bench/suites/*.ts in order (bench/lib/runner.ts) under
//    tsx, and writes bench/results/<date>-<suite>.{json,md} and latest.md
//    (--quick: bench/.build/results-quick/<date>-<suite>-quick.{json,md},
//    outside the repository; latest.md untouched).
//
// The whole inner run is bounded: killed after 3 minutes (--quick) or 20
// minutes (full), or as soon as this script is interrupted.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);

function usage(status) {
  (status === 0 ? console.log : console.error)(
    'usage: npm run bench [-- [--quick] [--suite NAME]... [--check] [--rebuild | --no-build]]\n' +
      '  --quick      fewer iterations (under a minute); results go to bench/.build/results-quick/\n' +
      '  --suite N    run only suite N (bench/suites/N.ts); repeatable\n' +
      '  --check      exit 1 when a ratio misses its target\n' +
      '  --rebuild    rebuild the addon and dist/ even when they look current\n' +
      '  --no-build   use the addon and dist/ as they are (e.g. while lib/ does not compile)',
  );
  process.exit(status);
}

const options = { quick: false, check: false, rebuild: false, noBuild: false, only: [] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') options.quick = true;
  else if (a === '--check') options.check = true;
  else if (a === '--rebuild') options.rebuild = true;
  else if (a === '--no-build') options.noBuild = true;
  else if (a === '--suite' && argv[i + 1]) options.only.push(argv[++i]);
  else if (a.startsWith('--suite=')) options.only.push(a.slice('--suite='.length));
  else if (a === '--help' || a === '-h') usage(0);
  else {
    console.error(`unknown argument ${a}`);
    usage(2);
  }
}

if (process.env.VIPA_BENCH_INNER) {
  // ---- inside the bench's namespace --------------------------------------------
  const { runSuites } = await import('../bench/lib/runner.ts');
  process.exit(await runSuites({ root, ...options }));
}

// ---- outside: build, then re-execute in a private namespace ----------------------

/** Newest mtime (ms) of the files under `dir` whose names pass `filter`; 0 when none. */
function newest(dir, filter) {
  let t = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !filter(entry.name)) continue;
    t = Math.max(t, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return t;
}

function mtime(file) {
  return existsSync(file) ? statSync(file).mtimeMs : 0;
}

function run(cmd, args) {
  console.error(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, timeout: 600_000 });
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
    process.exit(1);
  }
}

const addon = join(root, 'build/Release/vipa.node');
const distEntry = join(root, 'dist/index.mjs'); // written last by build:ts
if (options.rebuild && options.noBuild) usage(2);
if (options.noBuild) {
  for (const f of [addon, distEntry]) {
    if (!existsSync(f)) {
      console.error(`--no-build: ${f} is missing; build first (npx node-gyp rebuild && npm run build:ts)`);
      process.exit(1);
    }
  }
} else {
  const nativeSources = Math.max(newest(join(root, 'native'), () => true), mtime(join(root, 'binding.gyp')));
  if (options.rebuild || mtime(addon) < nativeSources) run('npx', ['node-gyp', 'rebuild']);
  const tsSources = Math.max(
    newest(join(root, 'lib'), (n) => n.endsWith('.ts')),
    mtime(join(root, 'tsconfig.json')),
    mtime(join(root, 'tsconfig.build.json')),
  );
  if (options.rebuild || mtime(distEntry) < tsSources) run('npm', ['run', 'build:ts']);
}

const isRoot = process.getuid() === 0;
const unshareArgs = isRoot ? ['--net'] : ['--map-root-user', '--net'];
if (!isRoot) {
  const probe = spawnSync('unshare', [...unshareArgs, 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) {
    console.error(
      `the bench needs a network namespace of its own, and \`unshare -rn\` failed (${probe.stderr?.trim() || probe.error?.message}).\n` +
        'Run it as root, or enable unprivileged user namespaces (kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0).',
    );
    process.exit(1);
  }
}

const limitMs = options.quick ? 180_000 : 1_200_000;
// --kill-child: unshare runs the bench as its child with PR_SET_PDEATHSIG, so
// killing unshare (on timeout or when this script is interrupted) kills the
// bench too, and with the bench goes its namespace.
const child = spawn('unshare', ['--kill-child=SIGKILL', ...unshareArgs, '--', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), ...argv], {
  stdio: 'inherit',
  cwd: root, // `--import tsx` resolves tsx from here
  env: {
    ...process.env,
    VIPA_BENCH_INNER: '1',
    VIPA_BENCH_OUTER_NETNS: readlinkSync('/proc/self/ns/net'),
    VIPA_BENCH_PRIVILEGE: isRoot ? 'root, private network namespace (unshare -n)' : 'unprivileged, user + network namespace (unshare -rn)',
  },
});
let reason;
const stop = (why) => {
  reason ??= why;
  child.kill('SIGKILL');
};
const timer = setTimeout(() => stop(`bench killed after ${limitMs / 1000} s`), limitMs);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(`bench interrupted (${sig})`));
child.on('error', (e) => stop(`cannot start the bench: ${e.message}`));
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (reason) console.error(reason);
  process.exit(reason ? 1 : code ?? (signal ? 1 : 0));
});
