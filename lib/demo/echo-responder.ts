/**
 * The UDP echo responder every cluster host runs for the client prober
 * (lib/demo/prober.ts): it answers each probe with the probe's bytes and the
 * host's name, so the client sees which host holds the virtual address.
 *
 * It binds the wildcard addresses (0.0.0.0 and [::]) rather than the virtual
 * address: the address comes and goes while the responder runs, and a
 * wildcard socket answers whatever address the probe reached. Node's dgram
 * cannot choose a reply's source address (no IP_PKTINFO), so the kernel picks
 * it by route, often the host's own address rather than the virtual one; the
 * prober therefore accepts replies from any source and identifies the host
 * by the name in the payload.
 */
import dgram from 'node:dgram';
import { MAX_RESPONDER_NAME_BYTES, PROBE_LENGTH } from './probe-wire.js';
import { bindSocket, closeSocket } from './udp-socket.js';

/** Options of {@link EchoResponder.start}. */
export interface EchoResponderOptions {
  /** UDP port, 1..65535 (0 = any, for tests; read it back from {@link EchoResponder.port}). */
  port: number;
  /** This host's name, carried in every reply: 1..64 bytes of UTF-8. */
  name: string;
  /** Families to answer (default both). IPv6 binds with IPV6_V6ONLY so the two sockets do not collide. */
  families?: ReadonlyArray<4 | 6>;
}

/** Counters of an {@link EchoResponder}. */
export interface EchoResponderStats {
  /** Probes answered (handed to the kernel). */
  answered: number;
  /** Datagrams that were not a 12-byte probe, ignored. */
  ignored: number;
  /** Replies the kernel refused (e.g. no route back, EPERM from a firewall). */
  sendErrors: number;
}

/** A running echo responder. Create with {@link EchoResponder.start}; end with {@link EchoResponder.close}. */
export class EchoResponder {
  /** The bound port (the requested one, or the kernel's pick for 0). */
  readonly port: number;
  private readonly sockets: dgram.Socket[];
  private readonly counters: EchoResponderStats;

  private constructor(port: number, sockets: dgram.Socket[], counters: EchoResponderStats) {
    this.port = port;
    this.sockets = sockets;
    this.counters = counters;
  }

  /**
   * Binds the sockets and starts answering. Rejects (after closing what it
   * opened) when a bind fails, e.g. EADDRINUSE or no IPv6 in this namespace.
   */
  static async start(options: EchoResponderOptions): Promise<EchoResponder> {
    const { port, name } = options;
    const families = options.families ?? [4, 6];
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, got ${port}`);
    if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
    const nameBuffer = Buffer.from(name, 'utf8');
    if (nameBuffer.length < 1 || nameBuffer.length > MAX_RESPONDER_NAME_BYTES) {
      throw new RangeError(`name must have 1..${MAX_RESPONDER_NAME_BYTES} bytes of UTF-8, got ${nameBuffer.length}`);
    }
    if (families.length === 0 || families.some((f) => f !== 4 && f !== 6)) {
      throw new RangeError(`families must be a non-empty list of 4 and 6, got ${JSON.stringify(families)}`);
    }

    const counters: EchoResponderStats = { answered: 0, ignored: 0, sendErrors: 0 };
    // One callback for every send: without a callback dgram reports a failed
    // send as an 'error' event, and one unreachable client must not end us.
    const onSent = (error: Error | null): void => {
      if (error) counters.sendErrors++;
    };
    const sockets: dgram.Socket[] = [];
    let boundPort = port;
    try {
      for (const family of families) {
        const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
        sockets.push(socket);
        await bindSocket(socket, boundPort, family === 4 ? '0.0.0.0' : '::');
        // With port 0 the second family takes the first one's port, so one number serves both.
        boundPort = socket.address().port;
        socket.on('error', () => {
          counters.sendErrors++;
        });
        socket.on('message', (probe, remote) => {
          if (probe.length !== PROBE_LENGTH) {
            counters.ignored++;
            return;
          }
          // Scatter/gather: the probe buffer dgram already allocated and the
          // name, no copy. A link-local sender's address comes with its scope
          // (fe80::…%eth0), so those get answers too.
          socket.send([probe, nameBuffer], remote.port, remote.address, onSent);
          counters.answered++;
        });
      }
    } catch (e) {
      await Promise.all(sockets.map((s) => closeSocket(s)));
      throw e;
    }
    return new EchoResponder(boundPort, sockets, counters);
  }

  /** A snapshot of the counters. */
  get stats(): EchoResponderStats {
    return { ...this.counters };
  }

  /** Closes the sockets; resolves when they are closed. Safe to call twice. */
  async close(): Promise<void> {
    const sockets = this.sockets.splice(0);
    await Promise.all(sockets.map((s) => closeSocket(s)));
  }
}
