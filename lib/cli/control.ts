/**
 * The daemon's control socket: a Unix stream socket speaking one JSON object
 * per line. Requests: {"cmd":"status"} | {"cmd":"move","target":"ADDRESS|GROUP","node":"ID"}
 * | {"cmd":"drain","graceMs":N} | {"cmd":"enable"} | {"cmd":"disable"}.
 * Replies: {"ok":true,"result":...} or {"ok":false,"error":"..."}.
 *
 * Who may change state: the socket file is 0660, owned by root and the
 * configured group, so only root and that group can connect at all
 * (unix(7): connecting needs write permission on the socket file).
 */
import { chmodSync, chownSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { dirname } from 'node:path';

/** A control request. */
export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'move'; target: string; node: string }
  | { cmd: 'drain'; graceMs?: number }
  | { cmd: 'enable' }
  | { cmd: 'disable' }
  /** Test and bench hook: busy-loop the JS thread for `ms` (only with VIPA_DEBUG_HOOKS=1). */
  | { cmd: 'debug-stall'; ms: number };

/** A control reply. */
export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

/** Handles one request; throws for a refused one (the message goes back to the client). */
export type ControlHandler = (request: ControlRequest) => unknown;

function groupId(name: string): number {
  let line = '';
  try {
    line = execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // getent exits 2 for an unknown group
  }
  const gid = Number(line.split(':')[2]);
  if (!line || !Number.isInteger(gid)) throw new Error(`control.group ${JSON.stringify(name)}: no such group (create it, e.g. groupadd --system ${name})`);
  return gid;
}

/** Parses and checks a request line; throws with a message naming the bad field. */
export function parseControlRequest(line: string): ControlRequest {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    throw new Error(`request is not JSON: ${line.slice(0, 80)}`);
  }
  const o = r as Record<string, unknown>;
  if (o === null || typeof o !== 'object') throw new Error('request must be a JSON object');
  switch (o.cmd) {
    case 'status':
    case 'enable':
    case 'disable':
      return { cmd: o.cmd };
    case 'move':
      if (typeof o.target !== 'string' || typeof o.node !== 'string') throw new Error('move needs "target" (address or group) and "node"');
      return { cmd: 'move', target: o.target, node: o.node };
    case 'debug-stall':
      if (process.env.VIPA_DEBUG_HOOKS !== '1') throw new Error('debug-stall needs the daemon started with VIPA_DEBUG_HOOKS=1');
      if (typeof o.ms !== 'number' || !Number.isInteger(o.ms) || o.ms < 1 || o.ms > 10_000) throw new Error(`debug-stall ms must be 1..10000, got ${JSON.stringify(o.ms)}`);
      return { cmd: 'debug-stall', ms: o.ms };
    case 'drain':
      if (o.graceMs !== undefined && (typeof o.graceMs !== 'number' || !Number.isInteger(o.graceMs) || o.graceMs < 0)) throw new Error(`drain graceMs must be an integer ≥ 0, got ${JSON.stringify(o.graceMs)}`);
      return o.graceMs === undefined ? { cmd: 'drain' } : { cmd: 'drain', graceMs: o.graceMs as number };
    default:
      throw new Error(`unknown command ${JSON.stringify(o.cmd)} (status, move, drain, enable, disable)`);
  }
}

/** Serves the control socket at `path` until closed. */
export class ControlServer {
  private readonly server: net.Server;
  readonly path: string;

  private constructor(server: net.Server, path: string) {
    this.server = server;
    this.path = path;
  }

  /** Listens on `path` (a stale socket file is replaced; a live one is an error). */
  static async listen(path: string, group: string | undefined, handle: ControlHandler): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    try {
      if (statSync(path).isSocket()) {
        const live = await new Promise<boolean>((resolve) => {
          const probe = net.connect(path, () => {
            probe.destroy();
            resolve(true);
          });
          probe.on('error', () => resolve(false));
        });
        if (live) throw new Error(`control socket ${path} is in use: is another vipa daemon running?`);
        rmSync(path);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const server = net.createServer((conn) => {
      let buffered = '';
      conn.setEncoding('utf8');
      conn.on('data', (chunk: string) => {
        buffered += chunk;
        if (buffered.length > 65536) {
          conn.end(`${JSON.stringify({ ok: false, error: 'request too long' })}\n`);
          return;
        }
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          let reply: ControlReply;
          try {
            reply = { ok: true, result: handle(parseControlRequest(line)) };
          } catch (e) {
            reply = { ok: false, error: (e as Error).message };
          }
          conn.write(`${JSON.stringify(reply)}\n`);
        }
      });
      conn.on('error', () => {});
    });
    const previous = process.umask(0o117); // the socket is created 0660
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(previous);
    }
    chmodSync(path, 0o660);
    // Owner: the daemon's own user (root, or the vipa user of the systemd unit, which cannot chown to root).
    if (group !== undefined) chownSync(path, process.getuid!(), groupId(group));
    return new ControlServer(server, path);
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

/** Sends one request to a daemon's control socket and returns its reply. */
export function controlRequest(path: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(path);
    let buffered = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no reply from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      try {
        resolve(JSON.parse(buffered.slice(0, nl)) as ControlReply);
      } catch (e) {
        reject(e);
      }
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is the daemon running? see --socket)' : e.code === 'EACCES' ? ' (needs root or the control group)' : '';
      reject(new Error(`cannot reach the daemon at ${path}: ${e.code ?? e.message}${hint}`));
    });
  });
}
