/**
 * The rtnetlink handle: interface addresses and links of one network
 * namespace, each operation in a synchronous form (`...Sync`, for the
 * takeover hot path) and a Promise form that never blocks the event loop.
 * Operations are named after the ip(8) command they equal.
 */
import { VipaError } from '../errors.js';
import type { IpFamily } from '../ip.js';
import {
  bindLink,
  checkLinkRef,
  describeRequest,
  decodeAddress,
  encodeAddressDump,
  encodeAddressRequest,
  validateAddressSpec,
  type Address,
  type AddressFilter,
  type AddressOptions,
  type AddressRequest,
  type AddressSpec,
  type AddressVerb,
  type LinkRef,
  type ResolvedLink,
} from './address.js';
import { NetlinkConnection } from './connection.js';
import { RTM_NEWADDR, RTM_NEWLINK } from './constants.js';
import { decodeLink, encodeLinkDump, encodeLinkGet, type Link } from './link.js';
import type { NetlinkAck, NetlinkMessage } from './message.js';

/** Where to open a handle. */
export interface NetlinkOptions {
  /**
   * Network namespace: a path such as /run/netns/NAME or /proc/PID/ns/net, or
   * an open fd. Default: the namespace of the calling thread.
   */
  netns?: string | number;
}

/** One change of a batch: an address spec plus the verb. */
export type AddressBatchItem = AddressSpec & AddressOptions & { op: AddressVerb };

/** The outcome of one batch item. */
export type AddressBatchResult =
  | { ok: true; /** false when allowExisting/allowMissing absorbed EEXIST/EADDRNOTAVAIL */ changed: boolean }
  | { ok: false; error: VipaError | RangeError };

/**
 * Requests per sendto(2) in a batch. Each ack costs receive-buffer space
 * (skb truesize, not the 36 bytes of the ack), so a batch larger than the
 * socket's receive buffer would lose acks; chunks keep it well inside.
 */
const BATCH_CHUNK = 128;
const REQUEST_RECEIVE_BUFFER = 1 << 20;

const VERB_OP: Record<AddressVerb, string> = { add: 'addr add', replace: 'addr replace', delete: 'addr del' };

function checkOptions(options: AddressOptions | undefined): AddressOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
  for (const key of ['allowExisting', 'allowMissing'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') {
      throw new TypeError(`${key} must be a boolean, got ${String(options[key])}`);
    }
  }
  return options;
}

/**
 * A handle on one network namespace's rtnetlink. Close it with `close()` or
 * `using`; it holds one socket.
 *
 * @example
 * ```ts
 * using nl = new Netlink();
 * nl.addrAddSync({ link: 'eth0', address: '198.51.100.7/24', proto: VIPA_PROTO });
 * ```
 */
export class Netlink implements Disposable {
  private readonly conn: NetlinkConnection;
  /** The namespace this handle was opened in (undefined = caller's). */
  readonly netns: string | number | undefined;

  constructor(options: NetlinkOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${String(options)}`);
    const { netns } = options;
    if (netns !== undefined && typeof netns !== 'string' && !(Number.isInteger(netns) && netns >= 0)) {
      throw new TypeError(`netns must be a path or an fd, got ${String(netns)}`);
    }
    this.netns = netns;
    this.conn = new NetlinkConnection(netns === undefined ? {} : { netns }, 'netlink open');
    this.conn.socket.setBufferSizes(REQUEST_RECEIVE_BUFFER, REQUEST_RECEIVE_BUFFER);
  }

  // ---- links ----------------------------------------------------------------

  private linkGetFinish(link: LinkRef, ack: NetlinkAck, found: Link | undefined): Link {
    if (ack.errno === 19 /* ENODEV */ || (ack.errno === 0 && !found)) {
      throw new RangeError(`unknown interface ${typeof link === 'number' ? `index ${link}` : JSON.stringify(link)}`);
    }
    if (ack.errno !== 0) throw this.kernelError('link get', ack, String(link));
    return found!;
  }

  /** One link by name or index. Equivalent to: ip link show dev LINK. RangeError when there is none. */
  linkGetSync(link: LinkRef): Link {
    checkLinkRef(link);
    const seq = this.beginRequest();
    encodeLinkGet(this.conn.writer, link, seq);
    let found: Link | undefined;
    const [ack] = this.conn.exchangeSync('link get', seq, 1, (m) => {
      if (m.type === RTM_NEWLINK) found = decodeLink(m);
    });
    return this.linkGetFinish(link, ack!, found);
  }

  /** Promise form of {@link linkGetSync}. */
  async linkGet(link: LinkRef): Promise<Link> {
    checkLinkRef(link);
    const seq = this.beginRequest();
    encodeLinkGet(this.conn.writer, link, seq);
    let found: Link | undefined;
    const [ack] = await this.conn.exchange('link get', seq, 1, (m) => {
      if (m.type === RTM_NEWLINK) found = decodeLink(m);
    });
    return this.linkGetFinish(link, ack!, found);
  }

  /** All links. Equivalent to: ip link show. */
  linkListSync(): Link[] {
    let links: Link[] = [];
    this.conn.dumpSync('link list', (seq) => encodeLinkDump(this.conn.writer, seq), collectLinks(() => links), () => (links = []));
    return links;
  }

  /** Promise form of {@link linkListSync}. */
  async linkList(): Promise<Link[]> {
    let links: Link[] = [];
    await this.conn.dump('link list', (seq) => encodeLinkDump(this.conn.writer, seq), collectLinks(() => links), () => (links = []));
    return links;
  }

  // ---- addresses --------------------------------------------------------------

  private beginRequest(count = 1): number {
    this.conn.writer.reset();
    return this.conn.nextSeq(count);
  }

  private kernelError(op: string, ack: NetlinkAck, subject: string): VipaError {
    const options: ConstructorParameters<typeof VipaError>[0] = { errno: ack.errno, syscall: 'netlink', op, subject };
    if (ack.message !== undefined) options.extack = ack.message;
    if (ack.offset !== undefined) options.extackOffset = ack.offset;
    return new VipaError(options);
  }

  /** Turns one ack into the operation's result: changed, unchanged (tolerated), or an error. */
  private addressOutcome(verb: AddressVerb, r: AddressRequest, ack: NetlinkAck, options: AddressOptions): AddressBatchResult {
    if (ack.errno === 0) return { ok: true, changed: true };
    if (ack.errno === 17 /* EEXIST */ && verb === 'add' && options.allowExisting) return { ok: true, changed: false };
    if (ack.errno === 99 /* EADDRNOTAVAIL */ && verb === 'delete' && options.allowMissing) return { ok: true, changed: false };
    if (ack.errno === 19 /* ENODEV */ && typeof r.link === 'number') {
      // The kernel is the only authority on whether an index exists; it changed nothing.
      return { ok: false, error: new RangeError(`unknown interface index ${r.link}`) };
    }
    return { ok: false, error: this.kernelError(VERB_OP[verb], ack, describeRequest(r)) };
  }

  private needsLookup(r: AddressRequest): boolean {
    return typeof r.link === 'string' || r.needsLinkName;
  }

  private resolveSync(r: AddressRequest, cache?: Map<LinkRef, ResolvedLink>): AddressRequest {
    if (!this.needsLookup(r)) return r;
    let link = cache?.get(r.link);
    if (!link) {
      const found = this.linkGetSync(r.link);
      link = { index: found.index, name: found.name };
      cache?.set(r.link, link);
    }
    return bindLink(r, link);
  }

  private async resolve(r: AddressRequest, cache?: Map<LinkRef, ResolvedLink>): Promise<AddressRequest> {
    if (!this.needsLookup(r)) return r;
    let link = cache?.get(r.link);
    if (!link) {
      const found = await this.linkGet(r.link);
      link = { index: found.index, name: found.name };
      cache?.set(r.link, link);
    }
    return bindLink(r, link);
  }

  private singleSync(verb: AddressVerb, spec: AddressSpec, options: AddressOptions | undefined): boolean {
    const opts = checkOptions(options);
    const r = this.resolveSync(validateAddressSpec(spec));
    const seq = this.beginRequest();
    encodeAddressRequest(this.conn.writer, verb, r, seq);
    const [ack] = this.conn.exchangeSync(VERB_OP[verb], seq, 1);
    const outcome = this.addressOutcome(verb, r, ack!, opts);
    if (!outcome.ok) throw outcome.error;
    return outcome.changed;
  }

  private async single(verb: AddressVerb, spec: AddressSpec, options: AddressOptions | undefined): Promise<boolean> {
    const opts = checkOptions(options);
    const validated = validateAddressSpec(spec);
    const r = this.needsLookup(validated) ? await this.resolve(validated) : validated;
    const seq = this.beginRequest();
    encodeAddressRequest(this.conn.writer, verb, r, seq);
    const [ack] = await this.conn.exchange(VERB_OP[verb], seq, 1);
    const outcome = this.addressOutcome(verb, r, ack!, opts);
    if (!outcome.ok) throw outcome.error;
    return outcome.changed;
  }

  /**
   * Adds an address. Equivalent to: ip addr add ADDRESS/PREFIX dev LINK.
   * Returns true, or false when it existed and `allowExisting` was set.
   */
  addrAddSync(spec: AddressSpec, options?: AddressOptions): boolean {
    return this.singleSync('add', spec, options);
  }

  /** Promise form of {@link addrAddSync}. */
  addrAdd(spec: AddressSpec, options?: AddressOptions): Promise<boolean> {
    return this.single('add', spec, options);
  }

  /** Adds or updates an address (flags, lifetimes). Equivalent to: ip addr replace ADDRESS/PREFIX dev LINK. */
  addrReplaceSync(spec: AddressSpec): void {
    this.singleSync('replace', spec, undefined);
  }

  /** Promise form of {@link addrReplaceSync}. */
  async addrReplace(spec: AddressSpec): Promise<void> {
    await this.single('replace', spec, undefined);
  }

  /**
   * Deletes an address. Equivalent to: ip addr del ADDRESS/PREFIX dev LINK.
   * Returns true, or false when it was absent and `allowMissing` was set.
   */
  addrDelSync(spec: AddressSpec, options?: AddressOptions): boolean {
    return this.singleSync('delete', spec, options);
  }

  /** Promise form of {@link addrDelSync}. */
  addrDel(spec: AddressSpec, options?: AddressOptions): Promise<boolean> {
    return this.single('delete', spec, options);
  }

  private validateBatch(items: readonly AddressBatchItem[]): { verb: AddressVerb; request: AddressRequest; options: AddressOptions }[] {
    if (!Array.isArray(items)) throw new TypeError(`batch must be an array, got ${String(items)}`);
    return items.map((item, i) => {
      try {
        if (item === null || typeof item !== 'object') throw new TypeError(`must be an object, got ${String(item)}`);
        const { op, allowExisting, allowMissing, ...spec } = item;
        if (op !== 'add' && op !== 'replace' && op !== 'delete') throw new TypeError(`op must be 'add', 'replace' or 'delete', got ${JSON.stringify(op)}`);
        const options: AddressOptions = {};
        if (allowExisting !== undefined) options.allowExisting = allowExisting;
        if (allowMissing !== undefined) options.allowMissing = allowMissing;
        return { verb: op, request: validateAddressSpec(spec), options: checkOptions(options) };
      } catch (e) {
        if (e instanceof TypeError || e instanceof RangeError) {
          const Ctor = e instanceof TypeError ? TypeError : RangeError;
          throw new Ctor(`batch item ${i}: ${e.message}`);
        }
        throw e;
      }
    });
  }

  private encodeChunk(items: { verb: AddressVerb; request: AddressRequest }[], from: number, to: number): number {
    const seq = this.beginRequest(to - from);
    for (let i = from; i < to; i++) encodeAddressRequest(this.conn.writer, items[i]!.verb, items[i]!.request, seq + i - from);
    return seq;
  }

  /**
   * Applies many address changes, sent together (up to 128 per sendto) and
   * acknowledged together, with one result per item in order. All items are
   * validated before anything is sent; a bad one throws and nothing changes.
   */
  addrBatchSync(items: readonly AddressBatchItem[]): AddressBatchResult[] {
    const validated = this.validateBatch(items);
    const cache = new Map<LinkRef, ResolvedLink>();
    for (const v of validated) this.resolveSync(v.request, cache);
    const results: AddressBatchResult[] = [];
    for (let from = 0; from < validated.length; from += BATCH_CHUNK) {
      const to = Math.min(from + BATCH_CHUNK, validated.length);
      const seq = this.encodeChunk(validated, from, to);
      const acks = this.conn.exchangeSync('addr batch', seq, to - from);
      for (let i = from; i < to; i++) results.push(this.addressOutcome(validated[i]!.verb, validated[i]!.request, acks[i - from]!, validated[i]!.options));
    }
    return results;
  }

  /** Promise form of {@link addrBatchSync}. */
  async addrBatch(items: readonly AddressBatchItem[]): Promise<AddressBatchResult[]> {
    const validated = this.validateBatch(items);
    const cache = new Map<LinkRef, ResolvedLink>();
    for (const v of validated) await this.resolve(v.request, cache);
    const results: AddressBatchResult[] = [];
    for (let from = 0; from < validated.length; from += BATCH_CHUNK) {
      const to = Math.min(from + BATCH_CHUNK, validated.length);
      const seq = this.encodeChunk(validated, from, to);
      const acks = await this.conn.exchange('addr batch', seq, to - from);
      for (let i = from; i < to; i++) results.push(this.addressOutcome(validated[i]!.verb, validated[i]!.request, acks[i - from]!, validated[i]!.options));
    }
    return results;
  }

  private checkFilter(filter: AddressFilter | undefined): AddressFilter {
    if (filter === undefined) return {};
    if (filter === null || typeof filter !== 'object') throw new TypeError(`filter must be an object, got ${String(filter)}`);
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) throw new RangeError(`family must be 4 or 6, got ${String(filter.family)}`);
    if (filter.proto !== undefined && !(Number.isInteger(filter.proto) && filter.proto >= 0 && filter.proto <= 255)) {
      throw new RangeError(`proto must be an integer 0..255, got ${String(filter.proto)}`);
    }
    if (filter.link !== undefined) checkLinkRef(filter.link);
    return filter;
  }

  /** Addresses, optionally filtered. Equivalent to: ip addr show [dev LINK] [-4|-6] [proto N]. */
  addrListSync(filter?: AddressFilter): Address[] {
    const f = this.checkFilter(filter);
    const index = typeof f.link === 'string' ? this.linkGetSync(f.link).index : f.link;
    let list: Address[] = [];
    this.conn.dumpSync('addr list', (seq) => encodeAddressDump(this.conn.writer, f.family, seq), collectAddresses(() => list, f, index), () => (list = []));
    return list;
  }

  /** Promise form of {@link addrListSync}. */
  async addrList(filter?: AddressFilter): Promise<Address[]> {
    const f = this.checkFilter(filter);
    const index = typeof f.link === 'string' ? (await this.linkGet(f.link)).index : f.link;
    let list: Address[] = [];
    await this.conn.dump('addr list', (seq) => encodeAddressDump(this.conn.writer, f.family, seq), collectAddresses(() => list, f, index), () => (list = []));
    return list;
  }

  /** Closes the handle's socket. Idempotent. */
  close(): void {
    this.conn.close();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function collectLinks(target: () => Link[]): (m: NetlinkMessage) => void {
  return (m) => {
    if (m.type === RTM_NEWLINK) target().push(decodeLink(m));
  };
}

function collectAddresses(target: () => Address[], f: AddressFilter, index: number | undefined): (m: NetlinkMessage) => void {
  return (m) => {
    if (m.type !== RTM_NEWADDR) return;
    const a = decodeAddress(m);
    if (!a) return;
    if (index !== undefined && a.linkIndex !== index) return;
    if (f.family !== undefined && a.family !== (f.family as IpFamily)) return;
    if (f.proto !== undefined && a.proto !== f.proto) return;
    target().push(a);
  };
}
