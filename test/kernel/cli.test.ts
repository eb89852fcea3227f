/**
 * The CLI as a user runs it: two daemons started from examples/two-node.yaml
 * in their own namespaces, driven with `vipa status --json`, `vipa move`,
 * SIGHUP with a changed config, SIGTERM; the metrics endpoint scraped and
 * parsed as Prometheus text.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/cluster.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createLan, type TestHost, type TestLan } from '../helpers/netns.js';

const CLI = join(__dirname, '../../dist/cli/main.js');
const VIP = '198.51.100.100';
const run = promisify(execFile);

describe.skipIf(skipKernelTests())('vipa CLI with the two-node sample', () => {
  let lan: TestLan;
  let dir: string;
  const daemons = new Map<string, { child: ChildProcess; log: string[]; exit: Promise<number | null> }>();
  const socket = (id: string): string => join(dir, `${id}.sock`);

  /** `vipa ARGS` from the test process (control commands need no namespace: the socket is a file). */
  async function vipa(...args: string[]): Promise<{ stdout: string; code: number }> {
    try {
      const { stdout } = await run(process.execPath, [CLI, ...args]);
      return { stdout, code: 0 };
    } catch (e) {
      const err = e as { stdout: string; stderr: string; code: number };
      return { stdout: err.stdout + err.stderr, code: err.code };
    }
  }

  function holders(): string[] {
    return ['a', 'b'].filter((id) => lan.host(id).ip('-o', 'addr', 'show', 'dev', 'eth0').includes(` ${VIP}/24 `));
  }

  function start(id: string, host: TestHost): void {
    const child = host.spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'vipa.yaml'), '--node', id, '--socket', socket(id)]);
    const log: string[] = [];
    child.stdout!.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
    child.stderr!.on('data', (d: Buffer) => log.push(`stderr: ${d}`));
    daemons.set(id, { child, log, exit: new Promise((r) => child.once('exit', (code) => r(code))) });
  }

  beforeAll(async () => {
    lan = await createLan(['a', 'b', 'client']);
    dir = mkdtempSync(join(tmpdir(), 'vipa-cli-'));
    // The sample as shipped, minus the control group (no "vipa" group on a test machine).
    const sample = readFileSync(join(__dirname, '../../examples/two-node.yaml'), 'utf8');
    writeFileSync(join(dir, 'vipa.yaml'), sample.replace(/^\s*group: vipa.*\n/m, '').replace('format: human', process.env.VIPA_TEST_VERBOSE ? 'format: human\n  level: debug' : 'format: human'));
    writeFileSync(join(dir, 'vipa.key'), `${'5a'.repeat(32)}\n`, { mode: 0o600 });
    ['a', 'b', 'client'].forEach((id, i) => lan.host(id).ip('addr', 'add', `198.51.100.${i + 1}/24`, 'dev', 'eth0'));
    // The sample's health check expects a service on 127.0.0.1:8080 of each node.
    for (const id of ['a', 'b']) {
      lan.host(id).spawn(process.execPath, ['-e', "require('http').createServer((q, s) => s.end('ok')).listen(8080, '127.0.0.1')"]);
    }
    start('a', lan.host('a'));
    await waitUntil(async () => (await vipa('status', '--socket', socket('a'))).code === 0, 10_000, 'daemon a');
    start('b', lan.host('b'));
    await waitUntil(async () => (await vipa('status', '--socket', socket('b'))).code === 0, 10_000, 'daemon b');
  }, 60_000);

  afterAll(async () => {
    if (process.env.VIPA_TEST_VERBOSE) for (const [id, d] of daemons) console.log(id, d.log.join('\n'));
    for (const d of daemons.values()) if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await lan?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('status --json shows the expected holder', async () => {
    await waitUntil(() => holders().join() === 'a', 5000, 'a to hold the address');
    const { stdout, code } = await vipa('status', '--json', '--socket', socket('b'));
    expect(code, stdout).toBe(0);
    const status = JSON.parse(stdout);
    expect(status.node).toBe('b');
    expect(status.groups[0]).toMatchObject({ name: 'web', holder: 'a', state: 'backup' });
    expect(status.peers[0]).toMatchObject({ id: 'a', alive: true, digestMatches: true });
    const human = await vipa('status', '--socket', socket('a'));
    expect(human.stdout).toMatch(/group web: active, holder a/);
    expect(human.stdout).toMatch(/198\.51\.100\.100\/24 dev eth0 held here/);
  });

  it('vipa move moves the address', async () => {
    const { code } = await vipa('move', VIP, 'b', '--socket', socket('a'));
    expect(code).toBe(0);
    await waitUntil(() => holders().join() === 'b', 5000, 'b to hold the address');
    const status = JSON.parse((await vipa('status', '--json', '--socket', socket('b'))).stdout);
    expect(status.groups[0]).toMatchObject({ holder: 'b', pinned: true });
    const bad = await vipa('move', VIP, 'z', '--socket', socket('a'));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/node "z" is not a member of group "web"/);
  });

  it('metrics parse as Prometheus text', async () => {
    const script = "fetch('http://127.0.0.1:9405/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))";
    const text = lan.host('b').run(process.execPath, '-e', script);
    const families = parsePrometheus(text) as { name: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('vipa_group_held')!.metrics[0]).toMatchObject({ value: '1', labels: { group: 'web' } });
    expect(byName.get('vipa_transitions_total')!.type).toBe('COUNTER');
    expect(byName.get('vipa_transitions_total')!.metrics.some((m) => m.labels?.reason === 'manual-move')).toBe(true);
    expect(byName.get('vipa_heartbeats_received_total')!.metrics.find((m) => m.labels?.outcome === 'accepted')!.value).not.toBe('0');
    expect(byName.get('vipa_announcements_total')!.metrics[0]!.value).not.toBe('0');
    expect(byName.get('vipa_health_check_ok')!.metrics[0]).toMatchObject({ value: '1', labels: { check: 'web' } });
  });

  it('SIGHUP applies a changed config without dropping the held address', async () => {
    const file = join(dir, 'vipa.yaml');
    const text = readFileSync(file, 'utf8').replace('        - { address: 198.51.100.100/24, interface: eth0 }', '        - { address: 198.51.100.100/24, interface: eth0 }\n        - { address: 203.0.113.100/32, interface: eth0 }');
    writeFileSync(file, text);
    // Both daemons reload (a changed cluster config must match on every node).
    for (const id of ['a', 'b']) daemons.get(id)!.child.kill('SIGHUP');
    await waitUntil(() => lan.host('b').ip('-o', 'addr', 'show', 'dev', 'eth0').includes('203.0.113.100/32'), 5000, 'the new address on b');
    expect(holders()).toEqual(['b']);
    const log = daemons.get('b')!.log.join('\n');
    expect(log).toMatch(/SIGHUP: applying the new config/);
    // The address that stayed was never released on b.
    const afterHup = log.slice(log.indexOf('SIGHUP'));
    expect(afterHup).not.toMatch(/active → backup/);
    const status = JSON.parse((await vipa('status', '--json', '--socket', socket('a'))).stdout);
    expect(status.addresses.map((x: { address: string }) => x.address)).toContain('203.0.113.100/32');
  });

  it('SIGTERM leaves no address behind', async () => {
    for (const id of ['b', 'a']) {
      daemons.get(id)!.child.kill('SIGTERM');
      expect(await daemons.get(id)!.exit).toBe(0);
    }
    for (const id of ['a', 'b']) expect(lan.host(id).ip('-o', 'addr', 'show', 'dev', 'eth0')).not.toMatch(/198\.51\.100\.100|203\.0\.113\.100/);
    expect((await vipa('status', '--socket', socket('a'))).code).toBe(1);
  });

  it('bad usage names the bad argument and exits 2', async () => {
    const r = await vipa('move', VIP);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/move: expected ADDRESS\|GROUP NODE/);
    const flag = await vipa('status', '--frobnicate');
    expect(flag.code).toBe(2);
    expect(flag.stdout).toMatch(/frobnicate/);
    const cannot = await vipa('run', '--config', join(dir, 'missing.yaml'));
    expect(cannot.code).toBe(1);
    expect(cannot.stdout).toMatch(/cannot start: .*missing\.yaml: cannot read: ENOENT/);
  });
});
