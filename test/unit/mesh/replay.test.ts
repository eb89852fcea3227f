import { describe, expect, it } from 'vitest';
import { REPLAY_WINDOW_SIZE, ReplayWindow } from '../../../lib/coordinators/mesh/replay.js';

const OK = { ok: true };
const REPLAYED = { ok: false, reason: 'replayed' };
const TOO_OLD = { ok: false, reason: 'too-old' };
const STALE = { ok: false, reason: 'stale-incarnation' };
const INC = 1_700_000_000_000n;

/** A window that has accepted seq 100 of INC. */
function at100(): ReplayWindow {
  const w = new ReplayWindow();
  expect(w.accept(INC, 100n)).toEqual(OK);
  return w;
}

describe('ReplayWindow (RFC 4303 §3.4.3)', () => {
  it('is 64 wide, as RFC 4303 recommends', () => {
    expect(REPLAY_WINDOW_SIZE).toBe(64);
  });

  it('accepts the first message of a sender at any seq, including 0 and 2^64-1', () => {
    for (const seq of [0n, 1n, 12345n, (1n << 64n) - 1n]) {
      const w = new ReplayWindow();
      expect(w.accept(INC, seq)).toEqual(OK);
      expect(w.highest).toBe(seq);
      expect(w.incarnation).toBe(INC);
    }
  });

  it('accepts increasing seqs, rejects a duplicate', () => {
    const w = new ReplayWindow();
    for (let s = 1n; s <= 200n; s++) expect(w.accept(INC, s)).toEqual(OK);
    expect(w.accept(INC, 200n)).toEqual(REPLAYED);
    expect(w.accept(INC, 150n)).toEqual(REPLAYED);
  });

  it('accepts out-of-order seqs within the window exactly once', () => {
    const w = at100();
    for (const s of [99n, 50n, 37n, 98n, 70n]) {
      expect(w.accept(INC, s)).toEqual(OK);
      expect(w.accept(INC, s)).toEqual(REPLAYED);
    }
    expect(w.highest).toBe(100n);
    expect(w.accept(INC, 100n)).toEqual(REPLAYED);
  });

  it('window edge: highest − 63 is inside, highest − 64 is too old', () => {
    const w = at100();
    expect(w.accept(INC, 37n)).toEqual(OK); // 100 − 63
    expect(w.accept(INC, 37n)).toEqual(REPLAYED);
    expect(w.accept(INC, 36n)).toEqual(TOO_OLD); // 100 − 64
    expect(w.accept(INC, 0n)).toEqual(TOO_OLD);
  });

  it('advancing by 63 keeps the old highest in the window, by 64 pushes it out', () => {
    const a = at100();
    expect(a.accept(INC, 163n)).toEqual(OK);
    expect(a.accept(INC, 100n)).toEqual(REPLAYED);
    expect(a.accept(INC, 101n)).toEqual(OK); // never seen, still inside

    const b = at100();
    expect(b.accept(INC, 164n)).toEqual(OK);
    expect(b.accept(INC, 100n)).toEqual(TOO_OLD);
    expect(b.accept(INC, 101n)).toEqual(OK);
  });

  it('a jump far ahead clears the bitmap (earlier seqs in the new window are unseen)', () => {
    const w = new ReplayWindow();
    for (let s = 1n; s <= 10n; s++) w.accept(INC, s);
    expect(w.accept(INC, 1_000_000n)).toEqual(OK);
    expect(w.accept(INC, 999_999n)).toEqual(OK);
    expect(w.accept(INC, 999_937n)).toEqual(OK);
    expect(w.accept(INC, 999_936n)).toEqual(TOO_OLD);
    expect(w.accept(INC, 10n)).toEqual(TOO_OLD);
  });

  it('shifting keeps exactly the bits that stay in the window', () => {
    const w = new ReplayWindow();
    // Accept every even seq 0..126; then advance by 2 each time and check the pattern.
    for (let s = 0n; s <= 126n; s += 2n) w.accept(INC, s);
    for (let s = 63n; s <= 126n; s++) {
      const expected = s % 2n === 0n ? REPLAYED : OK;
      expect(w.check(INC, s), `seq ${s}`).toEqual(expected);
    }
    expect(w.check(INC, 62n)).toEqual(TOO_OLD);
  });

  it('a newer incarnation resets the window; an older one is stale', () => {
    const w = at100();
    expect(w.accept(INC + 1n, 1n)).toEqual(OK); // restart: seq starts over
    expect(w.incarnation).toBe(INC + 1n);
    expect(w.highest).toBe(1n);
    expect(w.accept(INC + 1n, 1n)).toEqual(REPLAYED);
    expect(w.accept(INC + 1n, 2n)).toEqual(OK);
    expect(w.accept(INC, 101n)).toEqual(STALE);
    expect(w.accept(INC, 100n)).toEqual(STALE);
    expect(w.accept(0n, 0n)).toEqual(STALE);
    expect(w.incarnation).toBe(INC + 1n);
  });

  it('check() changes nothing; update() records', () => {
    const w = at100();
    expect(w.check(INC, 101n)).toEqual(OK);
    expect(w.check(INC, 101n)).toEqual(OK);
    expect(w.highest).toBe(100n);
    w.update(INC, 101n);
    expect(w.check(INC, 101n)).toEqual(REPLAYED);
    expect(w.check(INC + 5n, 0n)).toEqual(OK);
    expect(w.incarnation).toBe(INC);
    // update with a stale incarnation or a too-old seq is a no-op
    w.update(INC - 1n, 500n);
    w.update(INC, 1n);
    expect(w.highest).toBe(101n);
    expect(w.incarnation).toBe(INC);
  });

  it('reset() forgets everything', () => {
    const w = at100();
    w.reset();
    expect(w.incarnation).toBeUndefined();
    expect(w.accept(INC - 1n, 5n)).toEqual(OK);
  });

  it('works at the top of the u64 range', () => {
    const max = (1n << 64n) - 1n;
    const w = new ReplayWindow();
    expect(w.accept(max, max - 70n)).toEqual(OK);
    expect(w.accept(max, max)).toEqual(OK);
    expect(w.accept(max, max - 63n)).toEqual(OK);
    expect(w.accept(max, max - 64n)).toEqual(TOO_OLD);
    expect(w.accept(max, max)).toEqual(REPLAYED);
  });

  it('matches a set-based model on random traffic', () => {
    let state = 0x9e3779b9;
    const rand = (n: number) => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const w = new ReplayWindow();
    const seen = new Set<bigint>();
    let top = -1n;
    for (let i = 0; i < 20_000; i++) {
      const seq = BigInt(Math.max(0, Number(top) + rand(80) - 60));
      let expected: { ok: boolean; reason?: string };
      if (top < 0n || seq > top) expected = OK;
      else if (top - seq >= 64n) expected = TOO_OLD;
      else expected = seen.has(seq) ? REPLAYED : OK;
      expect(w.accept(INC, seq)).toEqual(expected);
      if (expected.ok) {
        seen.add(seq);
        if (seq > top) top = seq;
      }
    }
  });
});
