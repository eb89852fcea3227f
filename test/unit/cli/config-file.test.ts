import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigFileError, loadConfigFile } from '../../../lib/cli/config-file.js';

const examples = join(__dirname, '../../../examples');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vipa-config-'));
  for (const k of ['vipa.key', 'vipa-1.key', 'vipa-2.key']) writeFileSync(join(dir, k), `${'ab'.repeat(32)}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(file: string): ConfigFileError {
  try {
    loadConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigFileError) return e;
    throw e;
  }
  throw new Error('accepted');
}

/** The two-node sample with one line replaced. */
function sample(replace: [string | RegExp, string][] = []): string {
  let text = readFileSync(join(examples, 'two-node.yaml'), 'utf8');
  for (const [from, to] of replace) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`sample has no ${String(from)}`);
    text = next;
  }
  return text;
}

function lineOf(text: string, needle: string): number {
  return text.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

describe('the samples load', () => {
  it.each(['two-node.yaml', 'three-node.yaml'])('%s', (name) => {
    const file = join(dir, name);
    copyFileSync(join(examples, name), file);
    const config = loadConfigFile(file);
    expect(config.node).toBe('a');
    expect(config.cluster.groups.length).toBeGreaterThan(0);
    expect('keys' in config.auth && config.auth.keys[0]!.key.length).toBe(32);
  });

  it('JSON works too and --node overrides node', () => {
    const json = write('c.json', JSON.stringify({ node: 'a', cluster: { nodes: [{ id: 'a', address: '198.51.100.1' }, { id: 'b', address: '198.51.100.2' }], groups: [] }, auth: { insecure: true } }));
    expect(loadConfigFile(json, { node: 'b' }).node).toBe('b');
  });
});

describe('every config error names the file, the path and the line', () => {
  const cases: [string, [string | RegExp, string][], string, RegExp, string][] = [
    // name, edits to the sample, expected path, message, text on the expected line
    ['unknown key', [['log:\n', 'logging: {}\nlog:\n']], 'logging', /unknown key/, 'logging:'],
    ['unknown nested key', [['heartbeatIntervalMs: 10', 'heartbeatIntervalMs: 10\n    intervalMs: 5']], 'cluster.timers.intervalMs', /unknown key/, 'intervalMs: 5'],
    ['wrong type', [['missCount: 3', 'missCount: three']], 'cluster.timers.missCount', /expected an integer, got "three"/, 'missCount: three'],
    ['bad address', [['198.51.100.100/24', '198.51.100.300/24']], 'cluster.groups[0].addresses[0].address', /expected an address with optional \/prefix, got "198.51.100.300\/24"/, '198.51.100.300'],
    ['bad node address', [['address: 198.51.100.2 }', 'address: 198.51.100.2.7 }']], 'cluster.nodes[1].address', /expected an IP address/, '198.51.100.2.7'],
    ['duplicate node id', [['{ id: b, address: 198.51.100.2 }', '{ id: a, address: 198.51.100.2 }']], 'cluster.nodes[1].id', /duplicate node id "a"/, 'id: a, address: 198.51.100.2'],
    ['rank out of range', [['rank: 100', 'rank: 300']], 'cluster.groups[0].backups[0].rank', /expected 1..254, got 300/, 'rank: 300'],
    ['missing key file', [['keyFile: vipa.key', 'keyFile: missing.key']], 'auth.keyFile', /cannot read key file .*missing\.key: ENOENT/, 'keyFile: missing.key'],
    ['unknown node', [['node: a', 'node: z']], 'node', /expected one of the cluster's nodes \(a, b\), got "z"/, 'node: z'],
    ['bad health check', [['http: http://127.0.0.1:8080/health', 'http: localhost']], 'health[0].http', /expected an http:\/\/ or https:\/\/ URL/, 'http: localhost'],
    ['bad metrics address', [['listen: 127.0.0.1:9405', 'listen: 127.0.0.1']], 'metrics.listen', /expected host:port/, 'listen: 127.0.0.1'],
    ['bad giveback', [['{ mode: immediate }', '{ mode: sometimes }']], 'cluster.giveback.mode', /expected 'immediate', 'hold-down' or 'manual'/, 'mode: sometimes'],
  ];
  it.each(cases)('%s', (name, edits, path, message, lineText) => {
    const text = sample(edits);
    const file = write(`${name.replace(/ /g, '-')}.yaml`, text);
    const e = errorOf(file);
    expect(e.file).toBe(file);
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
    expect(e.line).toBe(lineOf(text, lineText));
    expect(e.message.startsWith(`${file}:${e.line}:`)).toBe(true);
  });

  it('a short key file', () => {
    writeFileSync(join(dir, 'short.key'), 'abcd\n');
    const e = errorOf(write('short.yaml', sample([['keyFile: vipa.key', 'keyFile: short.key']])));
    expect(e.path).toBe('auth.keyFile');
    expect(e.message).toMatch(/holds 2 bytes; at least 16 are needed/);
  });

  it('no auth at all is refused', () => {
    const text = sample([[/auth:\n  keyFile: vipa.key.*\n/, '']]);
    expect(errorOf(write('noauth.yaml', text)).message).toMatch(/auth: expected keyFile, keys or insecure: true/);
  });

  it('YAML syntax errors carry the line', () => {
    const text = sample([['  groups:', '  groups: [']]);
    const e = errorOf(write('syntax.yaml', text));
    expect(e.message).toMatch(/not valid YAML or JSON/);
    expect(e.line).toBeGreaterThan(0);
  });

  it('a missing file', () => {
    const e = errorOf(join(dir, 'nope.yaml'));
    expect(e.message).toMatch(/nope\.yaml: cannot read: ENOENT/);
  });
});
