/**
 * The published package, end to end: `npm pack` from a clean copy of the
 * sources (so prepack must build dist/ and the prebuild itself), then
 * `npm install <tarball>` into an empty project with a PATH that holds no
 * compiler, then CommonJS and ESM consumers that open a socket in a
 * throwaway namespace. This is what a user on a machine without a toolchain
 * gets, so it must work from the prebuilt Node-API binary alone.
 *
 * Packing happens in a copy, not in the checkout: prepack runs
 * `node-gyp rebuild` (via prebuildify), which deletes build/ while other
 * test files may be loading build/Release/vipa.node.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { createHost, type TestHost } from '../helpers/netns.js';

const repo = join(__dirname, '..', '..');

/** Build output and installs: everything else in the tree is copied. */
const EXCLUDED = new Set(['node_modules', '.git', 'build', 'dist', 'prebuilds', '.vitest-cache', 'bench/.build']);

/**
 * Environment for child npm/node processes: ours minus the npm_* variables
 * that `npm test` exported (npm_config_local_prefix would point npm at the
 * checkout, and inherited config would not be "default settings").
 */
function cleanEnv(path: string, keep: string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.includes(k)) continue;
    if (k === 'INIT_CWD' || k === 'NODE_OPTIONS' || k.startsWith('VITEST')) continue;
    env[k] = v;
  }
  env.PATH = path;
  return env;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function mustRun(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  const r = run(cmd, args, cwd, env);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

let work: string;
let tarball: string;
let tarEntries: string[];
let project: string;
let installed: string;
/** PATH with node, npm, npx and sh only: no cc, c++, make, cmake, python. */
let bareBin: string;
let bareEnv: NodeJS.ProcessEnv;

describe('npm package', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'vipa-pack-'));

    // 1. Pack from a clean copy of the sources, node_modules shared by symlink.
    const src = join(work, 'src');
    cpSync(repo, src, {
      recursive: true,
      filter: (from) => {
        const rel = from.slice(repo.length).replace(/^\/+/, '');
        return !EXCLUDED.has(rel) && !rel.endsWith('.tgz');
      },
    });
    symlinkSync(join(repo, 'node_modules'), join(src, 'node_modules'));
    const packDir = join(work, 'pack');
    mkdirSync(packDir);
    // prepack builds the prebuild with node-gyp, which must use local Node
    // headers rather than download them (no network in CI or under
    // `unshare -rn`): keep npm_config_nodedir, or point it at this Node's
    // headers when nothing set it.
    const packEnv = cleanEnv(process.env.PATH ?? '', ['npm_config_nodedir']);
    const prefix = join(process.execPath, '..', '..');
    if (!packEnv.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) packEnv.npm_config_nodedir = prefix;
    mustRun('npm', ['pack', '--pack-destination', packDir], src, packEnv);
    const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    expect(tgz).toHaveLength(1);
    tarball = join(packDir, tgz[0]!);
    tarEntries = mustRun('tar', ['-tzf', tarball], work, process.env).split('\n').filter(Boolean);

    // 2. A PATH without a toolchain. sh is there because npm runs every
    // lifecycle script through it; it compiles nothing.
    bareBin = join(work, 'bin');
    mkdirSync(bareBin);
    const which = (name: string) => mustRun('sh', ['-c', `command -v ${name}`], work, process.env).trim();
    symlinkSync(process.execPath, join(bareBin, 'node'));
    symlinkSync(which('npm'), join(bareBin, 'npm'));
    symlinkSync(which('npx'), join(bareBin, 'npx'));
    symlinkSync('/bin/sh', join(bareBin, 'sh'));
    bareEnv = cleanEnv(bareBin);

    // 3. Install into an empty project with default npm settings (npm 11's
    // install-script policy untouched). --prefer-offline: vipa's
    // dependencies come from the local cache that our own `npm ci` filled,
    // so this also works inside `unshare -rn`, which has no network.
    project = join(work, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'vipa-consumer', version: '1.0.0', private: true }));
    mustRun(join(bareBin, 'npm'), ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project, bareEnv);
    installed = join(project, 'node_modules', 'vipa');
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the tarball holds the prebuild, dist, types and native sources, and no build output', () => {
    const files = tarEntries.map((e) => e.replace(/^package\//, ''));
    // One Node-API binary (no ABI tag) for every Node >= 20, tagged glibc so
    // node-gyp-build on musl skips it and builds from source instead.
    const prebuilds = files.filter((f) => f.startsWith('prebuilds/'));
    expect(prebuilds).toEqual(['prebuilds/linux-x64/vipa.glibc.node']);
    for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'binding.gyp', 'package.json', 'native/addon.cc', 'native/socket.cc', 'native/netns.cc']) {
      expect(files).toContain(f);
    }
    const unwanted = files.filter((f) => /^(build|node_modules|test|lib|bench|scripts|\.ci)\//.test(f) || f.endsWith('.tgz'));
    expect(unwanted).toEqual([]);
    // A stripped x64 addon plus JS is well under a megabyte; more means something big slipped in.
    expect(statSync(tarball).size).toBeLessThan(1 << 20);
  });

  test('the prebuild is an x86-64 ELF shared object', () => {
    const prebuild = join(installed, 'prebuilds', 'linux-x64');
    const [file] = readdirSync(prebuild).filter((f) => f.endsWith('.node'));
    const elf = readFileSync(join(prebuild, file!));
    expect(elf.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(elf.readUInt16LE(16)).toBe(3); // ET_DYN
    expect(elf.readUInt16LE(18)).toBe(62); // EM_X86_64
  });

  test('the install PATH has no compiler, and the install built nothing', () => {
    for (const tool of ['cc', 'gcc', 'c++', 'g++', 'clang', 'make', 'cmake', 'python3']) {
      const r = run('/bin/sh', ['-c', `command -v ${tool}`], work, bareEnv);
      expect(r.status, `${tool} is reachable: ${r.stdout.trim()}`).not.toBe(0);
    }
    expect(existsSync(join(installed, 'build'))).toBe(false);
    // node-gyp-build (the loader lib/native.ts uses) resolves to the shipped prebuild.
    const resolved = mustRun(join(bareBin, 'node'), ['-p', `require('node-gyp-build').path(${JSON.stringify(installed)})`], project, bareEnv).trim();
    expect(resolved.startsWith(join(installed, 'prebuilds', 'linux-x64') + '/')).toBe(true);
  });

  test('package.json declares engines, os and typed exports', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(pkg.engines).toEqual({ node: '>=20' });
    expect(pkg.os).toEqual(['linux']);
    expect(pkg.types).toBe('./dist/index.d.ts');
    expect(existsSync(join(installed, 'dist', 'index.d.ts'))).toBe(true);
  });

  test('the declarations type-check in an ESM and a CommonJS consumer', () => {
    const body = (importLine: string) =>
      [
        importLine,
        'const nl = new Netlink();',
        'const links: Link[] = nl.linkListSync();',
        'export const name: string = links[0]!.name;',
        // Fails to compile if the declarations are missing or degrade to `any`.
        '// @ts-expect-error name is a string',
        'export const wrong: number = links[0]!.name;',
        'nl.close();',
        '',
      ].join('\n');
    writeFileSync(join(project, 'types-esm.mts'), body("import { Netlink, type Link } from 'vipa';"));
    writeFileSync(join(project, 'types-cjs.cts'), body("import { Netlink, type Link } from 'vipa';\nimport vipa = require('vipa');\nexport const ctor: typeof Netlink = vipa.Netlink;"));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(repo, 'node_modules', '@types')],
        },
        files: ['types-esm.mts', 'types-cjs.cts'],
      }),
    );
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = run(process.execPath, [tsc, '-p', project], project, bareEnv);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  describe.skipIf(skipKernelTests())('in a network namespace', () => {
    let host: TestHost;
    beforeAll(async () => {
      host = await createHost('pkg');
    });
    afterAll(async () => {
      await host?.destroy();
    });

    // Prints the link names seen through the package's Netlink inside the namespace given as argv[2].
    test('CommonJS: require("vipa") lists the namespace links', () => {
      writeFileSync(
        join(project, 'check.cjs'),
        [
          "const { Netlink, VipaError } = require('vipa');",
          'const nl = new Netlink({ netns: process.argv[2] });',
          'const names = nl.linkListSync().map((l) => l.name);',
          'nl.close();',
          "if (typeof VipaError !== 'function') throw new Error('VipaError missing');",
          'console.log(JSON.stringify(names));',
          '',
        ].join('\n'),
      );
      const out = mustRun(join(bareBin, 'node'), ['check.cjs', host.netns], project, bareEnv);
      // Only lo: seeing the host's links would mean the namespace was not entered.
      expect(JSON.parse(out)).toEqual(['lo']);
    });

    test('ESM: import { Netlink } from "vipa" lists the namespace links (async, on the event loop)', () => {
      writeFileSync(
        join(project, 'check.mjs'),
        [
          "import { Netlink } from 'vipa';",
          "import vipa from 'vipa';",
          // One module instance for both entry points (dist/index.mjs re-exports the CommonJS build).
          "if (vipa.Netlink !== Netlink) throw new Error('ESM and CommonJS exports differ');",
          'const nl = new Netlink({ netns: process.argv[2] });',
          'const names = (await nl.linkList()).map((l) => l.name);',
          'nl.close();',
          'console.log(JSON.stringify(names));',
          '',
        ].join('\n'),
      );
      const out = mustRun(join(bareBin, 'node'), ['check.mjs', host.netns], project, bareEnv);
      expect(JSON.parse(out)).toEqual(['lo']);
    });
  });
});
