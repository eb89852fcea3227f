/**
 * The daemon's config file, YAML or JSON (JSON is read as YAML 1.2, of which
 * it is a subset, so both get line numbers). Every error names the file, the
 * path inside it, the line when known, and what was expected:
 *
 *   /etc/vipa/vipa.yaml:14:9: cluster.groups[0].backups[1].rank: expected 1..254, got 300
 *
 * Layout (see examples/ and the README):
 * ```yaml
 * node: a                      # this node (or --node)
 * cluster: { nodes, groups, timers, giveback, externalDelete }   # the same on every node
 * auth: { keyFile: ./vipa.key } | { keys: [{ id, file }], current } | { insecure: true }
 * health: [{ name, command | tcp | http, intervalMs, timeoutMs, rise, fall }]
 * announce: { burst, burstSpacingMs, secondBurstDelayMs, secondBurst, refreshIntervalMs, arpMode }
 * metrics: { listen: 127.0.0.1:9405 }
 * control: { socket: /run/vipa/vipa.sock, group: vipa }
 * log: { format: human | json, level: debug | info | warn | error }
 * notify: { command: /etc/vipa/notify.sh, timeoutMs: 5000 }
 * detector: { kind: fixed } | { kind: phi, threshold: 8 }
 * watchdogMs: 500
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { checkArray, checkInt, checkKeys, ConfigError, show, validateCluster, type Cluster, type ClusterConfig } from '../takeover/config.js';
import type { DetectorOptions } from '../takeover/node.js';

/** A config file error: file, path, line and what was expected. */
export class ConfigFileError extends Error {
  readonly file: string;
  /** Path inside the file, e.g. 'cluster.groups[0].home'; '' for the whole file. */
  readonly path: string;
  /** 1-based line, when known. */
  readonly line: number | undefined;
  constructor(file: string, path: string, line: number | undefined, column: number | undefined, message: string) {
    super(`${file}${line !== undefined ? `:${line}:${column ?? 1}` : ''}: ${path ? `${path}: ` : ''}${message}`);
    this.name = 'ConfigFileError';
    this.file = file;
    this.path = path;
    this.line = line;
  }
}

/** A health check as the config file describes it. */
export type HealthCheckConfig = {
  name: string;
  intervalMs?: number;
  timeoutMs?: number;
  rise?: number;
  fall?: number;
} & ({ command: string } | { tcp: { host: string; port: number } } | { http: string });

/** The announcement schedule from the file. */
export interface AnnounceConfig {
  burst?: number;
  burstSpacingMs?: number;
  secondBurstDelayMs?: number;
  secondBurst?: number;
  refreshIntervalMs?: number;
  arpMode?: 'request' | 'reply' | 'both';
}

/** A loaded, validated daemon config. */
export interface DaemonConfig {
  file: string;
  node: string;
  clusterConfig: ClusterConfig;
  cluster: Cluster;
  auth: { keys: { id: number; key: Buffer }[]; currentKeyId: number } | { insecure: true };
  health: HealthCheckConfig[];
  announce: AnnounceConfig;
  metrics: { host: string; port: number } | undefined;
  control: { socket: string; group: string | undefined };
  log: { format: 'human' | 'json'; level: 'debug' | 'info' | 'warn' | 'error' };
  notify: { command: string; timeoutMs: number } | undefined;
  detector: DetectorOptions;
  watchdogMs: number | undefined;
}

/** Default control socket path. */
export const DEFAULT_CONTROL_SOCKET = '/run/vipa/vipa.sock';

const TOP_KEYS = ['node', 'cluster', 'auth', 'health', 'announce', 'metrics', 'control', 'log', 'notify', 'detector', 'watchdogMs'];

/** Splits 'a.b[2].c' into ['a', 'b', 2, 'c']. */
function pathSegments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

function parseHostPort(text: unknown, path: string): { host: string; port: number } {
  if (typeof text !== 'string') throw new ConfigError(path, `expected host:port, got ${show(text)}`);
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m) throw new ConfigError(path, `expected host:port, got ${show(text)}`);
  return { host: m[1]!, port: checkInt(Number(m[2]), path, 1, 65535) };
}

function optionalInt(o: Record<string, unknown>, key: string, path: string, min: number, max: number): number | undefined {
  return o[key] === undefined ? undefined : checkInt(o[key], `${path}.${key}`, min, max);
}

function readKey(file: string, baseDir: string, path: string): Buffer {
  let raw: Buffer;
  const full = resolve(baseDir, file);
  try {
    raw = readFileSync(full);
  } catch (e) {
    throw new ConfigError(path, `cannot read key file ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // A key file holds hex (as `openssl rand -hex 32` writes) or raw bytes.
  const text = raw.toString('utf8').trim();
  const key = /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : raw;
  if (key.length < 16) throw new ConfigError(path, `key file ${full} holds ${key.length} bytes; at least 16 are needed (e.g. openssl rand -hex 32 > ${file})`);
  return key;
}

function validateDaemon(input: unknown, file: string, nodeOverride: string | undefined): DaemonConfig {
  const root = checkKeys(input, '', TOP_KEYS);
  const baseDir = dirname(file);
  let cluster: Cluster;
  try {
    cluster = validateCluster(root.cluster);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.path ? `cluster.${e.path}` : 'cluster', e.message.slice(e.path.length + 2));
    throw e;
  }
  const node = nodeOverride ?? root.node;
  if (typeof node !== 'string' || !cluster.nodes.has(node)) {
    throw new ConfigError('node', `expected one of the cluster's nodes (${[...cluster.nodes.keys()].join(', ')}), got ${show(node)}`);
  }

  if (root.auth === undefined) throw new ConfigError('auth', 'expected keyFile, keys or insecure: true (heartbeats must be authenticated unless you opt out)');
  const a = checkKeys(root.auth, 'auth', ['keyFile', 'keys', 'current', 'insecure']);
  let auth: DaemonConfig['auth'];
  if (a.insecure !== undefined) {
    if (a.insecure !== true || a.keyFile !== undefined || a.keys !== undefined) throw new ConfigError('auth.insecure', 'expected true, alone');
    auth = { insecure: true };
  } else if (a.keyFile !== undefined) {
    if (typeof a.keyFile !== 'string') throw new ConfigError('auth.keyFile', `expected a file path, got ${show(a.keyFile)}`);
    auth = { keys: [{ id: 1, key: readKey(a.keyFile, baseDir, 'auth.keyFile') }], currentKeyId: 1 };
  } else if (a.keys !== undefined) {
    const keys = checkArray(a.keys, 'auth.keys').map((k, i) => {
      const e = checkKeys(k, `auth.keys[${i}]`, ['id', 'file']);
      if (typeof e.file !== 'string') throw new ConfigError(`auth.keys[${i}].file`, `expected a file path, got ${show(e.file)}`);
      return { id: checkInt(e.id, `auth.keys[${i}].id`, 1, 65535), key: readKey(e.file, baseDir, `auth.keys[${i}].file`) };
    });
    const current = checkInt(a.current, 'auth.current', 1, 65535);
    if (!keys.some((k) => k.id === current)) throw new ConfigError('auth.current', `key ${current} is not in auth.keys`);
    auth = { keys, currentKeyId: current };
  } else throw new ConfigError('auth', 'expected keyFile, keys or insecure: true');

  const health = (root.health === undefined ? [] : checkArray(root.health, 'health')).map((h, i): HealthCheckConfig => {
    const path = `health[${i}]`;
    const o = checkKeys(h, path, ['name', 'command', 'tcp', 'http', 'intervalMs', 'timeoutMs', 'rise', 'fall']);
    if (typeof o.name !== 'string' || o.name.length === 0) throw new ConfigError(`${path}.name`, `expected a name, got ${show(o.name)}`);
    const common = {
      name: o.name,
      ...(o.intervalMs === undefined ? {} : { intervalMs: checkInt(o.intervalMs, `${path}.intervalMs`, 10, 3_600_000) }),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: checkInt(o.timeoutMs, `${path}.timeoutMs`, 1, 3_600_000) }),
      ...(o.rise === undefined ? {} : { rise: checkInt(o.rise, `${path}.rise`, 1, 100) }),
      ...(o.fall === undefined ? {} : { fall: checkInt(o.fall, `${path}.fall`, 1, 100) }),
    };
    const kinds = ['command', 'tcp', 'http'].filter((k) => o[k] !== undefined);
    if (kinds.length !== 1) throw new ConfigError(path, `expected exactly one of command, tcp, http; got ${kinds.length ? kinds.join(', ') : 'none'}`);
    if (o.command !== undefined) {
      if (typeof o.command !== 'string' || !o.command.trim()) throw new ConfigError(`${path}.command`, `expected a shell command, got ${show(o.command)}`);
      return { ...common, command: o.command };
    }
    if (o.tcp !== undefined) return { ...common, tcp: parseHostPort(o.tcp, `${path}.tcp`) };
    if (typeof o.http !== 'string' || !/^https?:\/\/\S+$/.test(o.http)) throw new ConfigError(`${path}.http`, `expected an http:// or https:// URL, got ${show(o.http)}`);
    return { ...common, http: o.http };
  });

  const an = root.announce === undefined ? {} : checkKeys(root.announce, 'announce', ['burst', 'burstSpacingMs', 'secondBurstDelayMs', 'secondBurst', 'refreshIntervalMs', 'arpMode']);
  const announce: AnnounceConfig = {};
  for (const [key, min, max] of [['burst', 1, 100], ['burstSpacingMs', 0, 60_000], ['secondBurstDelayMs', 0, 3_600_000], ['secondBurst', 0, 100], ['refreshIntervalMs', 0, 86_400_000]] as const) {
    const v = optionalInt(an, key, 'announce', min, max);
    if (v !== undefined) announce[key] = v;
  }
  if (an.arpMode !== undefined) {
    if (an.arpMode !== 'request' && an.arpMode !== 'reply' && an.arpMode !== 'both') throw new ConfigError('announce.arpMode', `expected request, reply or both, got ${show(an.arpMode)}`);
    announce.arpMode = an.arpMode;
  }

  const m = root.metrics === undefined ? undefined : checkKeys(root.metrics, 'metrics', ['listen']);
  const c = root.control === undefined ? {} : checkKeys(root.control, 'control', ['socket', 'group']);
  if (c.socket !== undefined && (typeof c.socket !== 'string' || !c.socket.startsWith('/'))) throw new ConfigError('control.socket', `expected an absolute path, got ${show(c.socket)}`);
  if (c.group !== undefined && (typeof c.group !== 'string' || !/^[a-z_][a-z0-9_-]*$/i.test(c.group))) throw new ConfigError('control.group', `expected a group name, got ${show(c.group)}`);
  const l = root.log === undefined ? {} : checkKeys(root.log, 'log', ['format', 'level']);
  if (l.format !== undefined && l.format !== 'human' && l.format !== 'json') throw new ConfigError('log.format', `expected human or json, got ${show(l.format)}`);
  if (l.level !== undefined && !['debug', 'info', 'warn', 'error'].includes(l.level as string)) throw new ConfigError('log.level', `expected debug, info, warn or error, got ${show(l.level)}`);
  const n = root.notify === undefined ? undefined : checkKeys(root.notify, 'notify', ['command', 'timeoutMs']);
  if (n && (typeof n.command !== 'string' || !n.command.trim())) throw new ConfigError('notify.command', `expected a command, got ${show(n.command)}`);
  let detector: DetectorOptions = { kind: 'fixed' };
  if (root.detector !== undefined) {
    const d = checkKeys(root.detector, 'detector', ['kind', 'threshold']);
    if (d.kind === 'fixed' && d.threshold === undefined) detector = { kind: 'fixed' };
    else if (d.kind === 'phi') detector = d.threshold === undefined ? { kind: 'phi' } : { kind: 'phi', threshold: checkInt(d.threshold, 'detector.threshold', 1, 100) };
    else throw new ConfigError('detector.kind', `expected fixed or phi, got ${show(d.kind)}`);
  }

  return {
    file,
    node,
    clusterConfig: root.cluster as ClusterConfig,
    cluster,
    auth,
    health,
    announce,
    metrics: m ? parseHostPort(m.listen, 'metrics.listen') : undefined,
    control: { socket: (c.socket as string | undefined) ?? DEFAULT_CONTROL_SOCKET, group: c.group as string | undefined },
    log: { format: (l.format as 'human' | 'json' | undefined) ?? 'human', level: (l.level as DaemonConfig['log']['level'] | undefined) ?? 'info' },
    notify: n ? { command: n.command as string, timeoutMs: optionalInt(n, 'timeoutMs', 'notify', 1, 600_000) ?? 5000 } : undefined,
    detector,
    watchdogMs: optionalInt(root, 'watchdogMs', '', 10, 600_000),
  };
}

/**
 * Reads and validates a daemon config file. Throws {@link ConfigFileError}
 * naming the file, the path and (when known) the line of the first problem.
 */
export function loadConfigFile(file: string, options: { node?: string } = {}): DaemonConfig {
  const full = resolve(file);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (e) {
    throw new ConfigFileError(full, '', undefined, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const pos = lineCounter.linePos(err.pos[0]);
    throw new ConfigFileError(full, '', pos.line, pos.col, `not valid YAML or JSON: ${err.message.split('\n')[0]}`);
  }
  try {
    return validateDaemon(doc.toJS(), full, options.node);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const segments = pathSegments(e.path);
    // The deepest node that exists along the path gives the line.
    let node: unknown;
    for (let n = segments.length; n > 0 && node === undefined; n--) {
      const found = doc.getIn(segments.slice(0, n), true);
      if (found && (isMap(found) || isSeq(found) || typeof (found as YamlNode).range !== 'undefined')) node = found;
    }
    const range = (node as YamlNode | undefined)?.range;
    const pos = range ? lineCounter.linePos(range[0]) : undefined;
    const message = e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message.replace(/^: /, '');
    throw new ConfigFileError(full, e.path, pos?.line, pos?.col, message);
  }
}
