#!/usr/bin/env node
/**
 * The `vipa` command. Subcommands follow iproute2's habits where they exist:
 *
 *   vipa run --config FILE [--node ID] [--socket PATH]   the daemon
 *   vipa status [--json]                                 what the daemon holds, how it sees peers
 *   vipa move ADDRESS|GROUP NODE                         operator move (pinned)
 *   vipa drain [--grace MS] | vipa enable | vipa disable
 *   vipa addr add|del ADDRESS/PREFIX dev IF [nodad] [noprefixroute] [valid_lft S] [preferred_lft S] [label L] [proto N]
 *   vipa addr list [dev IF] [-4|-6] [--json]
 *   vipa link list [--json]
 *   vipa announce ADDRESS dev IF [--count N]
 *   vipa monitor [--json]
 *   vipa demo                                            live failover demo in network namespaces
 *
 * Exit status: 0 success, 1 failure, 2 bad usage (the message names the bad argument).
 */
import { parseArgs } from 'node:util';
import { Netlink } from '../netlink/netlink.js';
import { NetlinkMonitor } from '../netlink/monitor.js';
import type { Address, AddressSpec } from '../netlink/address.js';
import type { Link } from '../netlink/link.js';
import { DEFAULT_CONTROL_SOCKET } from './config-file.js';
import { controlRequest, type ControlRequest } from './control.js';
import { explainStartError, runDaemon } from './daemon.js';

/** Bad usage: exit status 2. */
export class UsageError extends Error {}

const USAGE = `usage: vipa <command> [options]
  run --config FILE [--node ID] [--socket PATH]
  status [--json] [--socket PATH]
  move ADDRESS|GROUP NODE [--socket PATH]
  drain [--grace MS] | enable | disable [--socket PATH]
  addr add|del ADDRESS/PREFIX dev IF [nodad] [noprefixroute] [valid_lft S] [preferred_lft S] [label L] [proto N]
  addr list [dev IF] [-4|-6] [--json]
  link list [--json]
  announce ADDRESS dev IF [--count N]
  monitor [--json]
  demo`;

function flags<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], spec: T, positionals = true) {
  try {
    return parseArgs({ args, options: spec, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function formatLifetime(v: number): string {
  return v === Infinity ? 'forever' : `${v}sec`;
}

function formatAddress(a: Address, links: Map<number, string>): string {
  const parts = [`${a.linkIndex}: ${links.get(a.linkIndex) ?? '?'}`, a.family === 4 ? 'inet' : 'inet6', `${a.address}/${a.prefixLength}`];
  if (a.peer) parts.push('peer', a.peer);
  if (a.broadcast) parts.push('brd', a.broadcast);
  parts.push('scope', a.scope === 0 ? 'global' : a.scope === 253 ? 'link' : a.scope === 254 ? 'host' : String(a.scope));
  if (a.proto) parts.push('proto', a.proto === 0x76 ? 'vipa' : String(a.proto));
  for (const [flag, on] of Object.entries(a.flags)) if (on) parts.push(flag);
  if (a.label && a.label !== links.get(a.linkIndex)) parts.push(a.label);
  parts.push('valid_lft', formatLifetime(a.validLifetime), 'preferred_lft', formatLifetime(a.preferredLifetime));
  return parts.join(' ');
}

function formatLink(l: Link): string {
  const flags = Object.entries(l.flags).filter(([, on]) => on).map(([f]) => f.toUpperCase());
  return `${l.index}: ${l.name}: <${flags.join(',')}> mtu ${l.mtu} state ${l.operstate.toUpperCase()}${l.kind ? ` ${l.kind}` : ''}\n    link/ether ${l.mac ?? 'none'}`;
}

/** Parses `ADDRESS/PREFIX dev IF [words]` as ip(8) does. */
function parseAddrWords(words: string[]): AddressSpec {
  const [address, ...rest] = words;
  if (!address) throw new UsageError('addr: missing ADDRESS/PREFIX');
  const spec: Partial<AddressSpec> = { address };
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    const value = (): string => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`addr: "${w}" needs a value`);
      return v;
    };
    const number = (): number => {
      const v = value();
      if (v === 'forever') return Infinity;
      const n = Number(v);
      if (!/^\d+$/.test(v)) throw new UsageError(`addr: "${w}" needs a number of seconds or "forever", got "${v}"`);
      return n;
    };
    switch (w) {
      case 'dev':
        spec.link = value();
        break;
      case 'nodad':
        spec.nodad = true;
        break;
      case 'noprefixroute':
        spec.noprefixroute = true;
        break;
      case 'valid_lft':
        spec.validLifetime = number();
        break;
      case 'preferred_lft':
        spec.preferredLifetime = number();
        break;
      case 'label':
        spec.label = value();
        break;
      case 'brd':
      case 'broadcast': {
        const v = value();
        spec.broadcast = v === '+' ? true : v;
        break;
      }
      case 'peer':
        spec.peer = value();
        break;
      case 'proto': {
        const v = value();
        spec.proto = v === 'vipa' ? 0x76 : Number(v);
        break;
      }
      default:
        throw new UsageError(`addr: unknown word "${w}" (dev, nodad, noprefixroute, valid_lft, preferred_lft, label, brd, peer, proto)`);
    }
  }
  if (spec.link === undefined) throw new UsageError('addr: missing "dev IF"');
  return spec as AddressSpec;
}

async function daemonRequest(socket: string, request: ControlRequest, json: boolean, out: (s: string) => void): Promise<number> {
  const reply = await controlRequest(socket, request);
  if (!reply.ok) {
    out(`vipa: ${reply.error}\n`);
    return 1;
  }
  if (json) {
    out(`${JSON.stringify(reply.result, null, 2)}\n`);
    return 0;
  }
  const s = reply.result as import('../takeover/node.js').VipaNodeStatus;
  out(`node ${s.node} (${s.health})\n`);
  for (const g of s.groups) {
    out(`  group ${g.name}: ${g.state}${g.pinned ? ' pinned' : ''}, holder ${g.holder ?? 'none'} (${g.reason})\n`);
    for (const a of s.addresses.filter((x) => x.group === g.name)) out(`    ${a.address} dev ${a.interface}${a.held ? ' held here' : ''}\n`);
  }
  for (const p of s.peers) out(`  peer ${p.id}: ${p.alive ? 'alive' : 'down'}${p.health ? ` ${p.health}` : ''}${p.digestMatches ? '' : ' CONFIG MISMATCH'}\n`);
  return 0;
}

/** Runs the CLI with `argv` (without node and script); returns the exit status. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const [command, ...args] = argv;
  const socketFlag = { socket: { type: 'string' as const }, json: { type: 'boolean' as const } };
  try {
    switch (command) {
      case 'run': {
        const { values } = flags(args, { config: { type: 'string' }, node: { type: 'string' }, socket: { type: 'string' } }, false);
        if (!values.config) throw new UsageError('run: --config FILE is required');
        let daemon;
        try {
          daemon = await runDaemon({ configFile: values.config, ...(values.node ? { node: values.node } : {}), ...(values.socket ? { socket: values.socket } : {}) });
        } catch (e) {
          err(`vipa: cannot start: ${explainStartError(e)}\n`);
          return 1;
        }
        await daemon.done;
        return 0;
      }
      case 'status': {
        const { values } = flags(args, socketFlag, false);
        return await daemonRequest(values.socket ?? DEFAULT_CONTROL_SOCKET, { cmd: 'status' }, values.json ?? false, out);
      }
      case 'move': {
        const { values, positionals } = flags(args, socketFlag);
        if (positionals.length !== 2) throw new UsageError('move: expected ADDRESS|GROUP NODE');
        return await daemonRequest(values.socket ?? DEFAULT_CONTROL_SOCKET, { cmd: 'move', target: positionals[0]!, node: positionals[1]! }, values.json ?? false, out);
      }
      case 'drain': {
        const { values } = flags(args, { ...socketFlag, grace: { type: 'string' } }, false);
        const grace = values.grace === undefined ? 0 : Number(values.grace);
        if (!Number.isInteger(grace) || grace < 0) throw new UsageError(`drain: --grace must be a whole number of ms, got "${values.grace}"`);
        return await daemonRequest(values.socket ?? DEFAULT_CONTROL_SOCKET, { cmd: 'drain', graceMs: grace }, values.json ?? false, out);
      }
      case 'enable':
      case 'disable': {
        const { values } = flags(args, socketFlag, false);
        return await daemonRequest(values.socket ?? DEFAULT_CONTROL_SOCKET, { cmd: command }, values.json ?? false, out);
      }
      case 'addr': {
        const [verb, ...rest] = args;
        using nl = new Netlink();
        if (verb === 'add' || verb === 'del' || verb === 'replace') {
          const spec = parseAddrWords(rest);
          if (verb === 'add') nl.addrAddSync(spec);
          else if (verb === 'replace') nl.addrReplaceSync(spec);
          else nl.addrDelSync(spec);
          return 0;
        }
        if (verb === 'list' || verb === 'show' || verb === undefined) {
          const { values, positionals } = flags(rest, { json: { type: 'boolean' }, '4': { type: 'boolean', short: '4' }, '6': { type: 'boolean', short: '6' } });
          let link: string | undefined;
          if (positionals.length > 0) {
            if (positionals[0] !== 'dev' || positionals.length !== 2) throw new UsageError(`addr list: expected "dev IF", got "${positionals.join(' ')}"`);
            link = positionals[1];
          }
          const list = nl.addrListSync({ ...(link ? { link } : {}), ...(values['4'] ? { family: 4 as const } : values['6'] ? { family: 6 as const } : {}) });
          if (values.json) out(`${JSON.stringify(list, (_k, v: unknown) => (v === Infinity ? 'forever' : v), 2)}\n`);
          else {
            const names = new Map(nl.linkListSync().map((l) => [l.index, l.name]));
            for (const a of list) out(`${formatAddress(a, names)}\n`);
          }
          return 0;
        }
        throw new UsageError(`addr: unknown verb "${verb}" (add, del, replace, list)`);
      }
      case 'link': {
        const [verb, ...rest] = args;
        if (verb !== 'list' && verb !== 'show' && verb !== undefined) throw new UsageError(`link: unknown verb "${verb}" (list)`);
        const { values } = flags(rest, { json: { type: 'boolean' } }, false);
        using nl = new Netlink();
        const links = nl.linkListSync();
        out(values.json ? `${JSON.stringify(links, null, 2)}\n` : links.map((l) => `${formatLink(l)}\n`).join(''));
        return 0;
      }
      case 'announce': {
        const { values, positionals } = flags(args, { count: { type: 'string' } });
        if (positionals.length !== 3 || positionals[1] !== 'dev') throw new UsageError('announce: expected ADDRESS dev IF');
        const count = values.count === undefined ? 1 : Number(values.count);
        if (!Number.isInteger(count) || count < 1 || count > 100) throw new UsageError(`announce: --count must be 1..100, got "${values.count}"`);
        const { Announcer } = await import('../packets/announcer.js');
        using announcer = new Announcer({ schedule: { burst: count, secondBurst: 0 }, pacing: false });
        announcer.announce(positionals[2]!, positionals[0]!);
        return 0;
      }
      case 'monitor': {
        const { values } = flags(args, { json: { type: 'boolean' } }, false);
        const monitor = new NetlinkMonitor();
        const stop = (): void => monitor.close();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        for await (const e of monitor) {
          if (values.json) out(`${JSON.stringify(e, (_k, v: unknown) => (v === Infinity ? 'forever' : v))}\n`);
          else if (e.type === 'address') out(`${e.action === 'del' ? 'Deleted ' : ''}${e.address.linkIndex}: ${e.address.family === 4 ? 'inet' : 'inet6'} ${e.address.address}/${e.address.prefixLength}\n`);
          else if (e.type === 'link') out(`${e.action === 'del' ? 'Deleted ' : ''}${formatLink(e.link)}\n`);
          else out(`resync: ${e.links.length} links, ${e.addresses.length} addresses (notifications were lost)\n`);
        }
        return 0;
      }
      case 'demo': {
        flags(args, {}, false);
        const { runDemo } = await import('../demo/demo.js');
        return await runDemo({ out, err });
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`vipa: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    err(`vipa: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`vipa: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
