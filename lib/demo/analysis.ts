/**
 * What a client saw during a failover, computed from a prober timeline
 * (lib/demo/prober.ts): the longest time without a UDP reply, how long two
 * hosts (MACs) answered for the address at once, and who answered before and
 * after. Pure functions over plain records, shared by the multi-process
 * tests, the live demo and the failover bench.
 *
 * Times are milliseconds of CLOCK_MONOTONIC ({@link monotonicMs} in
 * probe-wire.ts); a parent that timestamps its events with the same clock
 * lines up with the records of a prober in another process.
 */

/** One echo reply the prober received. */
export interface ProbeReply {
  /** The probe's sequence number. */
  seq: number;
  /** When the probe was sent (ms, CLOCK_MONOTONIC). */
  sentAt: number;
  /** Round trip (ms): the reply arrived at sentAt + rttMs. */
  rttMs: number;
  /** The name of the host that answered. */
  responder: string;
}

/**
 * How a neighbour message shows that a MAC holds the address:
 * - 'reply': an ARP reply / solicited Neighbor Advertisement, most of them
 *   answers to the prober's own requests;
 * - 'announcement': a gratuitous ARP / unsolicited Neighbor Advertisement;
 * - 'request': an ARP request / Neighbor Solicitation sent from the address
 *   (its holder resolving someone, e.g. the client to reply to it).
 */
export type NeighborKind = 'reply' | 'announcement' | 'request';

/** One neighbour message for the address. */
export interface NeighborRecord {
  /** When it arrived (ms, CLOCK_MONOTONIC). */
  at: number;
  /** The MAC claiming the address (colon hex, lower case). */
  mac: string;
  kind: NeighborKind;
}

/** A probe without a reply within the loss timeout. */
export interface LostProbe {
  seq: number;
  /** When it was sent (ms). */
  sentAt: number;
}

/**
 * A time the prober's event loop did not run (its timer fired this late):
 * replies that arrived meanwhile were read, and timestamped, at its end.
 */
export interface ProberStall {
  from: number;
  to: number;
}

/** A prober's timeline. Arrays are in arrival order, which need not be sequence order. */
export interface ProbeRecord {
  replies: ProbeReply[];
  neighbors: NeighborRecord[];
  lost: LostProbe[];
  stalls: ProberStall[];
}

/** When a reply arrived. */
export function replyTime(reply: ProbeReply): number {
  return reply.sentAt + reply.rttMs;
}

/** A time without replies. */
export interface Gap {
  /** Last reply before the gap, or the window's start. */
  from: number;
  /** First reply after the gap, or the window's end. */
  to: number;
  /** to − from. */
  ms: number;
  /**
   * Whether the gap is cut by the window rather than bounded by replies:
   * 'start' (no reply between the window's start and `to`), 'end' (none
   * after `from` until the window's end: the service had not come back),
   * 'both' (no reply in the window at all), 'none'.
   */
  edge: 'none' | 'start' | 'end' | 'both';
  /**
   * How much of the gap the prober was stalled (overlap with
   * {@link ProbeRecord.stalls}). Replies that came during a stall were
   * timestamped at its end, so only ms − stalledMs is sure to be the
   * service's: a lower bound of the real gap.
   */
  stalledMs: number;
}

/** Options of {@link outages}. */
export interface OutageOptions {
  /** Window start (ms, inclusive). */
  from: number;
  /** Window end (ms, inclusive). */
  to: number;
  /** The probe interval (default 1 ms): gaps are judged against it. */
  intervalMs?: number;
  /** List gaps longer than factor × intervalMs (default 3). */
  factor?: number;
}

/** The outcome of {@link outages}. */
export interface OutageReport {
  /**
   * The outage: the longest gap in the window (ms), not counting the time the
   * prober itself was stalled in it (ms − stalledMs of that gap).
   */
  longestMs: number;
  /** That gap. */
  longest: Gap | undefined;
  /** Every gap whose ms − stalledMs exceeds factor × intervalMs, in time order. */
  gaps: Gap[];
  /**
   * Gaps longer than factor × intervalMs only because the prober stalled:
   * left out of the outage, listed so a measurement with holes shows.
   */
  stalls: Gap[];
  /** Replies that arrived in the window. */
  replies: number;
}

function checkWindow(from: number, to: number): void {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new RangeError(`window must be finite with from <= to, got [${from}, ${to}]`);
  }
}

/**
 * Overlap of intervals queried in ascending order with a set of stalls:
 * one pass over the stalls for all queries (an hour at 1 ms is 3.6 million
 * gaps). Stalls are the prober's timer gaps, so they do not overlap.
 */
function stallOverlap(stalls: readonly ProberStall[]): (from: number, to: number) => number {
  const sorted = [...stalls].sort((x, y) => x.from - y.from);
  let first = 0;
  return (from, to) => {
    while (first < sorted.length && sorted[first]!.to <= from) first++;
    let ms = 0;
    for (let i = first; i < sorted.length && sorted[i]!.from < to; i++) ms += Math.min(to, sorted[i]!.to) - Math.max(from, sorted[i]!.from);
    return ms;
  };
}

/**
 * The gaps without a UDP reply in the window [from, to], judged by arrival
 * time (what the client experiences; replies out of sequence order and
 * duplicates are fine). The window's edges bound the first and last gap, so
 * a service that never answered again shows as a gap reaching `to`.
 *
 * Time the prober was stalled is taken out of each gap (see
 * {@link Gap.stalledMs}): a prober whose event loop stopped for 40 ms
 * receives nothing for 40 ms without the service being down.
 */
export function outages(timeline: { replies: readonly ProbeReply[]; stalls?: readonly ProberStall[] }, options: OutageOptions): OutageReport {
  const { from, to, intervalMs = 1, factor = 3 } = options;
  checkWindow(from, to);
  if (!(intervalMs > 0) || !(factor > 0)) throw new RangeError(`intervalMs and factor must be positive, got ${intervalMs}, ${factor}`);
  const threshold = factor * intervalMs;
  const stalledWithin = stallOverlap(timeline.stalls ?? []);
  const times: number[] = [];
  for (const reply of timeline.replies) {
    const t = replyTime(reply);
    if (t >= from && t <= to) times.push(t);
  }
  times.sort((x, y) => x - y);
  const gaps: Gap[] = [];
  const stalled: Gap[] = [];
  let longest: Gap | undefined;
  let longestMs = 0;
  const consider = (start: number, end: number, edge: Gap['edge']): void => {
    const gap: Gap = { from: start, to: end, ms: end - start, edge, stalledMs: stalledWithin(start, end) };
    const sure = gap.ms - gap.stalledMs;
    if (!longest || sure > longestMs) {
      longest = gap;
      longestMs = sure;
    }
    if (sure > threshold) gaps.push(gap);
    else if (gap.ms > threshold) stalled.push(gap);
  };
  if (times.length === 0) {
    if (to > from) consider(from, to, 'both');
  } else {
    consider(from, times[0]!, 'start');
    for (let i = 1; i < times.length; i++) consider(times[i - 1]!, times[i]!, 'none');
    consider(times[times.length - 1]!, to, 'end');
  }
  return { longestMs, longest, gaps, stalls: stalled, replies: times.length };
}

/** Options of {@link twoMacWindows}. */
export interface TwoMacOptions {
  /**
   * Two messages from different MACs at most this far apart (ms) count as
   * "at once". Take a few neighbour probe intervals: both holders answer each
   * probe within microseconds, but a silent stretch between probes must not
   * split one window in two.
   */
  windowMs: number;
  /**
   * Least number of MAC changes in a window (default 2). One change (a…a b…b)
   * is a clean handover, not two holders; a holder that answers again after
   * another MAC did (a b a) makes two.
   */
  minSwitches?: number;
}

/** A time during which two or more MACs answered for the address. */
export interface TwoMacWindow {
  from: number;
  to: number;
  /** to − from. */
  ms: number;
  /** The MACs seen in the window, sorted. */
  macs: string[];
  /** Changes of answering MAC in the window. */
  switches: number;
}

/** The outcome of {@link twoMacWindows}. */
export interface TwoMacReport {
  windows: TwoMacWindow[];
  /** Sum of the windows' lengths (ms). */
  totalMs: number;
  /** The longest window (ms), 0 without any. */
  maxMs: number;
}

/**
 * The intervals during which at least two distinct MACs answered for the
 * address within `windowMs` of each other: split brain, or an address left
 * behind on the old holder.
 *
 * Messages are taken in time order; every change of MAC between two
 * messages at most `windowMs` apart is a span, and spans at most `windowMs`
 * apart join into one window. Windows with fewer than `minSwitches` changes
 * are dropped (a clean handover has exactly one).
 */
export function twoMacWindows(neighbors: readonly NeighborRecord[], options: TwoMacOptions): TwoMacReport {
  const { windowMs, minSwitches = 2 } = options;
  if (!(windowMs >= 0) || !Number.isFinite(windowMs)) throw new RangeError(`windowMs must be a finite number >= 0, got ${windowMs}`);
  if (!Number.isInteger(minSwitches) || minSwitches < 1) throw new RangeError(`minSwitches must be an integer >= 1, got ${minSwitches}`);
  const sorted = [...neighbors].sort((x, y) => x.at - y.at);
  const windows: TwoMacWindow[] = [];
  let open: { from: number; to: number; macs: Set<string>; switches: number } | undefined;
  const close = (): void => {
    if (open && open.switches >= minSwitches) {
      windows.push({ from: open.from, to: open.to, ms: open.to - open.from, macs: [...open.macs].sort(), switches: open.switches });
    }
    open = undefined;
  };
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    const current = sorted[i]!;
    if (previous.mac === current.mac || current.at - previous.at > windowMs) continue;
    if (open && previous.at - open.to > windowMs) close();
    if (!open) open = { from: previous.at, to: current.at, macs: new Set(), switches: 0 };
    open.to = current.at;
    open.macs.add(previous.mac).add(current.mac);
    open.switches++;
  }
  close();
  let totalMs = 0;
  let maxMs = 0;
  for (const w of windows) {
    totalMs += w.ms;
    maxMs = Math.max(maxMs, w.ms);
  }
  return { windows, totalMs, maxMs };
}

/** The last reply that arrived at or before `t` (before `t` when `strictly`). */
function lastReply(replies: readonly ProbeReply[], t: number, strictly: boolean): ProbeReply | undefined {
  let best: ProbeReply | undefined;
  let bestAt = -Infinity;
  for (const reply of replies) {
    const at = replyTime(reply);
    if ((strictly ? at < t : at <= t) && at >= bestAt) {
      best = reply;
      bestAt = at;
    }
  }
  return best;
}

/** The last neighbour message at or before `t` (before `t` when `strictly`). */
function lastNeighbor(neighbors: readonly NeighborRecord[], t: number, strictly: boolean): NeighborRecord | undefined {
  let best: NeighborRecord | undefined;
  for (const n of neighbors) if ((strictly ? n.at < t : n.at <= t) && (!best || n.at >= best.at)) best = n;
  return best;
}

/** The last reply that arrived at or before `t`: who answered then. */
export function responderAt(timeline: Pick<ProbeRecord, 'replies'>, t: number): { responder: string; at: number; seq: number } | undefined {
  const best = lastReply(timeline.replies, t, false);
  return best && { responder: best.responder, at: replyTime(best), seq: best.seq };
}

/** The last neighbour message at or before `t`: which MAC answered for the address then. */
export function macAt(neighbors: readonly NeighborRecord[], t: number): NeighborRecord | undefined {
  return lastNeighbor(neighbors, t, false);
}

/** Something the parent did, timestamped with the prober's clock. */
export interface TimelineEvent {
  name: string;
  /** When it happened (ms, CLOCK_MONOTONIC). */
  at: number;
}

/** Options of {@link summarize}. */
export interface SummarizeOptions {
  /** The probe interval (default 1 ms). */
  intervalMs?: number;
  /** windowMs of {@link twoMacWindows} (default 10 ms). */
  twoMacWindowMs?: number;
  /** End of the last event's window (default: the timeline's last record). */
  until?: number;
}

/** What the client saw after one event. */
export interface EventSummary {
  name: string;
  at: number;
  /** End of this event's window: the next event, or the end of the timeline. */
  until: number;
  /**
   * Longest time without a reply in the window (ms, prober stalls taken
   * out), measured from the last reply before the event so that an outage
   * the event started counts whole.
   */
  outageMs: number;
  /** That gap. */
  outage: Gap | undefined;
  /** Gaps in the window that were the prober's stalls, not the service's (see {@link OutageReport.stalls}). */
  stalls: Gap[];
  /** Two-MAC time inside the window (ms): the sum, and the longest window's part. */
  twoMacMs: number;
  twoMacMaxMs: number;
  /**
   * Who answered the last reply before the event, and the last one of the
   * window (before the next event: what happens at its instant is its own).
   */
  holderBefore: string | undefined;
  holderAfter: string | undefined;
  /** The last MAC answering for the address before the event, and at the window's end. */
  macBefore: string | undefined;
  macAfter: string | undefined;
}

/**
 * Per event (in time order), what the client saw until the next event: the
 * outage, the time two MACs answered at once, and the holder before and
 * after, by responder name and by MAC.
 */
export function summarize(events: readonly TimelineEvent[], timeline: ProbeRecord, options: SummarizeOptions = {}): EventSummary[] {
  const { intervalMs = 1, twoMacWindowMs = 10 } = options;
  const sorted = [...events].sort((x, y) => x.at - y.at);
  const end = options.until ?? timelineEnd(timeline);
  const twoMac = twoMacWindows(timeline.neighbors, { windowMs: twoMacWindowMs });
  return sorted.map((event, i) => {
    const next = sorted[i + 1];
    const until = Math.max(event.at, next ? next.at : end);
    const before = responderAt(timeline, event.at);
    // Start at the last reply before the event: the outage began there.
    const report = outages(timeline, { from: before?.at ?? event.at, to: until, intervalMs });
    let twoMacMs = 0;
    let twoMacMaxMs = 0;
    for (const w of twoMac.windows) {
      const overlap = Math.min(w.to, until) - Math.max(w.from, event.at);
      if (overlap < 0 || (overlap === 0 && w.ms > 0)) continue;
      twoMacMs += overlap;
      twoMacMaxMs = Math.max(twoMacMaxMs, overlap);
    }
    return {
      name: event.name,
      at: event.at,
      until,
      outageMs: report.longestMs,
      outage: report.longest,
      stalls: report.stalls,
      twoMacMs,
      twoMacMaxMs,
      holderBefore: before?.responder,
      holderAfter: lastReply(timeline.replies, until, next !== undefined)?.responder,
      macBefore: macAt(timeline.neighbors, event.at)?.mac,
      macAfter: lastNeighbor(timeline.neighbors, until, next !== undefined)?.mac,
    };
  });
}

/** The time of the timeline's last reply or neighbour message; -Infinity when empty. */
export function timelineEnd(timeline: Pick<ProbeRecord, 'replies' | 'neighbors'>): number {
  let end = -Infinity;
  for (const r of timeline.replies) end = Math.max(end, replyTime(r));
  for (const n of timeline.neighbors) end = Math.max(end, n.at);
  return end;
}

/** Order statistics of a sample. */
export interface Percentiles {
  count: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * p50/p95/p99 by the nearest-rank method (the smallest value with at least
 * p% of the sample at or below it: always a measured value, never an
 * interpolation), plus min, max and mean. An empty sample gives count 0 and
 * NaN elsewhere; a non-finite value is a RangeError, since it means a
 * broken measurement rather than a slow one.
 */
export function percentiles(values: readonly number[]): Percentiles {
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`percentiles of non-finite value ${v}`);
  const n = values.length;
  if (n === 0) return { count: 0, min: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = [...values].sort((x, y) => x - y);
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * n) - 1)]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, min: sorted[0]!, p50: rank(50), p95: rank(95), p99: rank(99), max: sorted[n - 1]!, mean: sum / n };
}
