/**
 * Anti-replay for mesh messages: a sliding window over sequence numbers, as
 * in IPsec ESP (RFC 4303 §3.4.3 "Sequence Number Verification"; the bitmap
 * follows the code example of RFC 2401 Appendix C).
 *
 * Why: a MAC proves who made a message, not that it is fresh. Re-sending a
 * captured heartbeat would make a dead holder look alive; re-sending a
 * "leave" would make backups take over from a live one. Each sender numbers
 * its messages (seq, strictly increasing within one incarnation), and the
 * receiver accepts each number at most once.
 *
 * UDP may reorder, so a message is not rejected merely for being older than
 * the newest one seen: the window remembers the last {@link REPLAY_WINDOW_SIZE}
 * sequence numbers in a bitmap and accepts any of them once. Anything older
 * than the window is rejected ('too-old'): it cannot be told from a replay.
 *
 * Incarnations (the sender process's start time) make restarts work without
 * persistent counters: a restarted sender starts seq anew under a larger
 * incarnation, which resets the window; a message from an older incarnation
 * is a replay from a previous life ('stale-incarnation').
 *
 * Sequence numbers and incarnations are u64 on the wire, handled as bigint.
 */

/** Number of sequence numbers the window remembers (RFC 4303 §3.4.3: 32 minimum, 64 recommended). */
export const REPLAY_WINDOW_SIZE = 64;

const WINDOW = BigInt(REPLAY_WINDOW_SIZE);
const MASK = (1n << WINDOW) - 1n;

/** Why a (incarnation, seq) pair was refused. */
export type ReplayReason = 'stale-incarnation' | 'replayed' | 'too-old';

/** Result of {@link ReplayWindow.check} and {@link ReplayWindow.accept}. */
export type ReplayVerdict = { ok: true } | { ok: false; reason: ReplayReason };

const OK: ReplayVerdict = Object.freeze({ ok: true });
const STALE: ReplayVerdict = Object.freeze({ ok: false, reason: 'stale-incarnation' });
const REPLAYED: ReplayVerdict = Object.freeze({ ok: false, reason: 'replayed' });
const TOO_OLD: ReplayVerdict = Object.freeze({ ok: false, reason: 'too-old' });

/**
 * The replay state of one sender: its current incarnation, the highest seq
 * seen in it, and a 64-bit bitmap where bit i set means seq `highest − i`
 * was accepted.
 *
 * As RFC 4303 §3.4.3 advises, {@link check} can run before the (costlier) MAC
 * check to drop obvious replays cheaply, and {@link update} only after the
 * MAC verified, so that forged packets cannot move the window.
 * {@link accept} does both at once.
 */
export class ReplayWindow {
  private inc: bigint | undefined;
  private top = 0n;
  private bitmap = 0n;

  /** The sender's incarnation the window tracks; undefined before the first accepted message. */
  get incarnation(): bigint | undefined {
    return this.inc;
  }

  /** Highest seq accepted in the current incarnation (0n before the first). */
  get highest(): bigint {
    return this.top;
  }

  /** Would (incarnation, seq) be accepted? Changes nothing. */
  check(incarnation: bigint, seq: bigint): ReplayVerdict {
    const inc = this.inc;
    if (inc === undefined || incarnation > inc) return OK;
    if (incarnation < inc) return STALE;
    if (seq > this.top) return OK;
    const behind = this.top - seq;
    if (behind >= WINDOW) return TOO_OLD;
    return (this.bitmap >> behind) & 1n ? REPLAYED : OK;
  }

  /**
   * Records (incarnation, seq) as received. Call only after {@link check}
   * returned ok and the message authenticated; otherwise does nothing.
   */
  update(incarnation: bigint, seq: bigint): void {
    const inc = this.inc;
    if (inc === undefined || incarnation > inc) {
      // First message, or the sender restarted: its old numbers no longer matter.
      this.inc = incarnation;
      this.top = seq;
      this.bitmap = 1n;
      return;
    }
    if (incarnation < inc) return;
    if (seq > this.top) {
      const shift = seq - this.top;
      this.bitmap = shift >= WINDOW ? 1n : ((this.bitmap << shift) | 1n) & MASK;
      this.top = seq;
      return;
    }
    const behind = this.top - seq;
    if (behind < WINDOW) this.bitmap |= 1n << behind;
  }

  /** {@link check}, then {@link update} when ok. */
  accept(incarnation: bigint, seq: bigint): ReplayVerdict {
    const verdict = this.check(incarnation, seq);
    if (verdict.ok) this.update(incarnation, seq);
    return verdict;
  }

  /** Forgets everything: the next message from any incarnation is accepted. */
  reset(): void {
    this.inc = undefined;
    this.top = 0n;
    this.bitmap = 0n;
  }
}
