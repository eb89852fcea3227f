/**
 * `vipa run`: one node of a cluster as a daemon, from a config file.
 *
 * Logs to stdout (human lines or JSON lines). SIGTERM/SIGINT release every
 * address, tell the peers and exit 0. SIGHUP re-reads the config: the running
 * node is detached (its addresses stay) and a new node starts from the new
 * config, adopting the groups it still holds, so addresses that stay are not
 * dropped. A config error on reload keeps the old node running.
 */
import { spawn } from 'node:child_process';
import type http from 'node:http';
import net from 'node:net';
import { VipaError } from '../errors.js';
import type { HealthCheck } from '../takeover/health.js';
import { VipaNode, type Logger, type NodeHandover } from '../takeover/node.js';
import { loadConfigFile, type DaemonConfig, type HealthCheckConfig } from './config-file.js';
import { ControlServer, type ControlRequest } from './control.js';
import { NodeMetrics } from './metrics.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/** A logger writing human or JSON lines to a stream. */
export function streamLogger(format: 'human' | 'json', level: keyof typeof LEVELS, node: string, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const make = (lvl: keyof typeof LEVELS) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    const time = new Date().toISOString();
    if (format === 'json') write(`${JSON.stringify({ time, level: lvl, node, msg: message, ...fields }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    else write(`${time} ${lvl.padEnd(5)} ${node} ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}` : ''}\n`);
  };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

/** Turns the config file's health checks into functions: a shell command, a TCP connect or an HTTP GET. */
export function buildHealthChecks(checks: readonly HealthCheckConfig[]): HealthCheck[] {
  return checks.map((c) => {
    const base = { name: c.name, ...(c.intervalMs ? { intervalMs: c.intervalMs } : {}), ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}), ...(c.rise ? { rise: c.rise } : {}), ...(c.fall ? { fall: c.fall } : {}) };
    if ('command' in c) {
      return {
        ...base,
        check: (signal: AbortSignal) =>
          new Promise<boolean>((resolve, reject) => {
            const child = spawn('/bin/sh', ['-c', c.command], { stdio: 'ignore', signal, killSignal: 'SIGKILL' });
            child.on('error', reject);
            child.on('exit', (code) => (code === 0 ? resolve(true) : reject(new Error(`exit status ${code}`))));
          }),
      };
    }
    if ('tcp' in c) {
      return {
        ...base,
        check: (signal: AbortSignal) =>
          new Promise<boolean>((resolve, reject) => {
            const socket = net.connect({ host: c.tcp.host, port: c.tcp.port, signal });
            socket.once('connect', () => {
              socket.destroy();
              resolve(true);
            });
            socket.once('error', reject);
          }),
      };
    }
    return {
      ...base,
      check: async (signal: AbortSignal) => {
        const res = await fetch(c.http, { signal });
        await res.body?.cancel();
        if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
        return true;
      },
    };
  });
}

/** Runs the notify command for a transition, like keepalived's notify scripts. */
function runNotify(config: DaemonConfig, log: Logger, env: Record<string, string>): void {
  if (!config.notify) return;
  const child = spawn('/bin/sh', ['-c', config.notify.command], {
    stdio: 'ignore',
    env: { ...process.env, ...env },
    signal: AbortSignal.timeout(config.notify.timeoutMs),
    killSignal: 'SIGKILL',
  });
  child.on('error', (e) => log.warn?.(`notify command failed: ${e.message}`));
  child.on('exit', (code, signal) => {
    if (code !== 0) log.warn?.(`notify command exited ${code ?? signal}`, env);
  });
}

/** Options of {@link runDaemon}. */
export interface DaemonOptions {
  configFile: string;
  /** Overrides `node` in the file. */
  node?: string;
  /** Overrides control.socket in the file. */
  socket?: string;
}

/** A running daemon. */
export interface RunningDaemon {
  /** Resolves when the daemon stopped (signal or stop()). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the daemon. Rejects with a clear error when it cannot start (bad
 * config, missing interface, port in use, missing privileges).
 */
export async function runDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  let config = loadConfigFile(options.configFile, options.node === undefined ? {} : { node: options.node });
  let log = streamLogger(config.log.format, config.log.level, config.node);
  const socketPath = (): string => options.socket ?? config.control.socket;

  const startNode = async (handover?: NodeHandover): Promise<{ node: VipaNode; metrics: NodeMetrics; metricsServer: http.Server | undefined }> => {
    const node = new VipaNode({
      cluster: config.clusterConfig,
      nodeId: config.node,
      auth: config.auth,
      health: buildHealthChecks(config.health),
      announce: { schedule: config.announce },
      detector: config.detector,
      ...(config.watchdogMs === undefined ? {} : { watchdogMs: config.watchdogMs }),
      logger: log,
      ...(handover ? { handover } : {}),
    });
    node.on('error', (e) => log.error?.(e.message));
    node.on('transition', (t) => runNotify(config, log, { VIPA_NODE: config.node, VIPA_GROUP: t.name, VIPA_FROM: t.from, VIPA_TO: t.to, VIPA_REASON: t.reason }));
    const metrics = new NodeMetrics(node);
    await node.start();
    let metricsServer: http.Server | undefined;
    if (config.metrics) {
      try {
        metricsServer = await metrics.listen(config.metrics.host, config.metrics.port);
      } catch (e) {
        await node.stop();
        throw new Error(`metrics.listen ${config.metrics.host}:${config.metrics.port}: ${(e as Error).message}`);
      }
    }
    return { node, metrics, metricsServer };
  };

  let current = await startNode();
  const handle = (r: ControlRequest): unknown => {
    const { node } = current;
    switch (r.cmd) {
      case 'status':
        return node.status();
      case 'move':
        node.move(r.target, r.node);
        return node.status();
      case 'drain':
        node.drain(r.graceMs ?? 0);
        return node.status();
      case 'enable':
      case 'disable':
        node.setEnabled(r.cmd === 'enable');
        return node.status();
      case 'debug-stall': {
        // Simulates a long GC or a busy callback: the event loop is blocked,
        // the native heartbeat thread is not.
        const until = performance.now() + r.ms;
        while (performance.now() < until) {
          // busy
        }
        return { stalledMs: r.ms };
      }
    }
  };
  let control: ControlServer;
  try {
    control = await ControlServer.listen(socketPath(), config.control.group, handle);
  } catch (e) {
    await current.node.stop();
    current.metricsServer?.close();
    throw e;
  }

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGHUP', onHup);
      await current.node.stop();
      current.metricsServer?.close();
      await control.close();
      resolveDone();
    })();
    return stopping;
  };
  const onTerm = (signal: NodeJS.Signals): void => {
    log.info?.(`${signal}: releasing addresses and stopping`);
    void stop();
  };
  let reloading = false;
  const onHup = (): void => {
    if (reloading) return;
    reloading = true;
    void (async () => {
      try {
        const next = loadConfigFile(options.configFile, options.node === undefined ? {} : { node: options.node });
        log.info?.('SIGHUP: applying the new config; held addresses that stay are kept');
        const handover = current.node.detach();
        await new Promise<void>((resolve) => (current.metricsServer ? current.metricsServer.close(() => resolve()) : resolve()));
        config = next;
        log = streamLogger(config.log.format, config.log.level, config.node);
        current = await startNode(handover);
      } catch (e) {
        log.error?.(`SIGHUP: ${(e as Error).message}`);
      } finally {
        reloading = false;
      }
    })();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGHUP', onHup);
  log.info?.(`control socket ${socketPath()}${config.metrics ? `, metrics http://${config.metrics.host}:${config.metrics.port}/metrics` : ''}`);
  return { done, stop };
}

/** A one-line explanation of a start failure, for the CLI. */
export function explainStartError(e: unknown): string {
  if (e instanceof VipaError) return e.message;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') return `${e.message}: the heartbeat port is in use (another vipa on this host?)`;
    if (code === 'EADDRNOTAVAIL') return `${e.message}: this node's heartbeat address is not configured on this host`;
    if (code === 'EACCES' || code === 'EPERM') return `${e.message}: needs root or CAP_NET_ADMIN + CAP_NET_RAW`;
    return e.message;
  }
  return String(e);
}
