/**
 * The cluster model: nodes, virtual address groups with a home node and
 * ranked backups, timers and policies. Every node loads the same cluster
 * config and so computes the same successor; a digest of it travels in every
 * heartbeat so that nodes with different views notice instead of acting on
 * them.
 */
import { createHash } from 'node:crypto';
import { parseIp, type IpFamily } from '../ip.js';
import { checkLinkRef } from '../netlink/address.js';

/** Highest priority: the home node of a group. Backups rank 1..254. */
export const HOME_PRIORITY = 255;

/** When the home node (or any higher-priority node) returns, who holds the group. */
export type GivebackPolicy =
  /** Move back at once. */
  | { mode: 'immediate' }
  /** Move back once the returning node has been eligible this long. */
  | { mode: 'hold-down'; delayMs: number }
  /** Stay with the current holder until an operator moves it. */
  | { mode: 'manual' };

/** What to do when someone else deletes an address this node holds. */
export type ExternalDeletePolicy = 'readd' | 'release';

/** A node of the cluster. */
export interface NodeConfig {
  /** Unique, 1..64 printable characters. */
  id: string;
  /** Heartbeat endpoint: an IP literal this node listens on. */
  address: string;
  /** UDP port, default {@link DEFAULT_PORT}. */
  port?: number;
}

/** One address of a group. */
export interface GroupAddressConfig {
  /** CIDR, e.g. '198.51.100.10/24' or '2001:db8::10/64'. */
  address: string;
  /** Interface name, the same on every node. */
  interface: string;
}

/** A backup of a group and its rank (1..254, higher takes over first). */
export interface BackupConfig {
  node: string;
  rank: number;
}

/** Addresses that move together, with their home node and ranked backups. */
export interface GroupConfig {
  name: string;
  addresses: GroupAddressConfig[];
  home: string;
  backups: BackupConfig[];
  /** Default: the cluster's giveback policy. */
  giveback?: GivebackPolicy;
}

/** Timers shared by the whole cluster (part of the digest: all nodes must agree). */
export interface TimerConfig {
  /** Heartbeat interval in ms (default 10). */
  heartbeatIntervalMs: number;
  /** Missed heartbeats before a peer is declared down (default 3). */
  missCount: number;
  /** Kernel valid lifetime of held addresses in seconds (default 3); refreshed every third of it. */
  leaseSeconds: number;
  /** At start, wait this long for peers before claiming anything (default: the detection time). */
  startupGraceMs: number;
  /**
   * An input this much later than the engine's planned wake-up means the
   * process was frozen or starved (default: one heartbeat interval, at least
   * 5 ms). It must stay below the detection time (interval × missCount), or
   * a freeze long enough for peers to take over could go unnoticed here; a
   * false alarm only costs one re-verification.
   */
  lateThresholdMs: number;
}

/** The config every node of a cluster shares. */
export interface ClusterConfig {
  nodes: NodeConfig[];
  groups: GroupConfig[];
  timers?: Partial<TimerConfig>;
  /** Default giveback policy (default immediate). */
  giveback?: GivebackPolicy;
  /** Default 'readd'. */
  externalDelete?: ExternalDeletePolicy;
}

/** Default heartbeat UDP port. */
export const DEFAULT_PORT = 5405;

/** A validated group: addresses parsed, members ordered by priority. */
export interface Group {
  index: number;
  name: string;
  addresses: { address: string; prefixLength: number; family: IpFamily; interface: string }[];
  home: string;
  /** node id → priority (255 home, else rank). */
  priorities: ReadonlyMap<string, number>;
  /** Members best first: home, then backups by rank descending, ties by node id ascending. */
  order: readonly string[];
  giveback: GivebackPolicy;
}

/** A validated cluster. */
export interface Cluster {
  nodes: ReadonlyMap<string, { id: string; address: string; port: number; family: IpFamily }>;
  groups: readonly Group[];
  timers: TimerConfig;
  externalDelete: ExternalDeletePolicy;
  /** 16-byte digest of the canonical config, carried in heartbeats. */
  digest: Buffer;
}

const NODE_ID = /^[\x21-\x7e]{1,64}$/;

/** A config error: names where in the config (`path`) and what was expected. */
export class ConfigError extends Error {
  /** Where in the config, e.g. 'groups[1].backups[0].rank'. */
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'ConfigError';
    this.path = path;
  }
}

/** Shows a config value in an error message. */
export function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
}

/** An object with only `allowed` keys, or a ConfigError at `path`. */
export function checkKeys(value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(path, `expected an object, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new ConfigError(`${path}.${key}`.replace(/^\./, ''), `unknown key (expected one of ${allowed.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** An integer in min..max, or a ConfigError at `path`. */
export function checkInt(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(path, `expected an integer, got ${show(value)}`);
  if (value < min || value > max) throw new ConfigError(path, `expected ${min}..${max}, got ${value}`);
  return value;
}

/** A list, or a ConfigError at `path`. */
export function checkArray(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(path, `expected a list, got ${show(value)}`);
  return value;
}

/** A giveback policy, or a ConfigError at `path`. */
export function checkGiveback(value: unknown, path: string): GivebackPolicy {
  const o = checkKeys(value, path, ['mode', 'delayMs']);
  if (o.mode === 'immediate' || o.mode === 'manual') {
    if (o.delayMs !== undefined) throw new ConfigError(`${path}.delayMs`, `only with mode 'hold-down'`);
    return { mode: o.mode };
  }
  if (o.mode === 'hold-down') return { mode: 'hold-down', delayMs: checkInt(o.delayMs, `${path}.delayMs`, 0, 86_400_000) };
  throw new ConfigError(`${path}.mode`, `expected 'immediate', 'hold-down' or 'manual', got ${show(o.mode)}`);
}

/**
 * Validates a cluster config. Throws {@link ConfigError} naming the path of
 * the first bad value (unknown key, wrong type, bad address, duplicate node,
 * rank out of range, ...).
 */
export function validateCluster(input: unknown): Cluster {
  const root = checkKeys(input, '', ['nodes', 'groups', 'timers', 'giveback', 'externalDelete']);
  const nodes = new Map<string, { id: string; address: string; port: number; family: IpFamily }>();
  checkArray(root.nodes, 'nodes').forEach((raw, i) => {
    const path = `nodes[${i}]`;
    const n = checkKeys(raw, path, ['id', 'address', 'port']);
    if (typeof n.id !== 'string' || !NODE_ID.test(n.id)) throw new ConfigError(`${path}.id`, `expected 1..64 printable characters without spaces, got ${show(n.id)}`);
    if (nodes.has(n.id)) throw new ConfigError(`${path}.id`, `duplicate node id ${show(n.id)}`);
    const ip = typeof n.address === 'string' ? parseIp(n.address) : undefined;
    if (!ip) throw new ConfigError(`${path}.address`, `expected an IP address, got ${show(n.address)}`);
    const port = n.port === undefined ? DEFAULT_PORT : checkInt(n.port, `${path}.port`, 1, 65535);
    for (const other of nodes.values()) {
      if (other.address === n.address && other.port === port) throw new ConfigError(`${path}.address`, `node ${show(other.id)} already uses ${n.address} port ${port}`);
    }
    nodes.set(n.id, { id: n.id, address: n.address as string, port, family: ip.family });
  });
  if (nodes.size === 0) throw new ConfigError('nodes', 'expected at least one node');

  const t = root.timers === undefined ? {} : checkKeys(root.timers, 'timers', ['heartbeatIntervalMs', 'missCount', 'leaseSeconds', 'startupGraceMs', 'lateThresholdMs']);
  const heartbeatIntervalMs = t.heartbeatIntervalMs === undefined ? 10 : checkInt(t.heartbeatIntervalMs, 'timers.heartbeatIntervalMs', 1, 60_000);
  const missCount = t.missCount === undefined ? 3 : checkInt(t.missCount, 'timers.missCount', 1, 100);
  const leaseSeconds = t.leaseSeconds === undefined ? 3 : checkInt(t.leaseSeconds, 'timers.leaseSeconds', 1, 86_400);
  const detection = heartbeatIntervalMs * missCount;
  const timers: TimerConfig = {
    heartbeatIntervalMs,
    missCount,
    leaseSeconds,
    startupGraceMs: t.startupGraceMs === undefined ? detection : checkInt(t.startupGraceMs, 'timers.startupGraceMs', 0, 600_000),
    lateThresholdMs: t.lateThresholdMs === undefined ? Math.max(5, heartbeatIntervalMs) : checkInt(t.lateThresholdMs, 'timers.lateThresholdMs', 1, 600_000),
  };
  if (leaseSeconds * 1000 <= detection) {
    throw new ConfigError('timers.leaseSeconds', `the lease (${leaseSeconds} s) must outlast failure detection (${detection} ms)`);
  }
  const defaultGiveback = root.giveback === undefined ? { mode: 'immediate' as const } : checkGiveback(root.giveback, 'giveback');
  if (root.externalDelete !== undefined && root.externalDelete !== 'readd' && root.externalDelete !== 'release') {
    throw new ConfigError('externalDelete', `expected 'readd' or 'release', got ${show(root.externalDelete)}`);
  }

  const names = new Set<string>();
  const seenAddresses = new Map<string, string>();
  const groups: Group[] = checkArray(root.groups, 'groups').map((raw, gi) => {
    const path = `groups[${gi}]`;
    const g = checkKeys(raw, path, ['name', 'addresses', 'home', 'backups', 'giveback']);
    if (typeof g.name !== 'string' || g.name.length === 0 || g.name.length > 64) throw new ConfigError(`${path}.name`, `expected a name of 1..64 characters, got ${show(g.name)}`);
    if (names.has(g.name)) throw new ConfigError(`${path}.name`, `duplicate group name ${show(g.name)}`);
    names.add(g.name);
    const addresses = checkArray(g.addresses, `${path}.addresses`).map((rawA, ai) => {
      const apath = `${path}.addresses[${ai}]`;
      const a = checkKeys(rawA, apath, ['address', 'interface']);
      const [text, prefix, extra] = typeof a.address === 'string' ? a.address.split('/') : [];
      const ip = text === undefined ? undefined : parseIp(text);
      if (!ip || extra !== undefined) throw new ConfigError(`${apath}.address`, `expected an address with optional /prefix, got ${show(a.address)}`);
      const max = ip.family === 4 ? 32 : 128;
      const prefixLength = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
      if (!(prefixLength >= 0 && prefixLength <= max)) throw new ConfigError(`${apath}.address`, `prefix must be 0..${max}, got ${show(prefix)}`);
      try {
        checkLinkRef(a.interface);
        if (typeof a.interface !== 'string') throw new TypeError('not a name');
      } catch {
        throw new ConfigError(`${apath}.interface`, `expected an interface name, got ${show(a.interface)}`);
      }
      const key = `${text}`;
      if (seenAddresses.has(key)) throw new ConfigError(`${apath}.address`, `${text} is already in ${seenAddresses.get(key)}`);
      seenAddresses.set(key, apath);
      return { address: text!, prefixLength, family: ip.family, interface: a.interface as string };
    });
    if (addresses.length === 0) throw new ConfigError(`${path}.addresses`, 'expected at least one address');
    if (typeof g.home !== 'string' || !nodes.has(g.home)) throw new ConfigError(`${path}.home`, `expected a node id from nodes, got ${show(g.home)}`);
    const priorities = new Map<string, number>([[g.home, HOME_PRIORITY]]);
    checkArray(g.backups ?? [], `${path}.backups`).forEach((rawB, bi) => {
      const bpath = `${path}.backups[${bi}]`;
      const b = checkKeys(rawB, bpath, ['node', 'rank']);
      if (typeof b.node !== 'string' || !nodes.has(b.node)) throw new ConfigError(`${bpath}.node`, `expected a node id from nodes, got ${show(b.node)}`);
      if (priorities.has(b.node)) throw new ConfigError(`${bpath}.node`, `node ${show(b.node)} appears twice in group ${show(g.name)}`);
      priorities.set(b.node, checkInt(b.rank, `${bpath}.rank`, 1, 254));
    });
    const order = [...priorities.keys()].sort((x, y) => comparePriority(priorities, x, y));
    return {
      index: gi,
      name: g.name,
      addresses,
      home: g.home,
      priorities,
      order,
      giveback: g.giveback === undefined ? defaultGiveback : checkGiveback(g.giveback, `${path}.giveback`),
    };
  });
  if (groups.length > 65535) throw new ConfigError('groups', 'at most 65535 groups');

  const canonical = JSON.stringify({
    nodes: [...nodes.values()].map((n) => [n.id, n.address, n.port]),
    groups: groups.map((g) => [g.name, g.addresses.map((a) => [a.address, a.prefixLength, a.interface]), g.order.map((id) => [id, g.priorities.get(id)]), g.giveback]),
    timers,
    externalDelete: root.externalDelete ?? 'readd',
  });
  const digest = createHash('sha256').update(canonical).digest().subarray(0, 16);
  return { nodes, groups, timers, externalDelete: (root.externalDelete as ExternalDeletePolicy) ?? 'readd', digest };
}

/** Orders two members of a group: higher priority first, then node id ascending (deterministic tie-break). */
export function comparePriority(priorities: ReadonlyMap<string, number>, a: string, b: string): number {
  const d = (priorities.get(b) ?? 0) - (priorities.get(a) ?? 0);
  if (d !== 0) return d;
  return a < b ? -1 : a > b ? 1 : 0;
}
