/**
 * Failover analysis over hand-written timelines: outages (arrival gaps,
 * window edges, prober stalls), two-MAC windows, holders before/after, the
 * per-event summary and percentiles. Times are plain milliseconds.
 */
import { describe, expect, it } from 'vitest';
import {
  macAt,
  outages,
  percentiles,
  replyTime,
  responderAt,
  summarize,
  timelineEnd,
  twoMacWindows,
  type NeighborRecord,
  type ProbeRecord,
  type ProbeReply,
} from '../../../lib/demo/analysis.js';

/** A reply to probe `seq` sent at `sentAt`, arriving `rttMs` later. */
const reply = (seq: number, sentAt: number, responder = 'a', rttMs = 0.1): ProbeReply => ({ seq, sentAt, rttMs, responder });

/** Replies every `step` ms from `from` (inclusive) to `to` (exclusive), seq from `firstSeq`. */
function steady(from: number, to: number, responder: string, firstSeq = 0, step = 1): ProbeReply[] {
  const out: ProbeReply[] = [];
  for (let t = from, seq = firstSeq; t < to; t += step, seq++) out.push(reply(seq, t, responder));
  return out;
}

const neighbor = (at: number, mac: string, kind: NeighborRecord['kind'] = 'reply'): NeighborRecord => ({ at, mac, kind });

/** Both MACs answering each request, every `step` ms, in [from, to). */
function bothAnswer(from: number, to: number, first: string, second: string, step = 1): NeighborRecord[] {
  const out: NeighborRecord[] = [];
  for (let t = from; t < to; t += step) out.push(neighbor(t, first), neighbor(t + 0.05, second));
  return out;
}

function timeline(parts: Partial<ProbeRecord>): ProbeRecord {
  return { replies: [], neighbors: [], lost: [], stalls: [], ...parts };
}

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';

describe('replyTime', () => {
  it('is the send time plus the round trip', () => {
    expect(replyTime(reply(1, 100, 'a', 2.5))).toBe(102.5);
  });
});

describe('outages', () => {
  const cases: Array<{
    name: string;
    record: ProbeRecord;
    window: [number, number];
    longestMs: number;
    longest?: { from: number; to: number; edge: string };
    gaps: number;
    stalls?: number;
    replies: number;
  }> = [
    {
      name: 'no replies at all: the whole window is the outage',
      record: timeline({}),
      window: [0, 100],
      longestMs: 100,
      longest: { from: 0, to: 100, edge: 'both' },
      gaps: 1,
      replies: 0,
    },
    {
      name: 'steady replies every ms: no gap over 3 intervals',
      record: timeline({ replies: steady(0, 100, 'a') }),
      window: [0, 99.1],
      longestMs: 1,
      gaps: 0,
      replies: 100,
    },
    {
      name: 'a 20 ms hole in the middle',
      record: timeline({ replies: [...steady(0, 50, 'a'), ...steady(70, 100, 'b', 70)] }),
      window: [0, 99.1],
      longestMs: 21,
      longest: { from: 49.1, to: 70.1, edge: 'none' },
      gaps: 1,
      replies: 80,
    },
    {
      name: 'replies only at the start: the service never came back (gap to the window end)',
      record: timeline({ replies: steady(0, 10, 'a') }),
      window: [0, 100],
      longestMs: 90.9,
      longest: { from: 9.1, to: 100, edge: 'end' },
      gaps: 1,
      replies: 10,
    },
    {
      name: 'replies only at the end: the gap from the window start counts',
      record: timeline({ replies: steady(60, 100, 'b', 60) }),
      window: [0, 99.1],
      longestMs: 60.1,
      longest: { from: 0, to: 60.1, edge: 'start' },
      gaps: 1,
      replies: 40,
    },
    {
      name: 'out-of-order arrival lists give the same gaps as sorted ones',
      record: timeline({ replies: [...steady(70, 100, 'b', 70), ...steady(0, 50, 'a')].reverse() }),
      window: [0, 99.1],
      longestMs: 21,
      longest: { from: 49.1, to: 70.1, edge: 'none' },
      gaps: 1,
      replies: 80,
    },
    {
      name: 'a late reply (large rtt) is placed at its arrival, not its send time',
      record: timeline({ replies: [reply(0, 0), reply(1, 1, 'a', 40), reply(2, 42)] }),
      window: [0.1, 42.1],
      longestMs: 40.9,
      longest: { from: 0.1, to: 41, edge: 'none' },
      gaps: 1,
      replies: 3,
    },
    {
      name: 'duplicate sequence numbers (two holders answering one probe) change nothing',
      record: timeline({ replies: [...steady(0, 10, 'a'), ...steady(0, 10, 'b')] }),
      window: [0.1, 9.1],
      longestMs: 1,
      gaps: 0,
      replies: 20,
    },
    {
      name: 'replies outside the window are ignored',
      record: timeline({ replies: [...steady(0, 10, 'a'), ...steady(200, 210, 'a', 200)] }),
      window: [20, 100],
      longestMs: 80,
      longest: { from: 20, to: 100, edge: 'both' },
      gaps: 1,
      replies: 0,
    },
    {
      name: 'a gap that was the prober stalling is not an outage',
      record: timeline({ replies: [...steady(0, 50, 'a'), ...steady(90, 100, 'a', 50)], stalls: [{ from: 49.5, to: 90 }] }),
      window: [0, 99.1],
      longestMs: 1,
      gaps: 0,
      stalls: 1,
      replies: 60,
    },
    {
      name: 'a stall inside a real outage is taken out of it (lower bound)',
      record: timeline({ replies: [...steady(0, 50, 'a'), ...steady(90, 100, 'b', 50)], stalls: [{ from: 60, to: 70 }] }),
      window: [0, 99.1],
      longestMs: 31,
      longest: { from: 49.1, to: 90.1, edge: 'none' },
      gaps: 1,
      stalls: 0,
      replies: 60,
    },
    {
      name: 'an empty window',
      record: timeline({}),
      window: [5, 5],
      longestMs: 0,
      gaps: 0,
      replies: 0,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = outages(c.record, { from: c.window[0], to: c.window[1] });
      expect(r.longestMs).toBeCloseTo(c.longestMs, 6);
      if (c.longest) {
        expect(r.longest!.from).toBeCloseTo(c.longest.from, 6);
        expect(r.longest!.to).toBeCloseTo(c.longest.to, 6);
        expect(r.longest!.edge).toBe(c.longest.edge);
      }
      expect(r.gaps).toHaveLength(c.gaps);
      expect(r.stalls).toHaveLength(c.stalls ?? 0);
      expect(r.replies).toBe(c.replies);
    });
  }

  it('lists gaps over factor × interval in time order', () => {
    const record = timeline({ replies: [...steady(0, 10, 'a'), ...steady(15, 20, 'a', 10), ...steady(30, 40, 'a', 20)] });
    const r = outages(record, { from: 0.1, to: 39.1, intervalMs: 1, factor: 3 });
    expect(r.gaps.map((g) => Math.round(g.ms))).toEqual([6, 11]);
    expect(outages(record, { from: 0.1, to: 39.1, intervalMs: 1, factor: 8 }).gaps).toHaveLength(1);
    expect(outages(record, { from: 0.1, to: 39.1, intervalMs: 5, factor: 3 }).gaps).toHaveLength(0);
  });

  it('refuses a reversed or non-finite window and non-positive parameters', () => {
    expect(() => outages(timeline({}), { from: 10, to: 0 })).toThrow(RangeError);
    expect(() => outages(timeline({}), { from: 0, to: Infinity })).toThrow(RangeError);
    expect(() => outages(timeline({}), { from: 0, to: 1, intervalMs: 0 })).toThrow(RangeError);
    expect(() => outages(timeline({}), { from: 0, to: 1, factor: -1 })).toThrow(RangeError);
  });
});

describe('twoMacWindows', () => {
  it('finds nothing in an empty or single-MAC record', () => {
    expect(twoMacWindows([], { windowMs: 10 })).toEqual({ windows: [], totalMs: 0, maxMs: 0 });
    const single = Array.from({ length: 100 }, (_, i) => neighbor(i, A));
    expect(twoMacWindows(single, { windowMs: 10 }).windows).toEqual([]);
  });

  it('does not count a clean handover (one change of MAC) unless minSwitches is 1', () => {
    const handover = [...Array.from({ length: 50 }, (_, i) => neighbor(i, A)), ...Array.from({ length: 50 }, (_, i) => neighbor(50.5 + i, B))];
    expect(twoMacWindows(handover, { windowMs: 10 }).windows).toEqual([]);
    const loose = twoMacWindows(handover, { windowMs: 10, minSwitches: 1 });
    expect(loose.windows).toHaveLength(1);
    expect(loose.windows[0]).toMatchObject({ from: 49, to: 50.5, switches: 1, macs: [A, B] });
  });

  it('measures the time two holders answered every request', () => {
    const record = [
      ...Array.from({ length: 100 }, (_, i) => neighbor(i, B)),
      ...bothAnswer(100, 300, A, B),
      ...Array.from({ length: 100 }, (_, i) => neighbor(300 + i, B)),
    ];
    const r = twoMacWindows(record, { windowMs: 10 });
    expect(r.windows).toHaveLength(1);
    // From B's last lone answer (99) to A's last answer and B's right after it (299.05).
    expect(r.windows[0]!.from).toBeCloseTo(99, 6);
    expect(r.windows[0]!.to).toBeCloseTo(299.05, 6);
    expect(r.windows[0]!.macs).toEqual([A, B]);
    expect(r.maxMs).toBeCloseTo(200.05, 6);
    expect(r.totalMs).toBeCloseTo(200.05, 6);
  });

  it('splits episodes further apart than windowMs, and sums them', () => {
    const record = [...bothAnswer(0, 20, A, B), ...Array.from({ length: 50 }, (_, i) => neighbor(20 + i, B)), ...bothAnswer(70, 100, B, C)];
    const r = twoMacWindows(record, { windowMs: 5 });
    expect(r.windows).toHaveLength(2);
    expect(r.windows[0]!.macs).toEqual([A, B]);
    expect(r.windows[1]!.macs).toEqual([B, C]);
    expect(r.totalMs).toBeCloseTo(r.windows[0]!.ms + r.windows[1]!.ms, 6);
    expect(r.maxMs).toBeCloseTo(Math.max(r.windows[0]!.ms, r.windows[1]!.ms), 6);
    // A wide window joins them.
    expect(twoMacWindows(record, { windowMs: 60 }).windows).toHaveLength(1);
  });

  it('joins sparse answers when probes are further apart than messages but within windowMs', () => {
    // Requests every 10 ms, both holders answer each within 0.05 ms.
    const record = bothAnswer(0, 100, A, B, 10);
    expect(twoMacWindows(record, { windowMs: 5 }).windows).toEqual([]); // each pair alone has one change
    const r = twoMacWindows(record, { windowMs: 15 });
    expect(r.windows).toHaveLength(1);
    expect(r.windows[0]!.ms).toBeCloseTo(90.05, 6);
  });

  it('does not depend on the input order', () => {
    const record = bothAnswer(0, 50, A, B);
    const shuffled = [...record].reverse();
    expect(twoMacWindows(shuffled, { windowMs: 10 })).toEqual(twoMacWindows(record, { windowMs: 10 }));
  });

  it('refuses bad options', () => {
    expect(() => twoMacWindows([], { windowMs: -1 })).toThrow(RangeError);
    expect(() => twoMacWindows([], { windowMs: NaN })).toThrow(RangeError);
    expect(() => twoMacWindows([], { windowMs: 1, minSwitches: 0 })).toThrow(RangeError);
  });
});

describe('responderAt and macAt', () => {
  const record = timeline({
    replies: [reply(2, 20, 'b'), reply(0, 0, 'a'), reply(1, 10, 'a', 5)],
    neighbors: [neighbor(12, B), neighbor(1, A)],
  });

  it('name the last answer at or before t, whatever the list order', () => {
    expect(responderAt(record, -1)).toBeUndefined();
    expect(responderAt(record, 0.1)).toEqual({ responder: 'a', at: 0.1, seq: 0 });
    expect(responderAt(record, 14.9)?.seq).toBe(0); // seq 1 arrives at 15
    expect(responderAt(record, 15)?.seq).toBe(1);
    expect(responderAt(record, 1000)?.responder).toBe('b');
    expect(macAt(record.neighbors, 0)).toBeUndefined();
    expect(macAt(record.neighbors, 5)?.mac).toBe(A);
    expect(macAt(record.neighbors, 12)?.mac).toBe(B);
  });
});

describe('summarize', () => {
  it('reports per event the outage, two-MAC time and holders', () => {
    const record = timeline({
      replies: [...steady(0, 100, 'a'), ...steady(130, 400, 'b', 100)],
      neighbors: [
        ...Array.from({ length: 100 }, (_, i) => neighbor(i + 0.5, A)),
        ...Array.from({ length: 100 }, (_, i) => neighbor(125 + i, B)),
        ...bothAnswer(225, 325, A, B),
        ...Array.from({ length: 75 }, (_, i) => neighbor(325 + i, B)),
      ],
    });
    const [move, both, gone] = summarize(
      [
        { name: 'both', at: 225 },
        { name: 'move', at: 100 },
        { name: 'a gone', at: 325 },
      ],
      record,
    );
    expect(move).toMatchObject({ name: 'move', at: 100, until: 225, holderBefore: 'a', holderAfter: 'b', macBefore: A, macAfter: B });
    // The two-MAC window begins at B's last lone answer, one request before A's first: that request is the resolution.
    expect(move!.twoMacMs).toBeLessThanOrEqual(1);
    // From a's last reply (99.1) to b's first (130.1).
    expect(move!.outageMs).toBeCloseTo(31, 6);
    expect(move!.outage!.from).toBeCloseTo(99.1, 6);
    expect(both!.name).toBe('both');
    expect(both!.outageMs).toBeLessThan(2);
    expect(both!.twoMacMs).toBeGreaterThan(95);
    expect(both!.twoMacMs).toBeLessThanOrEqual(100);
    expect(both!.twoMacMaxMs).toBe(both!.twoMacMs);
    expect(both!.holderAfter).toBe('b');
    expect(gone!.until).toBeCloseTo(timelineEnd(record), 6);
    expect(gone!.twoMacMs).toBeLessThan(1);
  });

  it('copes with an empty timeline and an explicit end', () => {
    const [only] = summarize([{ name: 'x', at: 10 }], timeline({}), { until: 50 });
    expect(only).toMatchObject({ until: 50, outageMs: 40, twoMacMs: 0, holderBefore: undefined, holderAfter: undefined });
    const [none] = summarize([{ name: 'x', at: 10 }], timeline({}));
    expect(none).toMatchObject({ until: 10, outageMs: 0 });
  });
});

describe('percentiles', () => {
  it('uses the nearest rank: always a measured value', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentiles(values)).toEqual({ count: 100, min: 1, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
    expect(percentiles([7])).toEqual({ count: 1, min: 7, p50: 7, p95: 7, p99: 7, max: 7, mean: 7 });
    expect(percentiles([3, 1, 2])).toMatchObject({ p50: 2, p95: 3, p99: 3 });
  });

  it('gives NaN for an empty sample and refuses non-finite values', () => {
    const empty = percentiles([]);
    expect(empty.count).toBe(0);
    expect(empty.p50).toBeNaN();
    expect(() => percentiles([1, NaN])).toThrow(RangeError);
    expect(() => percentiles([Infinity])).toThrow(RangeError);
  });
});
