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
import { NetlinkConnection, type FailedAcks } from './connection.js';
import { RTM_NEWADDR, RTM_NEWLINK } from './constants.js';
import { decodeLink, encodeLinkDump, encodeLinkGet, type Link } from './link.js';
import { ACK_OK, MessageWriter, type NetlinkAck, type NetlinkMessage } from './message.js';

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
 * The outcome of one run of a {@link PreparedAddrBatch}: a summary when every
 * item succeeded (nothing per item is allocated), the per-item results only
 * when one failed.
 */
export type PreparedAddrBatchOutcome =
  | {
      readonly ok: true;
      /** Items that changed something; the others were absorbed by allowExisting/allowMissing. */
      readonly changed: number;
    }
  | {
      readonly ok: false;
      /** How many items failed (at least 1). */
      readonly failed: number;
      /** One result per item, in order, exactly as {@link Netlink.addrBatchSync} reports them. */
      readonly results: AddressBatchResult[];
    };

/**
 * Requests per sendto(2) in a batch. Each ack costs receive-buffer space
 * (skb truesize, not the 36 bytes of the ack), so a batch larger than the
 * socket's receive buffer would lose acks; chunks keep it well inside.
 */
const BATCH_CHUNK = 128;
const REQUEST_RECEIVE_BUFFER = 1 << 20;

const VERB_OP: Record<AddressVerb, string> = { add: 'addr add', replace: 'addr replace', delete: 'addr del' };

/** A validated batch item: the request, its verb and its options. */
interface BatchEntry {
  verb: AddressVerb;
  request: AddressRequest;
  options: AddressOptions;
}

function checkVerb(op: unknown): asserts op is AddressVerb {
  if (op !== 'add' && op !== 'replace' && op !== 'delete') throw new TypeError(`op must be 'add', 'replace' or 'delete', got ${JSON.stringify(op)}`);
}

/** Validates every item of a batch; a TypeError or RangeError names the item. */
function validateEach<T>(items: readonly T[], validate: (item: T) => BatchEntry): BatchEntry[] {
  if (!Array.isArray(items)) throw new TypeError(`batch must be an array, got ${String(items)}`);
  return items.map((item, i) => {
    try {
      return validate(item);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) {
        const Ctor = e instanceof TypeError ? TypeError : RangeError;
        throw new Ctor(`batch item ${i}: ${e.message}`);
      }
      throw e;
    }
  });
}

function kernelError(op: string, ack: NetlinkAck, subject: string): VipaError {
  const options: ConstructorParameters<typeof VipaError>[0] = { errno: ack.errno, syscall: 'netlink', op, subject };
  if (ack.message !== undefined) options.extack = ack.message;
  if (ack.offset !== undefined) options.extackOffset = ack.offset;
  return new VipaError(options);
}

/** Turns one ack into the operation's result: changed, unchanged (tolerated), or an error. */
function addressOutcome(verb: AddressVerb, r: AddressRequest, ack: NetlinkAck, options: AddressOptions): AddressBatchResult {
  if (ack.errno === 0) return { ok: true, changed: true };
  if (ack.errno === 17 /* EEXIST */ && verb === 'add' && options.allowExisting) return { ok: true, changed: false };
  if (ack.errno === 99 /* EADDRNOTAVAIL */ && verb === 'delete' && options.allowMissing) return { ok: true, changed: false };
  if (ack.errno === 19 /* ENODEV */ && typeof r.link === 'number') {
    // The kernel is the only authority on whether an index exists; it changed nothing.
    return { ok: false, error: new RangeError(`unknown interface index ${r.link}`) };
  }
  return { ok: false, error: kernelError(VERB_OP[verb], ack, describeRequest(r)) };
}

/** One result per entry, in order, from the failed acks (by entry index) of their requests. */
function batchResults(entries: readonly BatchEntry[], failed: FailedAcks | undefined): AddressBatchResult[] {
  return entries.map((v, i) => addressOutcome(v.verb, v.request, failed?.get(i) ?? ACK_OK, v.options));
}

/** Adds the failed acks of a chunk whose first entry is `from` to those of the whole batch. */
function collectFailed(all: FailedAcks | undefined, chunk: FailedAcks | undefined, from: number): FailedAcks | undefined {
  if (!chunk) return all;
  all ??= new Map();
  for (const [i, ack] of chunk) all.set(from + i, ack);
  return all;
}

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
    if (ack.errno !== 0) throw kernelError('link get', ack, String(link));
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
    const failed = this.conn.requestSync(VERB_OP[verb], seq, 1);
    const outcome = addressOutcome(verb, r, failed?.get(0) ?? ACK_OK, opts);
    if (!outcome.ok) throw outcome.error;
    return outcome.changed;
  }

  private async single(verb: AddressVerb, spec: AddressSpec, options: AddressOptions | undefined): Promise<boolean> {
    const opts = checkOptions(options);
    const validated = validateAddressSpec(spec);
    const r = this.needsLookup(validated) ? await this.resolve(validated) : validated;
    const seq = this.beginRequest();
    encodeAddressRequest(this.conn.writer, verb, r, seq);
    const failed = await this.conn.request(VERB_OP[verb], seq, 1);
    const outcome = addressOutcome(verb, r, failed?.get(0) ?? ACK_OK, opts);
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

  private validateBatch(items: readonly AddressBatchItem[]): BatchEntry[] {
    return validateEach(items, (item) => {
      if (item === null || typeof item !== 'object') throw new TypeError(`must be an object, got ${String(item)}`);
      const { op, allowExisting, allowMissing, ...spec } = item;
      checkVerb(op);
      const options: AddressOptions = {};
      if (allowExisting !== undefined) options.allowExisting = allowExisting;
      if (allowMissing !== undefined) options.allowMissing = allowMissing;
      return { verb: op, request: validateAddressSpec(spec), options: checkOptions(options) };
    });
  }

  private encodeChunk(entries: readonly BatchEntry[], from: number, to: number): number {
    const seq = this.beginRequest(to - from);
    for (let i = from; i < to; i++) encodeAddressRequest(this.conn.writer, entries[i]!.verb, entries[i]!.request, seq + i - from);
    return seq;
  }

  /**
   * Applies many address changes, sent together (up to 128 per sendto) and
   * acknowledged together, with one result per item in order. All items are
   * validated before anything is sent; a bad one throws and nothing changes.
   * A batch run again and again is cheaper prepared: {@link prepareAddrBatch}.
   */
  addrBatchSync(items: readonly AddressBatchItem[]): AddressBatchResult[] {
    const entries = this.validateBatch(items);
    const cache = new Map<LinkRef, ResolvedLink>();
    for (const v of entries) this.resolveSync(v.request, cache);
    let failed: FailedAcks | undefined;
    for (let from = 0; from < entries.length; from += BATCH_CHUNK) {
      const to = Math.min(from + BATCH_CHUNK, entries.length);
      const seq = this.encodeChunk(entries, from, to);
      failed = collectFailed(failed, this.conn.requestSync('addr batch', seq, to - from), from);
    }
    return batchResults(entries, failed);
  }

  /** Promise form of {@link addrBatchSync}. */
  async addrBatch(items: readonly AddressBatchItem[]): Promise<AddressBatchResult[]> {
    const entries = this.validateBatch(items);
    const cache = new Map<LinkRef, ResolvedLink>();
    for (const v of entries) await this.resolve(v.request, cache);
    let failed: FailedAcks | undefined;
    for (let from = 0; from < entries.length; from += BATCH_CHUNK) {
      const to = Math.min(from + BATCH_CHUNK, entries.length);
      const seq = this.encodeChunk(entries, from, to);
      failed = collectFailed(failed, await this.conn.request('addr batch', seq, to - from), from);
    }
    return batchResults(entries, failed);
  }

  /**
   * Validates and encodes one change of many addresses once, to be applied
   * many times with {@link PreparedAddrBatch.runSync}: a takeover's write and
   * its lease renewals send the same requests again and again, and a run
   * only patches sequence numbers into the prebuilt requests, sends them and
   * reads the acks. Interface names are resolved now (the requests carry
   * the index; an interface deleted later fails each run's items with
   * ENODEV), and later changes to `specs` do not reach the batch. Throws
   * TypeError or RangeError naming the bad value (and the item) before
   * anything is sent; preparing changes nothing in the kernel.
   *
   * @example
   * ```ts
   * const write = nl.prepareAddrBatch('replace', specs.map((s) => ({ ...s, validLifetime: 3, proto: VIPA_PROTO })));
   * const outcome = write.runSync();
   * if (!outcome.ok) console.log(outcome.results.filter((r) => !r.ok));
   * ```
   */
  prepareAddrBatch(op: AddressVerb, specs: readonly AddressSpec[], options?: AddressOptions): PreparedAddrBatch {
    checkVerb(op);
    const opts = checkOptions(options);
    const entries = validateEach(specs, (spec) => ({ verb: op, request: validateAddressSpec(spec), options: opts }));
    const cache = new Map<LinkRef, ResolvedLink>();
    for (const v of entries) this.resolveSync(v.request, cache);
    return new PreparedAddrBatch(this.conn, op, entries);
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

/** The prebuilt requests of one sendto(2): at most BATCH_CHUNK of a prepared batch. */
interface PreparedChunk {
  /** Index of the chunk's first entry in the batch. */
  from: number;
  count: number;
  /** The requests, exactly as long as they are. */
  bytes: Buffer;
  /** The same memory as 32-bit words, to patch sequence numbers. */
  words: Uint32Array;
  /** Word index of each request's nlmsg_seq. */
  seqWords: Uint32Array;
}

/**
 * Address changes validated and encoded once by
 * {@link Netlink.prepareAddrBatch}, applied by each {@link runSync} (or
 * {@link run}) as {@link Netlink.addrBatchSync} would apply them: up to 128
 * requests per sendto(2), one ack each, the same errors per item. Bound to
 * the handle that prepared it; fails with EBADF once that is closed.
 */
export class PreparedAddrBatch {
  /** The change every item makes. */
  readonly op: AddressVerb;
  /** How many addresses the batch changes. */
  readonly length: number;
  private readonly conn: NetlinkConnection;
  private readonly entries: readonly BatchEntry[];
  private readonly chunks: PreparedChunk[] = [];
  /** The outcome of a run in which every ack was 0: one frozen object, shared by every such run. */
  private readonly allChanged: PreparedAddrBatchOutcome;

  /** @internal Made by {@link Netlink.prepareAddrBatch}, which validates `entries`. */
  constructor(conn: NetlinkConnection, op: AddressVerb, entries: readonly BatchEntry[]) {
    this.conn = conn;
    this.op = op;
    this.entries = entries;
    this.length = entries.length;
    this.allChanged = Object.freeze({ ok: true, changed: entries.length });
    for (let from = 0; from < entries.length; from += BATCH_CHUNK) {
      const to = Math.min(from + BATCH_CHUNK, entries.length);
      const w = new MessageWriter();
      const starts: number[] = [];
      for (let i = from; i < to; i++) {
        starts.push(w.length);
        encodeAddressRequest(w, entries[i]!.verb, entries[i]!.request, 0);
      }
      // Its own ArrayBuffer: aligned for the word view, and never shared with a pool.
      const memory = new ArrayBuffer(w.length);
      const bytes = Buffer.from(memory);
      w.buffer.copy(bytes, 0, 0, w.length);
      this.chunks.push({ from, count: to - from, bytes, words: new Uint32Array(memory), seqWords: Uint32Array.from(starts, (o) => (o + 8) >> 2) });
    }
  }

  /** Takes fresh sequence numbers for a chunk and writes them into its requests; returns the first. */
  private stamp(chunk: PreparedChunk): number {
    const seq = this.conn.nextSeq(chunk.count);
    const { words, seqWords } = chunk;
    for (let i = 0; i < seqWords.length; i++) words[seqWords[i]!] = (seq + i) >>> 0;
    return seq;
  }

  private outcome(failed: FailedAcks | undefined): PreparedAddrBatchOutcome {
    if (!failed) return this.allChanged;
    const results = batchResults(this.entries, failed);
    let bad = 0;
    let changed = 0;
    for (const r of results) {
      if (!r.ok) bad++;
      else if (r.changed) changed++;
    }
    return bad === 0 ? { ok: true, changed } : { ok: false, failed: bad, results };
  }

  /**
   * Applies the batch once. When every ack is 0 it returns the same frozen
   * `{ ok: true, changed: length }` every time, allocating nothing; the
   * per-item results come only when an item failed. A bad item does not
   * stop the others. Throws VipaError only when the socket fails (closed
   * handle, no answer within 10 s); chunks sent before that stay applied.
   */
  runSync(): PreparedAddrBatchOutcome {
    let failed: FailedAcks | undefined;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      const seq = this.stamp(chunk);
      const chunkFailed = this.conn.requestSync('addr batch', seq, chunk.count, chunk.bytes, chunk.bytes.length);
      if (chunkFailed) failed = collectFailed(failed, chunkFailed, chunk.from);
    }
    return this.outcome(failed);
  }

  /** Promise form of {@link runSync}; never blocks the event loop. */
  async run(): Promise<PreparedAddrBatchOutcome> {
    let failed: FailedAcks | undefined;
    for (const chunk of this.chunks) {
      // Stamped and sent in one synchronous step: concurrent runs cannot mix their sequence numbers.
      const chunkFailed = await this.conn.request('addr batch', this.stamp(chunk), chunk.count, chunk.bytes, chunk.bytes.length);
      if (chunkFailed) failed = collectFailed(failed, chunkFailed, chunk.from);
    }
    return this.outcome(failed);
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
