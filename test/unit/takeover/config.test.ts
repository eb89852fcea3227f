import { describe, expect, it } from 'vitest';
import { ConfigError, HOME_PRIORITY, validateCluster } from '../../../lib/takeover/config.js';
import { threeNodeConfig } from './simulation.js';

function errorOf(config: unknown): ConfigError {
  try {
    validateCluster(config);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('config was accepted');
}

describe('validateCluster', () => {
  it('orders members: home, then rank descending, then node id', () => {
    const c = threeNodeConfig();
    c.groups[0]!.backups = [{ node: 'c', rank: 100 }, { node: 'b', rank: 100 }];
    const cluster = validateCluster(c);
    expect(cluster.groups[0]!.order).toEqual(['a', 'b', 'c']);
    expect(cluster.groups[0]!.priorities.get('a')).toBe(HOME_PRIORITY);
    expect(cluster.timers).toEqual({ heartbeatIntervalMs: 10, missCount: 3, leaseSeconds: 2, startupGraceMs: 30, lateThresholdMs: 10 });
    expect(cluster.groups[0]!.giveback).toEqual({ mode: 'immediate' });
    expect(cluster.digest).toHaveLength(16);
  });

  it('the digest is the same for the same cluster and differs for any change', () => {
    const a = validateCluster(threeNodeConfig()).digest;
    expect(validateCluster(threeNodeConfig()).digest).toEqual(a);
    const changed = threeNodeConfig();
    changed.groups[0]!.backups[1]!.rank = 101;
    expect(validateCluster(changed).digest).not.toEqual(a);
    expect(validateCluster(threeNodeConfig({ giveback: { mode: 'manual' } })).digest).not.toEqual(a);
  });

  const base = threeNodeConfig;
  const cases: [string, () => unknown, string, RegExp][] = [
    ['not an object', () => 'x', '', /expected an object, got "x"/],
    ['unknown key', () => ({ ...base(), extra: 1 }), 'extra', /unknown key/],
    ['unknown node key', () => ({ ...base(), nodes: [{ id: 'a', address: '198.51.100.1', ttl: 3 }] }), 'nodes[0].ttl', /unknown key/],
    ['wrong type', () => ({ ...base(), nodes: 'a' }), 'nodes', /expected a list, got "a"/],
    ['bad node address', () => ({ ...base(), nodes: [{ id: 'a', address: '198.51.100' }] }), 'nodes[0].address', /expected an IP address, got "198.51.100"/],
    ['duplicate node id', () => ({ ...base(), nodes: [{ id: 'a', address: '198.51.100.1' }, { id: 'a', address: '198.51.100.2' }] }), 'nodes[1].id', /duplicate node id "a"/],
    ['node id with a space', () => ({ ...base(), nodes: [{ id: 'a b', address: '198.51.100.1' }] }), 'nodes[0].id', /printable/],
    ['port out of range', () => ({ ...base(), nodes: [{ id: 'a', address: '198.51.100.1', port: 70000 }] }), 'nodes[0].port', /expected 1..65535, got 70000/],
    ['rank out of range', () => { const c = base(); c.groups[0]!.backups[0]!.rank = 255; return c; }, 'groups[0].backups[0].rank', /expected 1..254, got 255/],
    ['rank not an integer', () => { const c = base(); (c.groups[0]!.backups[0] as { rank: unknown }).rank = '200'; return c; }, 'groups[0].backups[0].rank', /expected an integer, got "200"/],
    ['unknown backup node', () => { const c = base(); c.groups[0]!.backups[0]!.node = 'z'; return c; }, 'groups[0].backups[0].node', /expected a node id from nodes, got "z"/],
    ['home listed as backup', () => { const c = base(); c.groups[0]!.backups[0]!.node = 'a'; return c; }, 'groups[0].backups[0].node', /appears twice/],
    ['unknown home', () => { const c = base(); c.groups[0]!.home = 'q'; return c; }, 'groups[0].home', /expected a node id from nodes/],
    ['bad group address', () => { const c = base(); c.groups[0]!.addresses[0]!.address = '198.51.100.300/24'; return c; }, 'groups[0].addresses[0].address', /expected an address/],
    ['bad prefix', () => { const c = base(); c.groups[0]!.addresses[1]!.address = '2001:db8::1/129'; return c; }, 'groups[0].addresses[1].address', /prefix must be 0..128/],
    ['bad interface', () => { const c = base(); c.groups[0]!.addresses[0]!.interface = 'eth 0'; return c; }, 'groups[0].addresses[0].interface', /expected an interface name/],
    ['address in two groups', () => { const c = base(); c.groups.push({ ...c.groups[0]!, name: 'two' }); return c; }, 'groups[1].addresses[0].address', /already in groups\[0\]/],
    ['duplicate group name', () => { const c = base(); c.groups.push({ ...c.groups[0]!, addresses: [{ address: '203.0.113.1', interface: 'eth0' }] }); return c; }, 'groups[1].name', /duplicate group name "web"/],
    ['bad giveback', () => ({ ...base(), giveback: { mode: 'later' } }), 'giveback.mode', /expected 'immediate', 'hold-down' or 'manual'/],
    ['hold-down without delay', () => ({ ...base(), giveback: { mode: 'hold-down' } }), 'giveback.delayMs', /expected an integer/],
    ['lease shorter than detection', () => ({ ...base(), timers: { heartbeatIntervalMs: 1000, missCount: 3, leaseSeconds: 2 } }), 'timers.leaseSeconds', /must outlast failure detection/],
    ['bad timer', () => ({ ...base(), timers: { heartbeatIntervalMs: 0 } }), 'timers.heartbeatIntervalMs', /expected 1..60000, got 0/],
    ['bad external delete policy', () => ({ ...base(), externalDelete: 'ignore' }), 'externalDelete', /expected 'readd' or 'release'/],
  ];
  it.each(cases)('%s', (_name, make, path, message) => {
    const e = errorOf(make());
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
  });
});
