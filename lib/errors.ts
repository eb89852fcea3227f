/**
 * One error model for the whole package.
 *
 * Every failure that comes from the operating system or from the kernel is a
 * {@link VipaError}: `code` is the errno name ('EEXIST', 'EPERM', ...), `errno`
 * the positive number, `syscall` the system call that failed (or `'netlink'`
 * when the kernel answered a request with an error), `op` the vipa operation
 * in progress (e.g. `'addr add'`) and `extack` the kernel's extended-ack text
 * when it gave one. The native addon receives this class at load time and
 * throws real instances of it, so `instanceof VipaError` holds across the
 * boundary.
 *
 * Bad arguments are not VipaErrors: they are refused before anything reaches
 * the kernel with a plain `TypeError` (wrong shape) or `RangeError` (value out
 * of range), whose message names the bad value.
 *
 * Malformed input from the network (packets, heartbeats) raises
 * {@link DecodeError}, which names the codec and the byte offset.
 */
import { constants as osConstants } from 'node:os';

/** Errno number → name ('EEXIST'), from Node's own table. */
const errnoNames: ReadonlyMap<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** The name of an errno value, e.g. `errnoName(17) === 'EEXIST'`; `'E<n>'` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The errno number for a name, e.g. `errnoNumber('EEXIST') === 17`. */
export function errnoNumber(code: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[code];
}

/** Capability hints for permission errors, keyed by the syscall or operation family. */
function privilegeHint(code: string, syscall: string, op: string): string {
  if (code !== 'EPERM' && code !== 'EACCES') return '';
  if (syscall === 'setns' || op.startsWith('netns')) {
    return ' (entering a network namespace needs CAP_SYS_ADMIN over it: run as root or inside `unshare -rn`)';
  }
  if (op.startsWith('packet') || op.startsWith('announce') || op.startsWith('arp') || op.startsWith('ndp')) {
    return ' (raw packet sockets need CAP_NET_RAW: run as root, `setcap cap_net_raw+ep`, or inside `unshare -rn`)';
  }
  return ' (changing addresses and links needs CAP_NET_ADMIN: run as root, `setcap cap_net_admin+ep`, or inside `unshare -rn`)';
}

/** Options accepted by the {@link VipaError} constructor. */
export interface VipaErrorOptions {
  /** Positive errno value. */
  errno: number;
  /** The system call that failed, or `'netlink'` for a kernel rejection of a request. */
  syscall: string;
  /** The vipa operation in progress, e.g. `'addr add'`, `'link list'`, `'packet open'`. */
  op?: string;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when present. */
  extack?: string;
  /** Byte offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS), when present. */
  extackOffset?: number;
  /** What the operation was about, e.g. `'198.51.100.7/24 dev veth0'`. */
  subject?: string;
  /** Underlying cause. */
  cause?: unknown;
}

/**
 * A failure reported by the operating system or the kernel.
 *
 * `syscall === 'netlink'` means the request reached the kernel and the kernel
 * refused it (an NLMSG_ERROR with a negative error); any other `syscall` means
 * the system call itself failed (socket, sendto, setns, ...).
 */
export class VipaError extends Error {
  /** Errno name, e.g. 'EEXIST'. */
  readonly code: string;
  /** Positive errno value. */
  readonly errno: number;
  /** The failing system call, or 'netlink' for a kernel rejection. */
  readonly syscall: string;
  /** The vipa operation in progress. */
  readonly op: string;
  /** Kernel extended-ack text, when the kernel gave one. */
  readonly extack: string | undefined;
  /** Offset of the offending attribute in the request, when the kernel gave one. */
  readonly extackOffset: number | undefined;
  /** What the operation was about (address, interface, ...). */
  readonly subject: string | undefined;

  constructor(options: VipaErrorOptions) {
    const code = errnoName(options.errno);
    const op = options.op ?? options.syscall;
    const what = options.subject ? ` ${options.subject}` : '';
    const ack = options.extack ? `: ${options.extack}` : '';
    const source = options.syscall === 'netlink' ? 'kernel refused' : `${options.syscall} failed`;
    super(`${op}${what}: ${source}: ${code}${ack}${privilegeHint(code, options.syscall, op)}`, {
      cause: options.cause,
    });
    this.name = 'VipaError';
    this.code = code;
    this.errno = options.errno;
    this.syscall = options.syscall;
    this.op = op;
    this.extack = options.extack;
    this.extackOffset = options.extackOffset;
    this.subject = options.subject;
  }

  /** True when the kernel (not a syscall) refused the request. */
  get isKernelRejection(): boolean {
    return this.syscall === 'netlink';
  }
}

/**
 * Malformed bytes from the network or the kernel: short, truncated or
 * inconsistent input. Decoders throw only this type.
 */
export class DecodeError extends Error {
  /** Which codec refused the input, e.g. 'arp', 'ndp', 'netlink', 'heartbeat'. */
  readonly codec: string;
  /** Byte offset where decoding failed. */
  readonly offset: number;
  /** A stable reason code, e.g. 'short', 'truncated', 'bad-checksum'. */
  readonly reason: string;

  constructor(codec: string, reason: string, offset: number, detail: string) {
    super(`${codec}: ${reason} at byte ${offset}: ${detail}`);
    this.name = 'DecodeError';
    this.codec = codec;
    this.offset = offset;
    this.reason = reason;
  }
}
