/**
 * The stdout protocol of prober-main: JSON lines, one record per line, so a
 * parent (test, demo, bench) can follow a prober running in another process
 * and namespace, and the collector that turns them back into a timeline.
 *
 * Lines, in order:
 * - `{"type":"ready", ...ProberInfo}` once the sockets are open;
 * - `{"type":"reply","seq","sentAt","rttMs","responder"}` per reply;
 * - `{"type":"neighbor","at","mac","kind"}` per ARP/ND message for the address;
 * - `{"type":"lost","seq","sentAt"}` per probe without reply in the loss timeout;
 * - `{"type":"stall","from","to"}` per time the prober's event loop did not run;
 * - `{"type":"stats", ...ProberStats}` every second, and once more at the end;
 * - `{"type":"end","reason"}` last, then the process exits;
 * - `{"type":"error","message"}` when it cannot start (then it exits 2).
 *
 * Times are ms of CLOCK_MONOTONIC rounded to the microsecond. Lines are
 * written in batches (every 50 ms by default): one write(2) per batch
 * instead of ~2000 a second, at most 50 ms of delay for a live follower.
 */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { NeighborKind, NeighborRecord, ProbeRecord, ProbeReply, ProberStall } from './analysis.js';

/** The first line: what the prober resolved. */
export interface ReadyLine {
  type: 'ready';
  target: string;
  family: 4 | 6;
  port: number;
  interface: string;
  ifindex: number;
  mac: string;
  neighborIdentity: 'phantom' | 'own';
  neighborMac: string;
  source?: string;
  intervalMs: number;
  neighborProbeIntervalMs: number;
  startedAt: number;
}

/** A reply line. */
export type ReplyLine = { type: 'reply' } & ProbeReply;
/** A neighbour line. */
export type NeighborLine = { type: 'neighbor' } & NeighborRecord;
/** A loss line. */
export interface LostLine {
  type: 'lost';
  seq: number;
  sentAt: number;
}
/** A stall line. */
export type StallLine = { type: 'stall' } & ProberStall;
/** Counters (ProberStats of prober.ts; numbers only, so kept open here). */
export interface StatsLine {
  type: 'stats';
  [counter: string]: number | string;
}
/** The last line. */
export interface EndLine {
  type: 'end';
  reason: string;
}
/** A start failure. */
export interface ErrorLine {
  type: 'error';
  message: string;
}

/** Any line of the protocol. */
export type ProberLine = ReadyLine | ReplyLine | NeighborLine | LostLine | StallLine | StatsLine | EndLine | ErrorLine;

/** Rounds a time to the microsecond: the clock's useful precision, and a third shorter lines. */
export function roundUs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Formats one line (with the newline). */
export function formatProberLine(line: ProberLine): string {
  return `${JSON.stringify(line)}\n`;
}

const NEIGHBOR_KINDS: ReadonlySet<string> = new Set<NeighborKind>(['reply', 'announcement', 'request']);

/**
 * Parses one line; `undefined` for anything malformed (a follower must not
 * die of a stray line on the child's stdout, e.g. a Node warning).
 */
export function parseProberLine(text: string): ProberLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const num = (k: string): boolean => typeof v[k] === 'number' && Number.isFinite(v[k]);
  switch (v.type) {
    case 'reply':
      return num('seq') && num('sentAt') && num('rttMs') && typeof v.responder === 'string' ? (v as unknown as ReplyLine) : undefined;
    case 'neighbor':
      return num('at') && typeof v.mac === 'string' && NEIGHBOR_KINDS.has(v.kind as string) ? (v as unknown as NeighborLine) : undefined;
    case 'lost':
      return num('seq') && num('sentAt') ? (v as unknown as LostLine) : undefined;
    case 'stall':
      return num('from') && num('to') ? (v as unknown as StallLine) : undefined;
    case 'ready':
      return typeof v.target === 'string' && typeof v.mac === 'string' && num('intervalMs') ? (v as unknown as ReadyLine) : undefined;
    case 'stats':
      return v as StatsLine;
    case 'end':
      return typeof v.reason === 'string' ? (v as unknown as EndLine) : undefined;
    case 'error':
      return typeof v.message === 'string' ? (v as unknown as ErrorLine) : undefined;
    default:
      return undefined;
  }
}

/** Adds a parsed line's record to `record` (reply, neighbour, loss, stall); other lines change nothing. */
export function applyProberLine(record: ProbeRecord, line: ProberLine): void {
  switch (line.type) {
    case 'reply':
      record.replies.push({ seq: line.seq, sentAt: line.sentAt, rttMs: line.rttMs, responder: line.responder });
      break;
    case 'neighbor':
      record.neighbors.push({ at: line.at, mac: line.mac, kind: line.kind });
      break;
    case 'lost':
      record.lost.push({ seq: line.seq, sentAt: line.sentAt });
      break;
    case 'stall':
      record.stalls.push({ from: line.from, to: line.to });
      break;
    default:
      break;
  }
}

/**
 * Follows a prober-main child's stdout: collects the timeline as lines come
 * and tells when the prober is ready and when it ended.
 *
 * @example
 * ```ts
 * const child = host.spawn(process.execPath, ['dist/demo/prober-main.js', '--target', vip, '--port', '7777']);
 * const output = ProberOutput.follow(child.stdout!);
 * await output.ready;        // sockets open: start the scenario
 * child.kill('SIGTERM');
 * await output.ended;        // every line read
 * summarize(events, output.record);
 * ```
 */
export class ProberOutput {
  /** The timeline so far. */
  readonly record: ProbeRecord = { replies: [], neighbors: [], lost: [], stalls: [] };
  /** Resolves with the ready line; rejects when the stream ends before it (or with the error line). */
  readonly ready: Promise<ReadyLine>;
  /** Resolves when the stream has ended, with the end line when one came. */
  readonly ended: Promise<EndLine | undefined>;
  /** The last stats line. */
  stats: StatsLine | undefined;
  /** Lines that were not protocol lines. */
  malformed = 0;
  /** Called for every parsed line, after it was applied. */
  onLine: ((line: ProberLine) => void) | undefined;

  private constructor(stream: Readable) {
    let resolveReady!: (line: ReadyLine) => void;
    let rejectReady!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.ready.catch(() => undefined); // a caller that only awaits `ended` must not see an unhandled rejection
    let end: EndLine | undefined;
    let error: string | undefined;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (text) => {
      const line = parseProberLine(text);
      if (!line) {
        this.malformed++;
        return;
      }
      applyProberLine(this.record, line);
      if (line.type === 'ready') resolveReady(line);
      else if (line.type === 'stats') this.stats = line;
      else if (line.type === 'end') end = line;
      else if (line.type === 'error') error = line.message;
      this.onLine?.(line);
    });
    this.ended = new Promise((resolve) => {
      lines.once('close', () => {
        rejectReady(new Error(`prober output ended before it was ready${error ? `: ${error}` : ''}`));
        resolve(end);
      });
    });
  }

  /** Starts following `stream` (a child's stdout). */
  static follow(stream: Readable): ProberOutput {
    return new ProberOutput(stream);
  }
}
